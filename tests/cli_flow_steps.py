"""Step functions the flow.yaml fixtures of tests/test_cli_flows.py name as module:attr."""

from pathlib import Path

from agentrig.flows import FlowContext, StepOutput


def tally(context: FlowContext) -> StepOutput:
    """Count the steps so far into the variable ``steps``."""
    steps = len(context.history)
    return StepOutput(output=f"{steps} steps before tally", updates={"steps": steps})


def publish(context: FlowContext) -> str:
    """Fails until the file ``ready`` exists in the working directory (a fixed outage)."""
    if not Path("ready").exists():
        raise RuntimeError("the publishing service is down")
    return f"published {context.variables.topic}"
