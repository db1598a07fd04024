"""Load a paused crew's state from a file, revise or approve a task, resume; save the new
state and print what happened as JSON (run as a subprocess by the tests)."""

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from review_crew import build

from agentrig.crews import CrewState


async def main(path: str, action: str, feedback: str, write_turns: str) -> None:
    crew, research_model, write_model = build([], json.loads(write_turns))
    state = CrewState.from_string(Path(path).read_text())
    if action == "revise":
        state.revise("write", feedback)
    else:
        state.approve("write")
    result = await crew.resume(state)
    Path(path).write_text(result.state.to_string())
    sent = [
        "\n".join(getattr(item, "text", "") for item in request.items)
        for request in write_model.requests
    ]
    print(json.dumps({
        "status": result.status,
        "output": result.output,
        "interruptions": [(i.task, i.kind, i.output) for i in result.interruptions],
        "statuses": [o.status for o in result.tasks_output],
        "attempts": [o.attempts for o in result.tasks_output],
        "research_calls": len(research_model.requests),
        "write_sent": sent,
        "requests": result.usage.requests,
    }))  # fmt: skip


asyncio.run(main(*sys.argv[1:5]))
