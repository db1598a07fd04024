"""The local CPU provider against the real bundled models: SmolLM2-135M through llama.cpp
and all-MiniLM-L6-v2 through sentence-transformers. Greedy decoding keeps runs repeatable."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("llama_cpp")

from agentrig.errors import BadRequest, ContextTooLong, ProviderUnavailable
from agentrig.items import FunctionCall, FunctionCallOutput, Message, user_message
from agentrig.llm.providers.local import LocalChatClient
from agentrig.llm.providers.local_embeddings import LocalEmbedder
from agentrig.llm.types import (
    Completed,
    ItemDone,
    LLMClient,
    ModelRequest,
    ModelSettings,
    OutputSchema,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)

SETTINGS = ModelSettings(temperature=0, max_output_tokens=30)
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
TIME = ToolSpec(
    name="get_time",
    description="Get the current time in a timezone.",
    parameters={
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
    },
)


def ask(text: str, **fields: object) -> ModelRequest:
    return ModelRequest(items=[user_message(text)], **{"settings": SETTINGS, **fields})


@pytest.fixture
def client() -> LocalChatClient:
    return LocalChatClient()


async def events_of(client: LocalChatClient, request: ModelRequest) -> list[object]:
    return [event async for event in client.stream(request)]


# --- chat --------------------------------------------------------------------------------


async def test_short_answer(client: LocalChatClient) -> None:
    assert isinstance(client, LLMClient)
    response = await client.complete(
        ask("What is the capital of France?", instructions="Answer in one short sentence.")
    )
    assert "Paris" in response.text
    assert response.finish_reason in ("stop", "length")
    assert response.usage.input_tokens > 10
    assert 0 < response.usage.output_tokens <= 30
    assert response.usage.requests == 1
    assert response.model == "smollm2"
    [message] = response.output
    assert isinstance(message, Message) and message.role == "assistant"


async def test_max_output_tokens_cuts_the_answer(client: LocalChatClient) -> None:
    settings = ModelSettings(temperature=0, max_output_tokens=5)
    request = ModelRequest(items=[user_message("Write a long poem about the sea.")])
    response = await client.complete(request.model_copy(update={"settings": settings}))
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 5
    assert response.output[0].status == "incomplete"


async def test_streamed_answer(client: LocalChatClient) -> None:
    events = await events_of(client, ask("Tell me about cats."))
    deltas = [event for event in events if isinstance(event, TextDelta)]
    done = [event for event in events if isinstance(event, ItemDone)]
    assert len(deltas) >= 5
    assert isinstance(events[-1], Completed)
    assert sum(isinstance(event, Completed) for event in events) == 1
    [item] = [event.item for event in done]
    assert isinstance(item, Message)
    assert "".join(delta.delta for delta in deltas) == item.text != ""
    assert {delta.item_id for delta in deltas} == {item.id}
    response = events[-1].response
    assert response.text == item.text
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


async def test_usage_matches_llama_cpp_count(client: LocalChatClient) -> None:
    # A llama.cpp stream reports no usage, so the provider counts tokens itself.
    from llama_cpp import Llama

    response = await client.complete(ask("Hello there", instructions="Be brief."))
    llama = Llama(model_path=client.model_path, n_ctx=2048, verbose=False)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ]
    reported = llama.create_chat_completion(messages=messages, max_tokens=30, temperature=0)[
        "usage"
    ]
    assert response.usage.input_tokens == reported["prompt_tokens"]
    assert response.usage.output_tokens == reported["completion_tokens"]


async def test_tool_call_required(client: LocalChatClient) -> None:
    request = ask("What is the weather in Paris?", tools=[WEATHER, TIME], tool_choice="required")
    response = await client.complete(request)
    assert response.finish_reason == "tool_calls"
    [call] = response.output
    assert isinstance(call, FunctionCall)
    assert call.name == "get_weather" and call.status == "completed"
    assert call.call_id.startswith("call_") and call.id and call.id.startswith("fc_")
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)
    assert "paris" in arguments["city"].lower()


async def test_tool_call_named_tool(client: LocalChatClient) -> None:
    # The grammar forces the named tool even when the question is about something else.
    request = ask("What time is it in Tokyo?", tools=[WEATHER, TIME], tool_choice="get_weather")
    response = await client.complete(request)
    [call] = response.tool_calls
    assert call.name == "get_weather"
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)


async def test_auto_answers_in_text_or_calls_a_tool(client: LocalChatClient) -> None:
    settings = ModelSettings(temperature=0, max_output_tokens=60)
    response = await client.complete(ask("Hi! How are you?", tools=[WEATHER], settings=settings))
    [item] = response.output
    if isinstance(item, Message):
        assert response.finish_reason == "stop" and item.text and "{" not in item.text
    else:
        assert isinstance(item, FunctionCall) and item.name == "get_weather"
        assert response.finish_reason == "tool_calls"


async def test_auto_answer_cut_off_keeps_its_text(client: LocalChatClient) -> None:
    settings = ModelSettings(temperature=0, max_output_tokens=18)
    response = await client.complete(ask("Hi! How are you?", tools=[WEATHER], settings=settings))
    [item] = response.output
    assert response.finish_reason == "length"
    assert isinstance(item, Message) and item.status == "incomplete"
    assert item.text and not item.text.lstrip().startswith("{")


async def test_tool_choice_none_gives_text(client: LocalChatClient) -> None:
    request = ask("Say hello.", tools=[WEATHER], tool_choice="none")
    response = await client.complete(request)
    assert response.tool_calls == [] and response.text


async def test_tool_results_go_back_into_the_conversation(client: LocalChatClient) -> None:
    call = FunctionCall(call_id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    items = [
        user_message("What is the weather in Paris?"),
        call,
        FunctionCallOutput(call_id="call_1", output="Sunny, 31 degrees Celsius"),
    ]
    response = await client.complete(ModelRequest(items=items, settings=SETTINGS))
    assert "31" in response.text


async def test_streamed_tool_call(client: LocalChatClient) -> None:
    request = ask("What is the weather in Berlin?", tools=[WEATHER], tool_choice="required")
    events = await events_of(client, request)
    deltas = [event for event in events if isinstance(event, ToolCallDelta)]
    [done] = [event for event in events if isinstance(event, ItemDone)]
    assert isinstance(done.item, FunctionCall) and done.item.name == "get_weather"
    assert deltas and all(delta.call_id == done.item.call_id for delta in deltas)
    assert "".join(delta.delta for delta in deltas) == done.item.arguments
    assert isinstance(json.loads(done.item.arguments)["city"], str)
    assert isinstance(events[-1], Completed)
    assert events[-1].response.finish_reason == "tool_calls"


async def test_structured_output(client: LocalChatClient) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    request = ask(
        "Alice is 30 years old. Give her name and age.",
        output_schema=OutputSchema(name="person", json_schema=schema),
        settings=ModelSettings(temperature=0, max_output_tokens=40),
    )
    response = await client.complete(request)
    data = json.loads(response.text)
    assert set(data) == {"name", "age"}
    assert isinstance(data["name"], str) and len(data["name"]) <= 20
    assert isinstance(data["age"], int) and 0 <= data["age"] <= 150


async def test_concurrent_requests_queue_without_blocking_the_loop(
    client: LocalChatClient,
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        first, second = await asyncio.gather(
            client.complete(ask("Name a fruit.")),
            LocalChatClient().complete(ask("Name a colour.")),
        )
    finally:
        task.cancel()
    assert first.text and second.text
    assert ticks >= 10  # the loop kept running while llama.cpp generated


async def test_abandoned_stream_frees_the_model(client: LocalChatClient) -> None:
    # Banning the end token makes this run ~2000 tokens (tens of seconds) unless stopped.
    endless = ModelSettings(temperature=0, max_output_tokens=2000, extra={"logit_bias": {2: -100}})
    stream = client.stream(ModelRequest(items=[user_message("Tell a story.")], settings=endless))
    async for event in stream:
        assert isinstance(event, TextDelta)
        break
    await stream.aclose()
    response = await asyncio.wait_for(client.complete(ask("Say hi.")), timeout=10)
    assert response.text


async def test_prompt_longer_than_context_raises(client: LocalChatClient) -> None:
    with pytest.raises(ContextTooLong) as caught:
        await client.complete(ask("word " * 3000))
    assert (caught.value.provider, caught.value.model) == ("local", "smollm2")
    assert "local/smollm2" in str(caught.value) and "context window" in str(caught.value)


async def test_uncompilable_tool_schema_names_the_tool(client: LocalChatClient) -> None:
    broken = ToolSpec(name="broken_tool", parameters={"type": "object", "properties": {"x": 1}})
    with pytest.raises(BadRequest, match="broken_tool") as caught:
        await client.complete(ask("hi", tools=[WEATHER, broken], tool_choice="required"))
    assert caught.value.provider == "local"


async def test_unknown_named_tool_is_a_bad_request(client: LocalChatClient) -> None:
    with pytest.raises(BadRequest, match="nope"):
        await client.complete(ask("hi", tools=[WEATHER], tool_choice="nope"))


async def test_missing_model_file_says_how_to_install() -> None:
    client = LocalChatClient("tiny", model_path="/nonexistent/model.gguf")
    with pytest.raises(ProviderUnavailable, match=r"pip install 'agentrig\[local\]'") as caught:
        await client.complete(ask("hi"))
    assert (caught.value.provider, caught.value.model) == ("local", "tiny")


# --- embeddings --------------------------------------------------------------------------


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


async def test_embeddings_are_normalised_and_meaningful(embedder: LocalEmbedder) -> None:
    response = await embedder.embed_batch(
        ["The cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell today."]
    )
    cat, kitten, stocks = response.vectors
    assert all(len(vector) == 384 for vector in response.vectors)
    assert all(math.isclose(cosine(v, v), 1.0, abs_tol=1e-4) for v in response.vectors)
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.2
    assert response.model == "all-minilm-l6-v2"
    assert response.usage.requests == 1


async def test_embedding_usage_counts_tokenizer_tokens(embedder: LocalEmbedder) -> None:
    # [CLS] hello world [SEP] and [CLS] hello [SEP]
    response = await embedder.embed_batch(["hello world", "hello"])
    assert response.usage.input_tokens == 7


async def test_embedding_more_than_a_batch_keeps_order(embedder: LocalEmbedder) -> None:
    texts = [f"{'very ' * (i % 9)}short note number {i}" for i in range(150)]
    assert len(texts) > embedder.max_batch_size
    vectors = (await embedder.embed_batch(texts)).vectors
    assert len(vectors) == 150
    for index in (0, 63, 64, 100, 149):
        alone = (await embedder.embed_batch([texts[index]])).vectors[0]
        assert cosine(vectors[index], alone) > 0.9999
    assert cosine(vectors[0], vectors[149]) < 0.999


async def test_missing_embedding_model_says_how_to_install() -> None:
    embedder = LocalEmbedder("other", model_path="/nonexistent/model")
    with pytest.raises(ProviderUnavailable, match="agentrig") as caught:
        await embedder.embed_batch(["hi"])
    assert "local/other" in str(caught.value)


async def test_mini_batches_give_the_vectors_of_one_big_batch(monkeypatch) -> None:
    # Length-sorted forward passes of 2 must give what one pass of all the texts gives
    # (padding is masked out), in the caller's order.
    from agentrig.llm.providers import local_embeddings

    passes: list[int] = []
    encode = local_embeddings._encode

    def recording(path, texts, batch_size, one_thread=False):
        passes.append(batch_size)
        return encode(path, texts, batch_size, one_thread)

    monkeypatch.setattr(local_embeddings, "_encode", recording)
    texts = [f"{'long ' * (i * 7 % 30)}text {i}" for i in range(9)]
    small = await LocalEmbedder(options={"encode_batch_size": 2}).embed_batch(texts)
    whole = await LocalEmbedder(options={"encode_batch_size": 64}).embed_batch(texts)
    assert passes == [2, 64]  # the option reaches the forward passes
    assert small.usage.input_tokens == whole.usage.input_tokens
    for a, b in zip(small.vectors, whole.vectors, strict=True):
        assert cosine(a, b) > 0.9999
    assert cosine(small.vectors[0], small.vectors[8]) < 0.999


async def test_a_query_is_encoded_on_one_thread_and_a_batch_on_all(monkeypatch) -> None:
    import torch

    from agentrig.llm.providers import local_embeddings

    embedder = LocalEmbedder()
    await embedder.embed_batch(["load the model"])
    [model] = local_embeddings._sentence_models.values()
    threads: list[int] = []
    encode = model.encode

    def recording(*args, **kwargs):
        threads.append(torch.get_num_threads())
        return encode(*args, **kwargs)

    monkeypatch.setattr(model, "encode", recording)
    before = torch.get_num_threads()
    texts = [f"how long does battery {i} take to charge" for i in range(4)]
    one = await embedder.embed_batch(texts[:1])
    several = await embedder.embed_batch(texts)
    options = {"one_thread_below": 0}  # never on one thread
    again = await LocalEmbedder(options=options).embed_batch(texts[:1])
    assert threads == [1, before, before] and torch.get_num_threads() == before
    assert cosine(one.vectors[0], several.vectors[0]) > 0.9999
    assert cosine(one.vectors[0], again.vectors[0]) > 0.9999


def test_torch_threads_sleep_between_operations_instead_of_spinning() -> None:
    # In a fresh process: after the embedder's import of torch, OpenMP's threads wait
    # passively, so a parallel operation followed by a pause costs little CPU beyond
    # the operation (spinning threads would burn about a core for the whole pause), and
    # the variable is not left in the environment for anything loaded later.
    code = """
import os, time
from agentrig.llm.providers.local_embeddings import _import_torch_waiting_passively
_import_torch_waiting_passively()
assert "OMP_WAIT_POLICY" not in os.environ
import torch
torch.set_num_threads(2)
a = torch.randn(256, 256)
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(200):
    a @ a
    time.sleep(0.003)
print(time.process_time() - cpu, time.perf_counter() - wall)
"""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    cpu, wall = map(float, done.stdout.split())
    assert cpu < 0.6 * wall, (cpu, wall)


@pytest.fixture
def switch_interval():
    """Python's GIL switch interval, put back after the test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's default
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("switch_interval")
async def test_embedding_shortens_the_gil_switch_interval_as_configured() -> None:
    await LocalEmbedder(options={"gil_switch_interval_ms": 0}).embed_batch(["hi"])
    assert sys.getswitchinterval() == pytest.approx(0.005)  # 0: left alone
    await LocalEmbedder().embed_batch(["hi"])
    assert sys.getswitchinterval() == pytest.approx(0.0005)  # the default, 0.5 ms
    await LocalEmbedder(options={"gil_switch_interval_ms": 2}).embed_batch(["hi"])
    assert sys.getswitchinterval() == pytest.approx(0.0005)  # never raised
    await LocalEmbedder(options={"gil_switch_interval_ms": 0.2}).embed_batch(["hi"])
    assert sys.getswitchinterval() == pytest.approx(0.0002)
