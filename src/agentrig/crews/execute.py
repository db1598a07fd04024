"""Executing one task: its runs, guardrail retries, timeout, pauses, and its record.

Every attempt at a task is one ``Runner`` run of the performing agent (the task's agent, or
the manager in a hierarchical crew) with the task's tools and output type, its model metered
for the crew. A rejected answer is tried again with the feedback; a run waiting for a tool
approval, or an answer waiting for review, leaves the task ``awaiting_*`` with what resuming
needs in its :class:`~agentrig.crews.state.TaskRecord`. The task's usage, cost, attempts and
delegations are recorded whatever happens, a timeout and a crew limit included.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentrig.agents import Agent, Runner, RunResult, RunState
from agentrig.crews.delegation import Delegation
from agentrig.crews.events import (
    CrewEvent,
    ModelCalled,
    TaskDelegated,
    TaskFinished,
    TaskRetrying,
    TaskStarted,
)
from agentrig.crews.guardrails import GuardrailVerdict, check
from agentrig.crews.meter import (
    CrewLimitReached,
    CrewMeter,
    MeteredClient,
    MeteredRouter,
    TaskMeter,
)
from agentrig.crews.prompts import CrewPrompts
from agentrig.crews.result import TaskOutput, as_json
from agentrig.crews.state import CrewState, TaskRecord
from agentrig.crews.task import Task, fill
from agentrig.errors import AgentrigError, BudgetExceeded
from agentrig.llm.types import ModelResponse
from agentrig.usage import Usage


@dataclass
class Kickoff:
    """What every task of one kickoff (or resume) shares."""

    crew: str
    state: CrewState
    meter: CrewMeter
    router: Any
    prompts: CrewPrompts
    emit: Callable[[CrewEvent], None]
    agents: Mapping[str, Agent]  # the crew mates, by name (the manager is not one)
    max_delegations: int

    @property
    def inputs(self) -> dict[str, Any]:
        return self.state.inputs


def metered(agent: Agent, meter: TaskMeter, router: Any, **changes: Any) -> Agent:
    """``agent`` with its model wrapped by the task's meter (a role is resolved now) and
    ``changes`` applied, in one clone."""
    inner = agent.model if not isinstance(agent.model, str) else router.client(agent.model)
    return agent.clone(model=MeteredClient(inner, meter, agent.name), **changes)


def output_of(task: Task, record: TaskRecord) -> TaskOutput:
    structured = record.structured
    if structured is not None and task.output_type is not None:
        structured = task.output_type.model_validate(structured)
    return TaskOutput(
        task=record.name,
        agent=record.agent,
        description=task.description,
        raw=record.raw,
        structured=structured,
        status=record.status,  # type: ignore[arg-type]
        attempts=record.attempts,
        delegations=record.delegations,
        usage=Usage(**record.usage),
        cost_micros=record.cost_micros,
        duration=record.duration,
        error=record.error,
    )


class TaskExecution:
    """One task of one kickoff, from its prompt to its record."""

    def __init__(self, kick: Kickoff, task: Task, performer: Agent, context: str) -> None:
        self.kick = kick
        self.task = task
        self.record = kick.state.tasks[task.name]
        self.record.agent = performer.name
        self.meter = TaskMeter(kick.meter, task.name, self._on_call)
        self.router = MeteredRouter(kick.router, self.meter)
        self.delegation: Delegation | None = None
        if performer.allow_delegation or performer.name not in kick.agents:  # the manager
            self.delegation = Delegation(
                kick.agents,
                limit=kick.max_delegations,
                prompts=kick.prompts,
                on_delegate=self._on_delegate,
                prepare=lambda agent: metered(agent, self.meter, kick.router),
            )
        self.performer = self._prepare(performer)
        description, expected = task.render(kick.inputs)
        prompt = kick.prompts.task.format(description=description, expected_output=expected)
        if context:
            prompt += kick.prompts.context.format(context=context)
        if task.agent is not None and performer.name != task.agent.name:
            prompt += kick.prompts.assigned.format(agent=task.agent.name)
        self.prompt, self.description, self.expected = prompt, description, expected

    def _prepare(self, agent: Agent) -> Agent:
        tools = list(self.task.tools if self.task.tools is not None else agent.tools)
        if self.delegation is not None:
            tools += self.delegation.tools_for(agent.name)
        output_type = self.task.output_type or agent.output_type
        return metered(agent, self.meter, self.kick.router, tools=tools, output_type=output_type)

    def _on_call(self, meter: TaskMeter, agent: str, response: ModelResponse) -> None:
        cost = self.record.cost_micros + meter.cost_micros
        self.kick.emit(
            ModelCalled(self.task.name, agent, response.usage, response.cost_micros, cost)
        )

    def _on_delegate(self, agent: str, coworker: str, kind: str, request: str) -> None:
        self.kick.emit(TaskDelegated(self.task.name, agent, coworker, kind, request))

    # --- running ----------------------------------------------------------------------

    async def run(self) -> None:
        """Run (or continue) the task; its record says how it ended. A crew limit is
        re-raised (as ``CrewLimitReached``) after the record is written: it ends the crew."""
        record, started = self.record, time.perf_counter()
        record.error = None
        timer = asyncio.timeout(self.task.timeout)
        try:
            async with timer:
                await self._attempts()
        except TimeoutError as exc:
            if not timer.expired():  # raised by something inside, not the task's timeout
                record.status, record.error = "failed", f"TimeoutError: {exc}"
            else:
                record.status, record.error = "timed_out", f"timed out after {self.task.timeout} s"
        except CrewLimitReached as exc:
            record.status, record.error = "failed", str(exc)
            raise
        except BudgetExceeded as exc:  # the router's budget: it ends the crew as well
            record.status, record.error = "failed", str(exc)
            raise CrewLimitReached(str(exc), "budget") from exc
        except AgentrigError as exc:
            record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            record.add_usage(self.meter.usage, self.meter.cost_micros)
            record.duration += time.perf_counter() - started
            if self.delegation is not None:
                record.delegations += self.delegation.count
            self.kick.emit(TaskFinished(output_of(self.task, record)))

    async def _attempts(self) -> None:
        record = self.record
        prompt = self.prompt
        if record.status == "awaiting_review" and record.decision is not None:
            record.decision = None
            return await self._finish()
        if record.feedback is not None:  # a reviewer revised the answer
            prompt += self.kick.prompts.retry.format(previous=record.raw, feedback=record.feedback)
            record.feedback = None
        while True:
            if record.status == "awaiting_approval" and record.run_state is not None:
                result = await self._resume_run(record)
            else:
                record.attempts += 1
                self.kick.emit(TaskStarted(self.task.name, self.performer.name, record.attempts))
                result = await Runner.run(
                    self.performer,
                    prompt,
                    context=dict(self.kick.inputs),
                    router=self.router,  # type: ignore[arg-type]
                    max_turns=self.task.max_turns,
                )
            if result.interruptions:
                record.status, record.run_state = "awaiting_approval", result.state.to_json()
                return
            record.status, record.run_state = "running", None
            self._keep(result.final_output)
            feedback = await self._verdict()
            if feedback is None:
                break
            if record.attempts > self.task.max_retries:
                record.status, record.error = "failed", f"guardrail: {feedback}"
                return
            self.kick.emit(TaskRetrying(self.task.name, record.attempts + 1, feedback))
            prompt = self.prompt + self.kick.prompts.retry.format(
                previous=record.raw, feedback=feedback
            )
        if self.task.human_input:
            record.status = "awaiting_review"
            return
        await self._finish()

    async def _resume_run(self, record: TaskRecord) -> RunResult:
        state = RunState.from_json(record.run_state or {}, self.performer)
        decision = record.decision or {"approved": True}
        record.decision = None
        for interruption in state.interruptions:
            if decision.get("approved"):
                state.approve(interruption)
            else:
                state.reject(interruption, decision.get("reason", ""))
        state.status = "running"
        return await Runner.resume(state, router=self.router)  # type: ignore[arg-type]

    def _keep(self, output: Any) -> None:
        if hasattr(output, "model_dump"):
            self.record.structured = as_json(output)
            self.record.raw = output.model_dump_json()
        else:
            self.record.structured, self.record.raw = None, "" if output is None else str(output)

    async def _verdict(self) -> str | None:
        """The guardrail's feedback, or ``None`` when it accepts (or there is none)."""
        if self.task.guardrail is None:
            return None
        verdict = await check(self.task.guardrail, output_of(self.task, self.record), self._judge)
        if not verdict.accepted:
            return verdict.feedback
        if verdict.replacement is not None:
            self._keep(verdict.replacement)
        return None

    async def _judge(self, judge: Agent, output: TaskOutput) -> GuardrailVerdict:
        prompt = self.kick.prompts.guardrail_agent.format(
            description=self.description, expected_output=self.expected, output=output.raw
        )
        agent = metered(judge, self.meter, self.kick.router, output_type=GuardrailVerdict)
        result = await Runner.run(agent, prompt, router=self.router, max_turns=3)  # type: ignore[arg-type]
        verdict = result.final_output
        if not isinstance(verdict, GuardrailVerdict):
            raise AgentrigError(f"guardrail agent {judge.name!r} gave no verdict: {verdict!r}")
        return verdict

    async def _finish(self) -> None:
        record = self.record
        record.status = "completed"
        if self.task.output_file:
            path = Path(
                fill(self.task.output_file, self.kick.inputs, where=f"task {self.task.name!r}")
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            text = record.raw
            if record.structured is not None:
                text = json.dumps(record.structured, indent=2, ensure_ascii=False)
            path.write_text(text + "\n", encoding="utf-8")
        if self.task.callback is not None:
            value = self.task.callback(output_of(self.task, record))
            if inspect.isawaitable(value):
                await value
