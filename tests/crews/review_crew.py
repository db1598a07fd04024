"""A crew whose second task waits for a review, built the same way in every process (the
models' scripts come from the caller, so a task that is run again shows)."""

from __future__ import annotations

from agentrig import Agent
from agentrig.crews import Crew, Task
from agentrig.testing import ScriptedModel, text


def build(research: list[str], write: list[str]) -> tuple[Crew, ScriptedModel, ScriptedModel]:
    research_model = ScriptedModel([text(t) for t in research], name="research")
    write_model = ScriptedModel([text(t) for t in write], name="write")
    researcher = Agent(name="researcher", role="Researcher", goal="g", backstory="b",
                       model=research_model)  # fmt: skip
    writer = Agent(name="writer", role="Writer", goal="g", backstory="b", model=write_model)
    tasks = [
        Task("Research {topic}", "facts", agent=researcher, name="research"),
        Task("Write about {topic}", "a post", agent=writer, name="write", human_input=True),
    ]
    return Crew("review", tasks=tasks), research_model, write_model
