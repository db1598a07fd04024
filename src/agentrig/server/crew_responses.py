"""``model: "crew:<name>"`` on ``/v1/responses``: a crew answers a response.

The inputs come from the request's ``input``: its user text is the crew's ``input``
variable, unless the text is a JSON object, whose keys are then the named inputs
(``{"topic": "AI agents", "format": "blog post"}``). A missing input is a 400 naming it,
before any model call. The crew's progress is in the output as ``reasoning`` items, one
per task started, delegated, sent back or finished (their summary is the line the CLI
prints), streamed as they happen; the final task's output is the response's message.
A crew that pauses for a review gives an ``incomplete`` response (reason
``crew_paused``) whose message names the stored crew run to approve or revise at
``/api/v1/crews/runs/{id}``; a failed crew a ``failed`` response with its partial
progress (``error.code``: ``budget_exceeded``, ``max_turns_exceeded`` or
``crew_failed``). Reasoning items, not custom event types, so that every event stays one
the Open Responses spec and OpenAI's clients know.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agentrig.crews import (
    CrewState,
    MissingInput,
    TaskDelegated,
    TaskFinished,
    TaskRetrying,
    TaskStarted,
)
from agentrig.crews.catalog import UnknownCrew
from agentrig.crews.progress import describe
from agentrig.errors import ConfigError
from agentrig.items import Item, Message, OutputText, Reasoning, SummaryText
from agentrig.server.errors import APIError

if TYPE_CHECKING:
    from agentrig.server.app import ServerState
    from agentrig.server.sse import ResponseEventStream

PREFIX = "crew:"
PROGRESS = (TaskStarted, TaskDelegated, TaskRetrying, TaskFinished)


def crew_inputs(items: list[Item]) -> dict[str, Any]:
    """The kickoff inputs of a request's input items (see the module's docstring)."""
    text = "\n\n".join(
        item.text for item in items if isinstance(item, Message) and item.role == "user"
    ).strip()
    if text.startswith("{"):
        try:
            named = json.loads(text)
        except ValueError:
            named = None
        if isinstance(named, dict):
            return named
    return {"input": text}


def prepare_crew(state: ServerState, tenant: str, model: str, items: list[Item]) -> CrewState:
    """The fresh state of the crew ``model`` names for these input items, or a 400."""
    name = model[len(PREFIX) :]
    try:
        crew = state.crews.get(name, tenant)
        return crew.new_state(crew_inputs(items))
    except UnknownCrew as exc:
        raise APIError(400, str(exc), param="model", code="model_not_found") from None
    except MissingInput as exc:
        raise APIError(400, str(exc), param="input", code="missing_input") from None
    except ConfigError as exc:  # the crew's YAML is wrong: the server's fault
        raise APIError(500, str(exc), type="server_error") from None


def _progress(event: Any) -> Reasoning:
    agent = event.output.agent if isinstance(event, TaskFinished) else event.agent
    return Reasoning(summary=[SummaryText(text=describe(event) or "")], agent=agent or None)


async def run_crew_turn(
    state: ServerState, turn: Any, stream: ResponseEventStream | None, send: Any
) -> None:
    """Run the turn's crew, filling its output, usage, cost and status."""
    crew = state.crews.get(turn.body.model[len(PREFIX) :], turn.tenant)
    running = crew.resume_streamed(turn.crew_state)
    async for event in running.events():
        if isinstance(event, PROGRESS):
            item = _progress(event)
            turn.output.append(item)
            if stream is not None:
                for wire_event in stream.item(item):
                    send(wire_event)
    result = running.result
    turn.usage, turn.cost_micros = result.usage, result.cost_micros
    text = result.output
    if result.status == "paused":
        run_id = await state.crew_runs.save_paused(turn.tenant, result)
        waiting = ", ".join(f"{i.kind} of task {i.task!r}" for i in result.interruptions)
        text = (
            f"The crew {crew.name!r} is waiting for {waiting}. Approve or revise it with "
            f"POST /api/v1/crews/runs/{run_id}/approve or /revise; "
            f"GET /api/v1/crews/runs/{run_id} follows it."
        )
        turn.status, turn.incomplete = "incomplete", {"reason": "crew_paused"}
    elif result.status == "failed":
        turn.status = "failed"
        code = {"budget": "budget_exceeded", "turns": "max_turns_exceeded"}.get(
            result.reason or "", "crew_failed"
        )
        turn.error = {"code": code, "message": result.error or "the crew failed"}
    else:
        turn.status = "completed"
    if text:
        message = Message(role="assistant", content=[OutputText(text=text)], status="completed")
        turn.output.append(message)
        if stream is not None:
            for wire_event in stream.item(message):
                send(wire_event)
