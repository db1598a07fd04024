"""What the crew tests share: scripted agents, the texts their models were sent."""

from __future__ import annotations

import asyncio

from agentrig import Agent
from agentrig.items import FunctionCallOutput, Message
from agentrig.llm.types import ModelRequest, ModelResponse
from agentrig.testing import ScriptedModel, text
from agentrig.usage import Usage


def scripted_agent(name: str, *turns, **fields) -> tuple[Agent, ScriptedModel]:
    model = ScriptedModel(turns or [text(f"{name} done")], name=name)
    fields.setdefault("role", name.title())
    fields.setdefault("goal", f"do {name} work")
    fields.setdefault("backstory", f"A {name}.")
    return Agent(name=name, model=model, **fields), model


def sent(request: ModelRequest) -> str:
    """The text of the user messages of a request."""
    return "\n".join(
        item.text for item in request.items if isinstance(item, Message) and item.role == "user"
    )


def tool_outputs(request: ModelRequest) -> list[str]:
    return [item.output for item in request.items if isinstance(item, FunctionCallOutput)]


class Rendezvous:
    """Two models that each wait for the other's call before answering: run one after the
    other, the first waits forever (the test's timeout fails it)."""

    def __init__(self, patience: float = 5) -> None:
        self.patience = patience
        self.arrived = {"a": asyncio.Event(), "b": asyncio.Event()}

    def model(self, me: str, other: str, answer: str) -> WaitingModel:
        return WaitingModel(self, me, other, answer)


class WaitingModel:
    def __init__(self, meeting: Rendezvous, me: str, other: str, answer: str) -> None:
        self.meeting, self.me, self.other, self.answer = meeting, me, other, answer

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.meeting.arrived[self.me].set()
        await asyncio.wait_for(self.meeting.arrived[self.other].wait(), self.meeting.patience)
        reply = Message(role="assistant", content=self.answer)
        return ModelResponse(output=[reply], usage=Usage(input_tokens=3, output_tokens=2))

    async def stream(self, request: ModelRequest):  # pragma: no cover - not streamed here
        raise NotImplementedError
        yield


class SlowModel:
    """Answers after ``seconds`` (to be cancelled by a task's timeout)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.cancelled = False

    async def complete(self, request: ModelRequest) -> ModelResponse:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return ModelResponse(output=[Message(role="assistant", content="late")])

    async def stream(self, request: ModelRequest):  # pragma: no cover
        raise NotImplementedError
        yield
