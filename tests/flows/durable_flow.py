"""A three-state flow of agents, run as a subprocess by the durability tests.

``run DB MARKER``: research and writing answer, then review's model writes MARKER and
blocks until the process is killed. ``resume DB RUN_ID``: research's and writing's models
have no turns left (a call would fail the step), review answers; prints the result as JSON.
``reference``: the same flow in memory with every model answering, for the totals.
"""

import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path

from agentrig import Agent, ModelRouter
from agentrig.flows import Flow, OnSuccess
from agentrig.items import Message
from agentrig.llm.cost import Price
from agentrig.llm.types import ModelResponse
from agentrig.testing import ScriptedModel, text
from agentrig.usage import Usage

PRICE = Price(input=Decimal(3), output=Decimal(7))


class Blocking:
    """Writes the marker file, then never answers (the test kills the process)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    async def complete(self, request):
        Path(self.marker).write_text("in review")
        await asyncio.Event().wait()
        return ModelResponse(output=[Message(role="assistant", content="never")], usage=Usage())

    async def stream(self, request):
        Path(self.marker).write_text("in review")
        await asyncio.Event().wait()
        yield


def build(database_url, research, writing, review) -> Flow:
    router = ModelRouter()
    for name, model in (("research", research), ("writing", writing), ("review", review)):
        router.register(f"scripted/{name}", model, price=PRICE)
    flow = Flow("durable", variables={"topic": ""}, router=router, database_url=database_url,
                persist=database_url is not None)  # fmt: skip
    for name in ("research", "writing", "review"):
        agent = Agent(name=name, instructions=f"Do the {name}.", model=f"scripted/{name}")
        flow.state(name, run=agent, initial=name == "research")
    flow.state("published", final=True)
    flow.transition("research", "writing", when=OnSuccess())
    flow.transition("writing", "review", when=OnSuccess())
    flow.transition("review", "published", when=OnSuccess())
    return flow


def answering(name: str) -> ScriptedModel:
    return ScriptedModel([text(f"{name} answer in a few words")], name=name)


async def main(mode: str, *args: str) -> None:
    if mode == "run":
        url, marker = args
        flow = build(url, answering("research"), answering("writing"), Blocking(marker))
        stream = flow.run_streamed({"topic": "bees"})
        async for event in stream.events():
            if event.type == "flow.started":
                print(json.dumps({"run_id": event.run_id}), flush=True)
        return
    if mode == "resume":
        url, run_id = args
        exhausted = [ScriptedModel([], name=n) for n in ("research", "writing")]
        review = answering("review")
        result = await build(url, *exhausted, review).resume(run_id)
    else:
        result = await build(None, *(answering(n) for n in ("research", "writing", "review"))).run(
            {"topic": "bees"}
        )
    print(json.dumps(result.to_json()))


asyncio.run(main(*sys.argv[1:]))
