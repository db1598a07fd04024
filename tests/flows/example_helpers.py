"""What the tests of the ready-made crews and flows share: one scripted model behind the
router's ``default`` role (the role every example agent uses) that answers each agent from
its own script, and, run as a script, the second process of the support flow's test.

``python example_helpers.py DATABASE_URL RUN_ID REPLY`` loads the support flow with a model
that has no turn at all, reads the paused run from the database by id, replies to its
question, resumes it and prints the result and the model calls made as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from agentrig import ModelRouter
from agentrig.crews.catalog import EXAMPLES
from agentrig.items import FunctionCallOutput, Message
from agentrig.llm.scripted import ScriptExhausted, Turn
from agentrig.llm.types import ModelRequest, ModelResponse, ModelStreamEvent
from agentrig.testing import ScriptedModel


class ByRole:
    """A model answering each agent from the script of its role: an agent is recognised by
    its instructions, which open with "You are <role>". ``calls`` lists the roles in the
    order their calls arrived; a call from a role without a script fails."""

    provider = "scripted"
    model = name = "by-role"

    def __init__(self, scripts: Mapping[str, Sequence[Turn]] | None = None) -> None:
        self.models = {
            role: ScriptedModel(turns, name=role) for role, turns in (scripts or {}).items()
        }
        self.calls: list[str] = []

    def requests(self, role: str) -> list[ModelRequest]:
        return self.models[role].requests

    def remaining(self) -> dict[str, int]:
        """The turns each role has not used (all zero once every script was played)."""
        return {role: model.remaining for role, model in self.models.items()}

    def _model(self, request: ModelRequest) -> ScriptedModel:
        instructions = request.instructions or ""
        for role, model in self.models.items():
            if instructions.startswith(f"You are {role}"):
                self.calls.append(role)
                return model
        self.calls.append(instructions.split(".")[0])
        raise ScriptExhausted(f"no script for the agent of {instructions[:60]!r}")

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self._model(request).complete(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        async for event in self._model(request).stream(request):
            yield event


def router_for(model: Any) -> ModelRouter:
    """A router whose ``default`` role is ``model``."""
    router = ModelRouter()
    router.register("scripted/agents", model)
    router.add_role("default", ["scripted/agents"])
    return router


def sent(request: ModelRequest) -> str:
    """The text of the user messages of a request."""
    return "\n".join(
        item.text for item in request.items if isinstance(item, Message) and item.role == "user"
    )


def tool_outputs(request: ModelRequest) -> list[str]:
    return [item.output for item in request.items if isinstance(item, FunctionCallOutput)]


async def resume_support(database_url: str, run_id: str, reply: str) -> dict[str, Any]:
    from agentrig.flows.loader import load_flow
    from agentrig.store.shared import close_shared_databases

    model = ByRole()  # no script: any agent called again would fail and show in calls
    flow = load_flow(
        EXAMPLES / "support" / "flow.yaml", router=router_for(model), database_url=database_url
    )
    run = await flow.get_run(run_id)
    assert run is not None, f"no run {run_id} in {database_url}"
    run.reply(reply)
    result = await flow.resume(run)
    await close_shared_databases()
    return {"result": result.to_json(), "calls": model.calls}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(resume_support(*sys.argv[1:4]))))
