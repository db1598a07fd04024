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

from agentrig.agents import Agent
from agentrig.crews.prompts import CrewPrompts
from agentrig.errors import AgentRunError
from agentrig.tools.base import Tool, ToolContext
from agentrig.tools.function_tool import FunctionTool

OnDelegate = Callable[[str, str, str, str], None]  # agent, coworker, kind, request
DELEGATION_TOOLS = ("delegate_work", "ask_question")


def _key(text: str) -> str:
    return text.strip().strip("\"'`").strip().casefold()


class Delegation:
    """The delegations of one task: the coworkers it may ask and how many asks are left."""

    def __init__(
        self,
        coworkers: Mapping[str, Agent],
        *,
        limit: int,
        prompts: CrewPrompts,
        on_delegate: OnDelegate,
        max_turns: int = 10,
    ) -> None:
        self.coworkers = dict(coworkers)
        self.limit = limit
        self.count = 0
        self.prompts = prompts
        self.on_delegate = on_delegate
        self.max_turns = max_turns

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

    def tools_for(self, asker: str) -> list[Tool]:
        """``delegate_work`` and ``ask_question`` for the agent called ``asker``."""
        coworkers = self.listing(asker)

        async def delegate_work(ctx: ToolContext, coworker: str, task: str, context: str) -> str:
            """Delegate a task to a coworker.

            Args:
                coworker: the coworker's name or role.
                task: what the coworker should do.
                context: everything the coworker needs to know to do it.
            """
            return await self._ask(ctx, asker, "delegate_work", coworker, task, context)

        async def ask_question(ctx: ToolContext, coworker: str, question: str, context: str) -> str:
            """Ask a coworker a question.

            Args:
                coworker: the coworker's name or role.
                question: the question.
                context: everything the coworker needs to know to answer it.
            """
            return await self._ask(ctx, asker, "ask_question", coworker, question, context)

        return [
            FunctionTool(
                delegate_work, description=self.prompts.delegate_work.format(coworkers=coworkers)
            ),
            FunctionTool(
                ask_question, description=self.prompts.ask_question.format(coworkers=coworkers)
            ),
        ]

    async def _ask(
        self, ctx: ToolContext, asker: str, kind: str, name: str, request: str, context: str
    ) -> str:
        agent = self.find(name, asker)
        if agent is None:
            return self.prompts.unknown_coworker.format(
                coworker=name, coworkers=self.listing(asker)
            )
        if self.count >= self.limit:
            return self.prompts.delegation_limit.format(limit=self.limit)
        self.count += 1
        self.on_delegate(asker, agent.name, kind, request)
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
