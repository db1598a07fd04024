"""The agentic loop as an explicit state machine whose steps are public functions.

::

               rehydrate(agent, input, session)
                          |
                          v
        +----------> [running] -- infer: one model call ------+
        |                 ^                                    |
        |                 |  tool calls              no calls  v
        |          dispatch_tools  <-----------------+   final output?
        |            |        |                          |         |
        |   handoff: |        | approval needed     valid|         |invalid (retry)
        |   switch   |        v                          v         +--> [running]
        +------------+    [paused] --approve/reject--> [finished]
                              |        + Runner.resume   |
                              v                          v
                           persist  --------------->  assemble -> RunResult

Each step takes the :class:`RunState` and the live :class:`RunContext` and moves the run
one step; ``Runner.run`` composes them (``agentrig.agents.runner``), and a user can call
them one by one or wrap them with middleware. Every step boundary leaves a state that
``state.to_json()`` can save.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from agentrig.agents.agent import Agent, Handoff
from agentrig.agents.context import RunContext
from agentrig.agents.events import AgentChanged, ItemEvent
from agentrig.agents.result import RunResult
from agentrig.agents.routing import default_router
from agentrig.agents.state import RunState
from agentrig.agents.streaming import infer_streamed
from agentrig.errors import (
    AgentrigError,
    GuardrailTripped,
    MaxTurnsExceeded,
    OutputInvalid,
    ToolFailed,
)
from agentrig.items import FunctionCall, FunctionCallOutput, Item, Message, as_items
from agentrig.llm.types import LLMClient, ModelRequest, ModelResponse, ToolSpec
from agentrig.sessions.base import Session, SessionMeta
from agentrig.tools.base import Tool, ToolContext, ToolInputError, tool_spec

log = logging.getLogger(__name__)

MAX_OUTPUT_RETRIES = 2


# --- rehydrate ---------------------------------------------------------------------------


async def rehydrate(
    agent: Agent,
    input: str | Sequence[Item | dict[str, Any]],
    *,
    context: Mapping[str, Any] | None = None,
    session: Session | None = None,
    max_turns: int = 10,
    registry: Mapping[str, Agent] | None = None,
) -> RunState:
    """Start a run: the session's items and tool state, the input, a private context.

    With ``registry``, the agent that last answered in the session (by item attribution)
    continues the conversation, if the registry knows it."""
    if max_turns < 1:
        raise ValueError(f"max_turns must be at least 1, got {max_turns}")
    history: list[Item] = []
    meta = SessionMeta()
    if session is not None:
        history, meta = await session.get_items(), await session.get_meta()
    if registry is not None:
        last = next((i.agent for i in reversed(history) if getattr(i, "agent", None)), None)
        agent = registry.get(last, agent) if last else agent
    items = as_items(input)
    return RunState(
        agent=agent,
        conversation=[*history, *items],
        context=copy.deepcopy(dict(context or {})),
        max_turns=max_turns,
        input_items=items,
        tool_state=copy.deepcopy(meta.tool_state),
        session_id=getattr(session, "session_id", None),
    )


# --- infer -------------------------------------------------------------------------------


async def infer(state: RunState, run: RunContext) -> ModelResponse:
    """One model call for the current agent; its output joins the conversation. A response
    without tool calls is the final answer (validated against ``output_type``)."""
    agent = state.agent
    if state.turn >= state.max_turns:
        raise MaxTurnsExceeded(
            f"agent {agent.name!r} reached max_turns={state.max_turns} without a final answer"
        )
    # The live conversation, not a copy: a turn must not cost more as it grows. Clients
    # use the items during the call and keep nothing; the loop appends after it returns.
    request = ModelRequest.model_construct(
        items=state.conversation,
        instructions=await _instructions(agent, run),
        tools=agent.tool_specs if not agent.mcp_servers else await _with_mcp_specs(agent, run),
        tool_choice=_tool_choice(state),
        parallel_tool_calls=None,
        output_schema=agent.output_schema,
        settings=agent.model_settings,
    )
    if run.hooks is not None:
        await call_hook(run.hooks, "on_agent_thinking", run, agent)
    client = resolve_client(agent, run)
    if run.emit is None:
        response = await client.complete(request)
    else:
        response = await infer_streamed(client, request, agent.name, run.emit)
    state.turn += 1
    state.usage = state.usage + response.usage
    state.cost_micros += response.cost_micros
    calls: list[FunctionCall] = []
    for item in response.output:
        item.agent = agent.name
        if isinstance(item, FunctionCall):
            calls.append(item)
        if run.emit is not None:
            run.emit(ItemEvent(agent.name, _event_name(agent, item), item))
    state.conversation.extend(response.output)
    state.new_items.extend(response.output)
    state.pending = calls
    if not calls:
        await _conclude(state, run, response)
    return response


def _tool_choice(state: RunState) -> str:
    """The agent's ``tool_choice`` until it has seen a tool's output, then ``auto``: forcing
    a tool on every turn would never let the model answer."""
    choice = state.agent.tool_choice
    if choice != "auto" and state.conversation:
        last = state.conversation[-1]
        if isinstance(last, FunctionCallOutput) and last.agent == state.agent.name:
            return "auto"
    return choice


def resolve_client(agent: Agent, run: RunContext) -> LLMClient:
    if not isinstance(agent.model, str):
        return agent.model
    if run.router is None:
        run.router = default_router()
    return run.router.client(agent.model)


async def _instructions(agent: Agent, run: RunContext) -> str | None:
    instructions = agent.effective_instructions
    if instructions is None or isinstance(instructions, str):
        return instructions
    value = instructions(run, agent)
    return await value if inspect.isawaitable(value) else value


async def _with_mcp_specs(agent: Agent, run: RunContext) -> list[ToolSpec]:
    """The agent's tool specs plus those of its MCP servers' tools (listed each turn)."""
    tools: dict[str, Tool] = {}
    for server in agent.mcp_servers:
        for tool in await server.list_tools():
            if tool.name in tools or agent.tool_named(tool.name) or agent.handoff_named(tool.name):
                raise AgentrigError(
                    f"agent {agent.name!r}: the MCP tool {tool.name!r} clashes with another "
                    "tool of the same name (use allowed_tools to leave one out)"
                )
            tools[tool.name] = tool
    run.mcp_tools[agent.name] = tools
    return [*agent.tool_specs, *(tool_spec(tool) for tool in tools.values())]


def _event_name(agent: Agent, item: Item) -> Any:
    if isinstance(item, FunctionCall):
        return "handoff_requested" if agent.handoff_named(item.name) else "tool_called"
    return "message_output" if isinstance(item, Message) else "reasoning"


async def _conclude(state: RunState, run: RunContext, response: ModelResponse) -> None:
    agent = state.agent
    text = response.text
    if agent.output_type is None:
        output: Any = text
    else:
        try:
            output = agent.output_type.model_validate_json(text)
        except ValidationError as exc:
            if state.output_retries >= MAX_OUTPUT_RETRIES:
                raise _invalid_output(agent, exc) from None
            state.output_retries += 1
            correction = Message(
                role="user",
                content=f"Your answer does not match the required JSON schema: {exc}. "
                "Answer again with JSON only.",
            )
            state.conversation.append(correction)
            return
    for guardrail in agent.output_guardrails:
        result = await guardrail.check(run, agent, output)
        if result.tripped:
            raise GuardrailTripped(guardrail.name, result.output, stage="output")
    state.final_output = output
    state.status = "finished"


def _invalid_output(agent: Agent, exc: ValidationError) -> AgentrigError:
    return OutputInvalid(
        f"agent {agent.name!r}: the answer does not match {agent.output_type.__name__} "
        f"after {MAX_OUTPUT_RETRIES} retries: {exc}"
    )


# --- dispatch_tools ----------------------------------------------------------------------


async def dispatch_tools(state: RunState, run: RunContext) -> None:
    """Answer the pending tool calls: run tools (concurrently, results in call order), ask
    for approvals (pausing the run), and hand off (the first handoff call wins)."""
    agent = state.agent
    handoff: tuple[FunctionCall, Handoff] | None = None
    answers: dict[str, FunctionCallOutput] = {}
    runnable: list[tuple[FunctionCall, Tool]] = []
    waiting: list[FunctionCall] = []
    for call in state.pending:
        target = agent.handoff_named(call.name)
        if target is not None:
            if handoff is None:
                handoff = (call, target)
            else:
                answers[call.call_id] = _answer(
                    call,
                    agent,
                    f"Ignored: the conversation is handed to {handoff[1].agent_name} instead.",
                )
            continue
        tool = agent.tool_named(call.name) or run.mcp_tools.get(agent.name, {}).get(call.name)
        if tool is None:
            known = sorted(t.name for t in agent.tool_specs)
            answers[call.call_id] = _answer(
                call, agent, f"Error: no tool named {call.name!r}; available: {known}"
            )
        elif tool.needs_approval and call.call_id not in state.decisions:
            waiting.append(call)
        elif tool.needs_approval and not state.decisions[call.call_id].get("approved"):
            reason = state.decisions[call.call_id].get("reason") or "no reason given"
            answers[call.call_id] = _answer(call, agent, f"The call was rejected: {reason}")
        else:
            runnable.append((call, tool))
    if len(runnable) == 1:
        call, tool = runnable[0]
        answers[call.call_id] = await run_tool(state, run, call, tool)
    elif runnable:
        limit = asyncio.Semaphore(agent.tool_concurrency)

        async def bounded(call: FunctionCall, tool: Tool) -> FunctionCallOutput:
            async with limit:
                return await run_tool(state, run, call, tool)

        outputs = await asyncio.gather(*(bounded(call, tool) for call, tool in runnable))
        answers.update((output.call_id, output) for output in outputs)
    for call in state.pending:
        output = answers.get(call.call_id)
        if output is not None:
            state.conversation.append(output)
            state.new_items.append(output)
            if run.emit is not None:
                run.emit(ItemEvent(agent.name, "tool_output", output))
    if waiting:
        state.pending = [*waiting, *([handoff[0]] if handoff else [])]
        state.status = "paused"
        return
    state.pending = []
    if handoff is not None:
        await _hand_off(state, run, *handoff)


async def run_tool(
    state: RunState, run: RunContext, call: FunctionCall, tool: Tool
) -> FunctionCallOutput:
    """Run one tool call: retries after exceptions, a time limit, errors told to the model."""
    agent = state.agent
    ctx = ToolContext(
        context=state.context,
        state=state.tool_state.setdefault(tool.name, {}),
        call_id=call.call_id,
        agent=agent.name,
        run=run,
    )
    if run.hooks is not None:
        await call_hook(run.hooks, "on_tool_start", run, agent, call)
    while True:
        try:
            if tool.timeout is None:
                text = await tool.invoke(ctx, call.arguments)
            else:
                async with asyncio.timeout(tool.timeout):
                    text = await tool.invoke(ctx, call.arguments)
            break
        except ToolInputError as exc:
            text = f"Error: {exc}"
            break
        except TimeoutError:
            text = f"Error: {tool.name} did not finish within {tool.timeout:g} s and was cancelled"
            break
        except Exception as exc:
            if ctx.retry < tool.max_retries:
                ctx.retry += 1
                continue
            if tool.fail_run:
                raise ToolFailed(f"tool {tool.name!r} failed: {type(exc).__name__}: {exc}") from exc
            text = f"Error: {tool.name} failed: {type(exc).__name__}: {exc}"
            break
    output = _answer(call, agent, text)
    if run.hooks is not None:
        await call_hook(run.hooks, "on_tool_complete", run, agent, call, text)
    return output


def _answer(call: FunctionCall, agent: Agent, text: str) -> FunctionCallOutput:
    return FunctionCallOutput(call_id=call.call_id, output=text, agent=agent.name)


async def _hand_off(state: RunState, run: RunContext, call: FunctionCall, handoff: Handoff) -> None:
    source = state.agent
    name = handoff.agent_name
    target = handoff.agent if isinstance(handoff.agent, Agent) else run.registry.get(name)
    if target is None:
        raise AgentrigError(f"agent {source.name!r} hands off to unknown agent {name!r}")
    output = _answer(call, source, json.dumps({"assistant": target.name}))
    state.conversation.append(output)
    state.new_items.append(output)
    state.agent = target
    if handoff.input_filter is not None:
        state.conversation = list(handoff.input_filter(list(state.conversation)))
    if run.emit is not None:
        run.emit(ItemEvent(source.name, "handoff_done", output))
        run.emit(AgentChanged(target.name, source.name))
    if run.hooks is not None:
        await call_hook(run.hooks, "on_agent_handoff", run, source, target)


# --- assemble and persist ----------------------------------------------------------------


def assemble(state: RunState, run: RunContext) -> RunResult:
    """The result of the run as it stands (finished, or paused for approvals)."""
    return RunResult(
        final_output=state.final_output,
        new_items=state.new_items,
        last_agent=state.agent,
        usage=state.usage,
        cost_micros=state.cost_micros,
        context=state.context,
        interruptions=state.interruptions,
        state=state,
        input_items=state.input_items,
    )


async def persist(state: RunState, session: Session | None) -> None:
    """Save to the session what it does not have yet, with the agent and tool state."""
    if session is None:
        return
    produced = [*state.input_items, *state.new_items]
    if state.persisted < len(produced):
        await session.add_items(produced[state.persisted :])
        state.persisted = len(produced)
    await session.set_meta(SessionMeta(current_agent=state.agent.name, tool_state=state.tool_state))


async def call_hook(hooks: Any, name: str, *args: Any) -> None:
    """Call ``hooks.<name>(*args)`` if it exists, sync or async; a failing hook is logged
    and never breaks the run."""
    method = getattr(hooks, name, None)
    if method is None:
        return
    try:
        value = method(*args)
        if inspect.isawaitable(value):
            await value
    except Exception:
        log.exception("callback %s failed; the run goes on", name)
