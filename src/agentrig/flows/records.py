"""What a flow run is made of, as stored: its steps, its interruptions, the run itself.

:class:`FlowRun` is the durable record written at every step boundary: the state to run
next, the variables, the history of finished steps, the visits per state and, when the
flow is paused, the paused crew's or agent's state with the decisions taken on it. It is
JSON (versioned like ``CrewState``), so a run stopped in one process resumes in another
from the record and the flow definition. Decisions are taken here (``approve``,
``revise``, ``reply``) and applied when the run resumes.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from agentrig.agents import StateVersionError
from agentrig.crews import CrewState
from agentrig.errors import AgentrigError
from agentrig.usage import Usage

FLOW_RUN_VERSION = 1
StepStatus = Literal["completed", "failed", "paused"]
FlowStatus = Literal["running", "paused", "completed", "failed"]
InterruptionKind = Literal["review", "approval", "human"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class StepRecord:
    """One visit of one state: when it ran, how it ended, what it answered and cost, and
    the transition taken after it (``next_state``, with the ``condition`` that held)."""

    state: str
    visit: int
    status: StepStatus = "completed"
    output: str = ""
    structured: Any = None  # a crew's or agent's structured output, as JSON
    error: str | None = None
    started_at: str = ""
    finished_at: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_micros: int = 0
    next_state: str | None = None
    condition: str | None = None

    @property
    def cost(self) -> float:
        return self.cost_micros / 1_000_000

    def to_json(self) -> dict[str, Any]:
        return {  # by hand: dataclasses.asdict deep-copies the Usage model first
            "state": self.state,
            "visit": self.visit,
            "status": self.status,
            "output": self.output,
            "structured": self.structured,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "usage": self.usage.model_dump(),
            "cost_micros": self.cost_micros,
            "cost_usd": self.cost,
            "next_state": self.next_state,
            "condition": self.condition,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        fields = {key: value for key, value in data.items() if key != "cost_usd"}
        return cls(**{**fields, "usage": Usage(**data.get("usage", {}))})


@dataclass
class FlowInterruption:
    """A paused state waiting for a person: a crew task's answer to ``review``, tool calls
    to approve (``approval``), or a ``human`` step's question to answer. ``target`` is what
    a decision names: the crew task, the tool call's id, or the human step's state."""

    state: str
    kind: InterruptionKind
    target: str
    agent: str = ""
    output: str = ""  # the answer under review, or the human step's question
    tool_calls: list[dict[str, str]] = field(default_factory=list)


@dataclass
class PausedStep:
    """The step of a paused flow: ``kind`` crew, agent or human; ``data`` the paused crew's
    or agent's state (JSON); ``decisions`` what people decided, applied on resume."""

    state: str
    kind: Literal["crew", "agent", "human"]
    data: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    started_at: str = ""
    usage: Usage = field(default_factory=Usage)  # what the step cost before it paused
    cost_micros: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["usage"] = self.usage.model_dump()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PausedStep:
        return cls(**{**data, "usage": Usage(**data.get("usage", {}))})


@dataclass
class FlowRun:
    """A flow run between two steps. ``current`` is the state to run next (the paused one,
    or the final state the run ended in); ``history`` the finished steps in order."""

    flow: str
    inputs: dict[str, Any]
    variables: dict[str, Any]
    current: str | None
    status: FlowStatus = "running"
    history: list[StepRecord] = field(default_factory=list)
    visits: dict[str, int] = field(default_factory=dict)
    paused: PausedStep | None = None
    interruptions: list[FlowInterruption] = field(default_factory=list)
    error: str | None = None
    reason: str | None = None  # why a failed run stopped: "no_transition", "max_visits", ...
    tenant: str = "default"
    run_id: str = field(default_factory=lambda: "frun_" + secrets.token_hex(8))

    # --- totals ---------------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        paused = [self.paused.usage] if self.paused else []
        return sum((step.usage for step in self.history), Usage()) + sum(paused, Usage())

    @property
    def cost_micros(self) -> int:
        paused = self.paused.cost_micros if self.paused else 0
        return sum(step.cost_micros for step in self.history) + paused

    @property
    def output(self) -> str:
        """The output of the last step that completed ("" before any)."""
        for step in reversed(self.history):
            if step.status == "completed":
                return step.output
        return ""

    # --- decisions while paused -----------------------------------------------------

    @property
    def waiting(self) -> list[FlowInterruption]:
        """The interruptions no decision has been taken on yet."""
        if self.paused is None:
            return []
        decided = {d["target"] for d in self.paused.decisions}
        return [i for i in self.interruptions if i.target not in decided]

    def approve(self, target: str | None = None) -> None:
        """Accept the answer under review, or let the pending tool call(s) run; ``target``
        (a task, a call id) may be left out when a single decision is waiting."""
        waiting = self._waiting(target)
        _no_human(waiting)
        self._decide(waiting, {"approved": True})

    def revise(self, target: str | None, feedback: str) -> None:
        """Send the answer under review back with ``feedback``, or refuse the tool calls."""
        if not feedback.strip():
            raise ValueError("revise needs feedback saying what to change")
        waiting = self._waiting(target)
        _no_human(waiting)
        self._decide(waiting, {"approved": False, "feedback": feedback})

    def reply(self, text: str, target: str | None = None) -> None:
        """Answer a human step's question; the answer is the step's output."""
        waiting = [i for i in self._waiting(target) if i.kind == "human"]
        if not waiting:
            raise AgentrigError(
                f"no human step is waiting for a reply in run {self.run_id} "
                f"(waiting: {[i.target for i in self.waiting] or 'none'})"
            )
        self._decide(waiting, {"approved": True, "reply": text})

    def _waiting(self, target: str | None) -> list[FlowInterruption]:
        if self.status != "paused" or self.paused is None:
            raise AgentrigError(f"flow run {self.run_id} is {self.status}, not paused")
        waiting = self.waiting
        if target is None:
            if len(waiting) != 1:
                targets = [i.target for i in waiting]
                raise AgentrigError(
                    f"flow run {self.run_id} waits for {len(waiting)} decisions "
                    f"({targets or 'none'}): name the one you decide"
                )
            return waiting
        chosen = [i for i in waiting if target in (i.target, i.state)]
        if not chosen:
            raise AgentrigError(
                f"nothing named {target!r} waits for a decision in flow run {self.run_id}; "
                f"waiting: {[i.target for i in waiting] or 'none'}"
            )
        return chosen

    def _decide(self, waiting: list[FlowInterruption], decision: dict[str, Any]) -> None:
        assert self.paused is not None
        for interruption in waiting:
            self.paused.decisions.append({"target": interruption.target, **decision})
            if self.paused.kind == "crew":  # applied now: a crew state needs no definition
                state = CrewState.from_json(self.paused.data)
                if decision.get("approved"):
                    state.approve(interruption.target)
                else:
                    state.revise(interruption.target, decision["feedback"])
                self.paused.data = state.to_json()

    # --- serialization --------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {**self.head_json(), "history": [step.to_json() for step in self.history]}

    def head_json(self) -> dict[str, Any]:
        """The record without its ``history`` (a writer that keeps the finished steps'
        JSON adds it: they do not change)."""
        return {
            "version": FLOW_RUN_VERSION,
            "kind": "flow_run",
            "flow": self.flow,
            "run_id": self.run_id,
            "tenant": self.tenant,
            "status": self.status,
            "current": self.current,
            "inputs": self.inputs,
            "variables": self.variables,
            "visits": self.visits,
            "paused": self.paused.to_json() if self.paused else None,
            "interruptions": [asdict(i) for i in self.interruptions],
            "error": self.error,
            "reason": self.reason,
        }

    def to_string(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlowRun:
        if not isinstance(data, dict) or data.get("kind") != "flow_run":
            raise StateVersionError("not an agentrig flow run (no 'kind': 'flow_run')")
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            raise StateVersionError(f"not an agentrig flow run (version {version!r})")
        if version > FLOW_RUN_VERSION:
            raise StateVersionError(
                f"flow run version {version} was written by a newer agentrig; this one reads "
                f"versions up to {FLOW_RUN_VERSION}: upgrade agentrig to resume it"
            )
        paused = data.get("paused")
        return cls(
            flow=data["flow"],
            inputs=data["inputs"],
            variables=data["variables"],
            current=data["current"],
            status=data["status"],
            history=[StepRecord.from_json(step) for step in data["history"]],
            visits=dict(data["visits"]),
            paused=PausedStep.from_json(paused) if paused else None,
            interruptions=[FlowInterruption(**i) for i in data.get("interruptions", [])],
            error=data.get("error"),
            reason=data.get("reason"),
            tenant=data.get("tenant", "default"),
            run_id=data["run_id"],
        )

    @classmethod
    def from_string(cls, text: str) -> FlowRun:
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise StateVersionError(f"not an agentrig flow run: invalid JSON ({exc})") from None


def _no_human(waiting: list[FlowInterruption]) -> None:
    for interruption in waiting:
        if interruption.kind == "human":
            raise AgentrigError(
                f"state {interruption.state!r} asks a person: answer it with a reply "
                "(FlowRun.reply, agentrig flow resume --reply, or POST .../reply)"
            )


@dataclass
class FlowResult:
    """A flow's outcome. ``final_state`` is the state it ended in (the final state, the one
    that failed, or the paused one); ``output`` the last completed step's output;
    ``variables`` the flow's variables (an instance of its model, or a dict)."""

    status: Literal["completed", "failed", "paused"]
    final_state: str | None
    output: str
    variables: Any
    history: list[StepRecord]
    usage: Usage
    cost_micros: int
    interruptions: list[FlowInterruption]
    run_id: str
    run: FlowRun
    error: str | None = None
    reason: str | None = None

    @property
    def cost(self) -> float:
        return self.cost_micros / 1_000_000

    def to_json(self) -> dict[str, Any]:
        variables = self.variables
        if hasattr(variables, "model_dump"):
            variables = variables.model_dump(mode="json")
        return {
            "flow": self.run.flow,
            "run_id": self.run_id,
            "status": self.status,
            "final_state": self.final_state,
            "output": self.output,
            "variables": variables,
            "error": self.error,
            "reason": self.reason,
            "usage": self.usage.model_dump(),
            "cost_usd": self.cost,
            "history": [step.to_json() for step in self.history],
            "interruptions": [asdict(i) for i in self.interruptions],
        }

    def __str__(self) -> str:
        return self.output
