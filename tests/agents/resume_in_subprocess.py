"""Load a saved run state from a file, approve or reject, resume, print the result as JSON."""

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from approval_agents import second_half

from agentrig.agents import Runner, RunState


async def main(path: str, decision: str) -> None:
    state = RunState.from_string(Path(path).read_text(), second_half())
    for interruption in state.interruptions:
        if decision == "approve":
            state.approve(interruption)
        else:
            state.reject(interruption, "not allowed")
    result = await Runner.resume(state)
    outputs = [item.output for item in result.new_items if item.type == "function_call_output"]
    print(json.dumps({"final_output": result.final_output, "outputs": outputs}))


asyncio.run(main(sys.argv[1], sys.argv[2]))
