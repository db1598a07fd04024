"""The loop with the real local model (SmolLM2-135M on the CPU): a real tool call."""

from agentrig import Agent, ModelSettings, Runner, tool


async def test_the_local_model_calls_a_tool_and_answers():
    cities: list[str] = []

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        cities.append(city)
        return f"It is sunny and 31 degrees in {city}."

    agent = Agent(
        name="weather",
        instructions="You answer questions about the weather. Use the get_weather tool.",
        model="local/smollm2",
        tools=[get_weather],
        tool_choice="required",
        model_settings=ModelSettings(temperature=0, max_output_tokens=64),
    )
    result = await Runner.run(agent, "What's the weather in Paris?", max_turns=4)
    assert [city.lower() for city in cities][:1] == ["paris"]
    assert result.new_items[0].type == "function_call"
    assert result.new_items[1].output == "It is sunny and 31 degrees in Paris."
    assert isinstance(result.final_output, str) and result.final_output.strip()
    assert result.usage.input_tokens > 0 and result.usage.requests >= 2
