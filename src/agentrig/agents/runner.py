"""``Runner``: runs an agent by composing the loop's steps.

``Runner.run`` drives a :class:`RunState` from ``rehydrate`` through ``infer`` and
``dispatch_tools`` until it is finished or paused, then ``persist`` and ``assemble``.
``run_streamed`` does the same in a task and hands the events to the caller;
``resume`` continues a paused state. Input guardrails run alongside the first model call.
Whatever stops a run early (max turns, a provider failing after every fallback, a
guardrail) carries the items and usage produced so far, and the session keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from agentrig.agents.agent import Agent
from agentrig.agents.context import RunContext
from agentrig.agents.events import RunFinished
from agentrig.agents.loop import (
    assemble,
    call_hook,
    dispatch_tools,
    infer,
    persist,
    rehydrate,
)
from agentrig.agents.result import RunResult
from agentrig.agents.state import RunState
from agentrig.agents.streaming import RunResultStreaming
from agentrig.errors import GuardrailTripped
from agentrig.items import Item
from agentrig.llm.router import ModelRouter
from agentrig.sessions.base import Session


async def drive(state: RunState, run: RunContext, session: Session | None) -> RunResult:
    """Step the run until it is finished or paused; persist; assemble the result."""
    hooks = run.hooks
    if hooks is not None:
        await call_hook(hooks, "on_run_start", run)
    try:
        while state.status == "running":
            if state.pending:
                await dispatch_tools(state, run)
            elif state.turn == 0 and state.agent.input_guardrails:
                await _first_turn_with_guardrails(state, run)
            else:
                await infer(state, run)
    except Exception as exc:
        await persist(state, session)
        with contextlib.suppress(AttributeError):  # an exception type without __dict__
            exc.new_items, exc.usage, exc.state = state.new_items, state.usage, state  # type: ignore[attr-defined]
        raise
    await persist(state, session)
    result = assemble(state, run)
    if hooks is not None:
        if state.status == "finished":
            await call_hook(hooks, "on_agent_complete", run, state.agent, state.final_output)
        await call_hook(hooks, "on_run_complete", run, result)
    return result


async def _first_turn_with_guardrails(state: RunState, run: RunContext) -> None:
    """The first model call and the input guardrails, concurrently; a tripped guardrail
    cancels the call, and no tool runs before every guardrail has passed."""
    call = asyncio.create_task(infer(state, run))
    try:
        checks = [
            g.check(run, state.agent, state.input_items) for g in state.agent.input_guardrails
        ]
        for guardrail, result in zip(
            state.agent.input_guardrails, await asyncio.gather(*checks), strict=True
        ):
            if result.tripped:
                raise GuardrailTripped(guardrail.name, result.output, stage="input")
    except BaseException:
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        raise
    await call


def _registry(agent: Agent, registry: Mapping[str, Agent] | None) -> Mapping[str, Agent]:
    return {**agent.reachable(), **(registry or {})}


class Runner:
    """Runs agents. Every method is a static one: a runner holds no state."""

    @staticmethod
    async def run(
        agent: Agent,
        input: str | Sequence[Item | dict[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
        session: Session | None = None,
        max_turns: int = 10,
        hooks: Any = None,
        router: ModelRouter | None = None,
        registry: Mapping[str, Agent] | None = None,
    ) -> RunResult:
        """Run ``agent`` on ``input`` until it answers (or pauses for an approval)."""
        state = await rehydrate(
            agent, input, context=context, session=session, max_turns=max_turns, registry=registry
        )
        run = RunContext(
            state, _registry(state.agent, registry), router=router, hooks=hooks, nested=run_nested
        )
        return await drive(state, run, session)

    @staticmethod
    def run_streamed(
        agent: Agent,
        input: str | Sequence[Item | dict[str, Any]],
        *,
        context: Mapping[str, Any] | None = None,
        session: Session | None = None,
        max_turns: int = 10,
        hooks: Any = None,
        router: ModelRouter | None = None,
        registry: Mapping[str, Agent] | None = None,
    ) -> RunResultStreaming:
        """Start the run in a task; iterate ``.events()``; ``.result`` is set at the end."""
        streaming = RunResultStreaming()

        async def go() -> None:
            try:
                state = await rehydrate(
                    agent,
                    input,
                    context=context,
                    session=session,
                    max_turns=max_turns,
                    registry=registry,
                )
                run = RunContext(
                    state,
                    _registry(state.agent, registry),
                    router=router,
                    hooks=hooks,
                    emit=streaming.push,
                    nested=run_nested,
                )
                result = await drive(state, run, session)
            except BaseException as exc:
                streaming.fail(exc)
                raise
            streaming.push(RunFinished(result.last_agent.name, result))

        streaming.task = asyncio.create_task(go())
        streaming.task.add_done_callback(_retrieve)
        return streaming

    @staticmethod
    async def resume(
        state: RunState,
        *,
        session: Session | None = None,
        hooks: Any = None,
        router: ModelRouter | None = None,
        registry: Mapping[str, Agent] | None = None,
    ) -> RunResult:
        """Continue a paused run after ``state.approve`` / ``state.reject``."""
        if state.status == "paused":
            state.status = "running"
        run = RunContext(
            state, _registry(state.agent, registry), router=router, hooks=hooks, nested=run_nested
        )
        return await drive(state, run, session)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # reported through the stream; avoid "never retrieved" warnings


async def run_nested(
    agent: Agent,
    input: str,
    *,
    parent: RunContext | None,
    context: dict[str, Any],
    max_turns: int,
) -> RunResult:
    """A nested, isolated run (agents as tools, agent guardrails): its own conversation,
    no session; usage rolls up to the parent and its events reach the parent's stream."""
    state = await rehydrate(agent, input, context=context, max_turns=max_turns)
    run = RunContext(
        state,
        agent.reachable(),
        router=parent.router if parent else None,
        emit=parent.emit if parent else None,
        nested=run_nested,
    )
    result = await drive(state, run, None)
    if parent is not None:
        parent.state.usage = parent.state.usage + result.usage
        parent.state.cost_micros += result.cost_micros
    return result
