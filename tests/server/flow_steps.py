"""The flows the server tests serve (``flow.yaml`` folders beside the crews of
``test_crews_api``), and the step functions they name as ``tests.server.flow_steps:…``."""

from __future__ import annotations

from pathlib import Path

from agentrig.flows import FlowContext

FLOWS = {
    # a function step updates the variable a crew then reads
    "notes": """
description: Aim the note at beginners, then outline and write it.
variables:
  input: {type: str}
states:
  prepare: {function: "tests.server.flow_steps:for_beginners", initial: true}
  write: {crew: brief}
  done: {final: true}
transitions:
  - {from: prepare, to: write}
  - {from: write, to: done, when: on_success}
""",
    # a person answers, then an agent writes from the answer
    "ask": """
variables:
  topic: {type: str}
  angle: ""
agents:
  writer: {role: Writer, goal: Write short notes, backstory: You are concise.}
states:
  question: {human: "Which angle on {topic}?", initial: true, output_to: angle}
  write: {agent: writer, input: "Write about {topic} from the angle: {angle}"}
  done: {final: true}
transitions:
  - {from: question, to: write}
  - {from: write, to: done, when: on_success}
""",
    # a crew whose first task waits for a review
    "reviewed": """
variables:
  topic: {type: str}
states:
  title: {crew: review, initial: true}
  done: {final: true}
transitions:
  - {from: title, to: done, when: on_success}
""",
    # a step that fails, and no transition for a failure
    "fragile": """
variables:
  input: {type: str}
  times: {type: int}
states:
  check: {function: "tests.server.flow_steps:refuse", initial: true}
  done: {final: true}
transitions:
  - {from: check, to: done, when: on_success}
""",
}


def write_flows(folder: Path) -> Path:
    for name, text in FLOWS.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "flow.yaml").write_text(f"name: {name}\n{text}")
    return folder


def for_beginners(context: FlowContext) -> dict[str, str]:
    return {"input": f"{context.variables.input} for beginners"}


def refuse(context: FlowContext) -> str:
    raise ValueError(f"{context.variables.input!r} cannot be checked {context.variables.times}x")
