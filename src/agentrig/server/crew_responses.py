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
``crew_failed``). What flows answer alike is in :mod:`agentrig.server.progress_items`.
"""

from __future__ import annotations

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
from agentrig.items import Item, Reasoning
from agentrig.server.errors import APIError
from agentrig.server.progress_items import (
    add_output,
    answer,
    named_inputs,
    progress_item,
    request_text,
)

if TYPE_CHECKING:
    from agentrig.server.app import ServerState
    from agentrig.server.sse import ResponseEventStream

PREFIX = "crew:"
PROGRESS = (TaskStarted, TaskDelegated, TaskRetrying, TaskFinished)


def crew_inputs(items: list[Item]) -> dict[str, Any]:
    """The kickoff inputs of a request's input items (see the module's docstring)."""
    text = request_text(items)
    named = named_inputs(text)
    return {"input": text} if named is None else named


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


def crew_progress(event: Any, prefix: str = "") -> Reasoning:
    """The reasoning item of a crew's event of progress (one of ``PROGRESS``)."""
    agent = event.output.agent if isinstance(event, TaskFinished) else event.agent
    return progress_item(prefix + (describe(event) or ""), agent)


async def run_crew_turn(
    state: ServerState, turn: Any, stream: ResponseEventStream | None, send: Any
) -> None:
    """Run the turn's crew, filling its output, usage, cost and status."""
    crew = state.crews.get(turn.body.model[len(PREFIX) :], turn.tenant)
    running = crew.resume_streamed(turn.crew_state)
    async for event in running.events():
        if isinstance(event, PROGRESS):
            add_output(turn, crew_progress(event), stream, send)
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
    answer(turn, text, stream, send)
