"""Delegation between crew mates, with the loop guard that CrewAI's hierarchy lacks.

A manager (or an agent with ``allow_delegation=True``) gets two tools:
``delegate_work(coworker, task, context)`` and ``ask_question(coworker, question, context)``.
Each runs the coworker's agent on that piece, as a nested run of the task (its own
conversation; usage and cost roll up to the task). The guard: a coworker is found by name
or role (case and quotes ignored) among the crew mates only, so the asker itself, the
manager and strangers get an error listing the valid coworkers; coworkers run without the
delegation tools, so nobody delegates back; and a task allows at most ``limit`` delegations,
after which the tools tell the model to answer itself.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agentrig.agents import Agent
from agentrig.crews.prompts import CrewPrompts
from agentrig.errors import AgentRunError
from agentrig.tools.base import ToolContext, ToolInputError

OnDelegate = Callable[[str, str, str, str], None]  # agent, coworker, kind, request
DELEGATION_TOOLS = ("delegate_work", "ask_question")


class _DelegateWork(BaseModel):
    coworker: str = Field(description="The coworker's name or role.")
    task: str = Field(description="What the coworker should do.")
    context: str = Field(description="Everything the coworker needs to know to do it.")


class _AskQuestion(BaseModel):
    coworker: str = Field(description="The coworker's name or role.")
    question: str = Field(description="The question.")
    context: str = Field(description="Everything the coworker needs to know to answer it.")


# Built once: a crew makes these two tools for every task, so they must cost nothing to make.
_ARGUMENTS = {"delegate_work": _DelegateWork, "ask_question": _AskQuestion}
_SCHEMAS = {name: model.model_json_schema() for name, model in _ARGUMENTS.items()}


def _key(text: str) -> str:
    return text.strip().strip("\"'`").strip().casefold()


class DelegationTool:
    """``delegate_work`` or ``ask_question`` for one asker in one task."""

    needs_approval = False
    timeout: float | None = None
    max_retries = 0
    fail_run = False

    def __init__(self, delegation: Delegation, name: str, asker: str, description: str) -> None:
        self.delegation, self.name, self.asker = delegation, name, asker
        self.description = description
        self.parameters = _SCHEMAS[name]

    async def invoke(self, ctx: ToolContext, arguments: str) -> str:
        try:
            args = _ARGUMENTS[self.name].model_validate_json(arguments or "{}")
        except ValidationError as exc:
            raise ToolInputError(f"{self.name}: {exc.errors()[0]['msg']} ({arguments})") from None
        request = getattr(args, "task", None) or getattr(args, "question", "")
        return await self.delegation.ask(
            ctx, self.asker, self.name, args.coworker, request, args.context
        )


class Delegation:
    """The delegations of one task: the coworkers it may ask and how many asks are left.

    ``prepare`` turns a crew mate into the agent that runs (its model metered for the
    task); it is applied to a coworker when first asked, not to every crew mate up front."""

    def __init__(
        self,
        coworkers: Mapping[str, Agent],
        *,
        limit: int,
        prompts: CrewPrompts,
        on_delegate: OnDelegate,
        prepare: Callable[[Agent], Agent] = lambda agent: agent,
        max_turns: int = 10,
    ) -> None:
        self.coworkers = coworkers
        self.limit = limit
        self.count = 0
        self.prompts = prompts
        self.on_delegate = on_delegate
        self.prepare = prepare
        self.max_turns = max_turns
        self._prepared: dict[str, Agent] = {}

    def find(self, name: str, asker: str) -> Agent | None:
        """The coworker called ``name`` (its name or its role), never the asker itself."""
        wanted = _key(name)
        for agent in self.coworkers.values():
            if agent.name != asker and wanted in (_key(agent.name), _key(agent.role or "")):
                return agent
        return None

    def listing(self, asker: str) -> str:
        names = [
            f"{agent.name} ({agent.role})" if agent.role else agent.name
            for agent in self.coworkers.values()
            if agent.name != asker
        ]
        return ", ".join(names) or "none"

    def tools_for(self, asker: str) -> list[Any]:
        """``delegate_work`` and ``ask_question`` for the agent called ``asker``."""
        coworkers = self.listing(asker)
        return [
            DelegationTool(
                self, name, asker, getattr(self.prompts, name).format(coworkers=coworkers)
            )
            for name in DELEGATION_TOOLS
        ]

    async def ask(
        self, ctx: ToolContext, asker: str, kind: str, name: str, request: str, context: str
    ) -> str:
        found = self.find(name, asker)
        if found is None:
            return self.prompts.unknown_coworker.format(
                coworker=name, coworkers=self.listing(asker)
            )
        if self.count >= self.limit:
            return self.prompts.delegation_limit.format(limit=self.limit)
        self.count += 1
        self.on_delegate(asker, found.name, kind, request)
        agent = self._prepared.get(found.name)
        if agent is None:
            agent = self._prepared[found.name] = self.prepare(found)
        prompt = self.prompts.delegated_task.format(task=request, context=context or "none")
        try:
            result = await ctx.run.run_nested(
                agent, prompt, context=copy.deepcopy(ctx.context), max_turns=self.max_turns
            )
        except AgentRunError as exc:
            return f"Error: {agent.name} could not finish: {exc}"
        if result.interruptions:
            names = sorted({i.name for i in result.interruptions})
            return (
                f"Error: {agent.name} needs a person's approval to use {names}, which a "
                "delegated piece of work cannot wait for; do this part another way."
            )
        output = result.final_output
        return output.model_dump_json() if hasattr(output, "model_dump_json") else str(output)
