"""``FlowStream``: a flow running in a task, its events handed to the caller as they come.

The queue, the end of the stream and the cancelling of an abandoned one are the crews'
(:class:`~agentrig.crews.CrewStream`, itself the agent runtime's); a flow's ends with
``FlowFinished``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from agentrig.crews import CrewStream
from agentrig.flows.events import FlowEvent, FlowFinished

if TYPE_CHECKING:
    from agentrig.flows.records import FlowResult


class FlowStream(CrewStream):
    """Iterate :meth:`events` (the last is ``FlowFinished``); ``result`` is set at the end.
    A consumer that goes away early cancels the flow (its record stays at the last step
    boundary, to resume)."""

    final_event = FlowFinished

    def events(self) -> AsyncIterator[FlowEvent]:  # type: ignore[override]
        return super().events()  # type: ignore[return-value]

    async def wait(self) -> FlowResult:  # type: ignore[override]
        """Consume the events and return the result."""
        async for _ in self.events():
            pass
        return self.result
