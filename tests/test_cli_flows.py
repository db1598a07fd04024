"""``agentrig flow``: list, show, run with progress, resume a stored run in a later
invocation, list stored runs; errors with their messages and exit codes."""

import asyncio
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentrig.cli import app
from agentrig.crews.catalog import EXAMPLES
from agentrig.flows.loader import find_flows
from agentrig.store import Database
from agentrig.store.flow_runs import FlowRunStore
from agentrig.testing.fake_openai_server import Reply

runner = CliRunner()

NOTES_AGENTS = "writer:\n  role: Writer\n  goal: Take notes\n  backstory: You note.\n"
NOTES_TASKS = """
summarize:
  description: Notes on {topic}
  expected_output: notes
  agent: writer
"""
PIPELINE = """
name: pipeline
description: Notes, a check, a tally.
variables:
  topic: {type: str}
  steps: 0
agents:
  editor: {role: Editor, goal: Check notes, backstory: You check.}
states:
  draft: {crew: notes, initial: true}
  check: {agent: editor, input: "Check: {output}"}
  tally: {function: "tests.cli_flow_steps:tally"}
  done: {final: true}
  rejected: {final: true}
transitions:
  - {from: draft, to: check, when: on_success}
  - {from: check, to: tally, when: {output_contains: fine}, priority: 10}
  - {from: check, to: rejected}
  - {from: tally, to: done}
"""
REVIEWED = """
name: reviewed
variables:
  topic: {type: str}
states:
  draft: {crew: checked, initial: true}
  done: {final: true}
transitions:
  - {from: draft, to: done}
"""
GATE = """
name: gate
description: Ask before publishing.
variables:
  topic: {type: str}
states:
  ask: {human: "Publish {topic}?", initial: true}
  publish: {function: "tests.cli_flow_steps:publish"}
  published: {final: true}
  dropped: {final: true}
transitions:
  - {from: ask, to: publish, when: {output_contains: "yes"}}
  - {from: ask, to: dropped}
  - {from: publish, to: published, when: on_success}
"""


def write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)


@pytest.fixture
def examples(tmp_path, monkeypatch) -> Path:
    """An empty folder in place of the ready-made crews and flows."""
    folder = tmp_path / "examples"
    folder.mkdir()
    monkeypatch.setattr("agentrig.crews.catalog.EXAMPLES", folder)
    monkeypatch.setattr("agentrig.flows.catalog.EXAMPLES", folder)
    return folder


@pytest.fixture
def config(cli_config, tmp_path, examples):
    """The CLI configuration (the fake OpenAI server as the default role), its own SQLite
    database, crews and flows in the crews folder, and no ready-made ones."""
    crews = tmp_path / "crews"
    write(crews / "notes", {"agents.yaml": NOTES_AGENTS, "tasks.yaml": NOTES_TASKS})
    write(crews / "pipeline", {"flow.yaml": PIPELINE})
    write(crews / "gate", {"flow.yaml": GATE})
    reviewed = NOTES_TASKS + "  human_input: true\n"
    write(crews / "checked", {"agents.yaml": NOTES_AGENTS, "tasks.yaml": reviewed})
    write(crews / "reviewed", {"flow.yaml": REVIEWED})
    cli_config.write_text(
        f'database_url = "sqlite:///{tmp_path / "flows.db"}"\n{cli_config.read_text()}'
        f'[server]\ncrews_dir = "{crews}"\n'
    )
    return cli_config


def flow(*args, config):
    return runner.invoke(app, ["flow", *args, "-c", str(config)], env={"COLUMNS": "250"})


def rows(output: str, first: str) -> list[list[str]]:
    """The cells of the table rows whose first cell is ``first``."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith(f"│ {first} ")
    ]


def run_id(output: str) -> str:
    return re.search(r"run (frun_\w+): ", output)[1]


def test_list_shows_each_flow_and_ready_made_ones_a_folder_flow_replaces(
    config, tmp_path, examples
):
    write(examples / "gate", {"flow.yaml": GATE.replace("Ask before", "An example's")})
    write(examples / "solo", {"flow.yaml": GATE.replace("name: gate", "name: solo")})
    write(tmp_path / "crews" / "broken", {"flow.yaml": "states: {a: {initial: yes, colour: 1}}"})
    result = flow("list", config=config)
    assert result.exit_code == 0, result.output
    assert rows(result.output, "pipeline") == [
        ["pipeline", "draft, check, tally, done, rejected", "draft → done, rejected", "topic",
         "Notes, a check, a tally."],
    ]  # fmt: skip
    assert rows(result.output, "gate")[0][-1] == "Ask before publishing."
    assert rows(result.output, "solo")[0][2] == "ask → published, dropped"
    assert f"ready-made: solo (in {examples}" in result.output
    [broken] = rows(result.output, "broken")  # a broken flow does not hide the others
    assert broken[-1].startswith("error:") and "colour" in broken[-1]


def test_the_ready_made_flows_are_listed_and_load(cli_config):
    ready = find_flows(EXAMPLES)
    result = flow("list", config=cli_config)
    assert result.exit_code == 0, result.output
    for name in ready:
        [row] = rows(result.output, name)
        assert not row[-1].startswith("error:"), row
    if ready:
        assert f"ready-made: {', '.join(sorted(ready))}" in " ".join(result.output.split())


def test_show_prints_the_mermaid_graph_as_plain_text(config):
    result = flow("show", "pipeline", config=config)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    check --> tally: output contains 'fine' [priority 10]" in lines
    assert "    [*] --> draft" in lines and "    done --> [*]" in lines


def test_run_shows_progress_and_a_table_of_the_steps(config, fake_server):
    fake_server.script(Reply(text="bee notes"), Reply(text="looks fine"))
    result = flow("run", "pipeline", "-i", "topic=bees", config=config)
    assert result.exit_code == 0, result.output
    progress = result.stderr
    for line in [
        "◆ draft",
        "  ▶ summarize: writer",
        "  crew completed: 15 tokens",
        "◇ draft: completed, 15 tokens",
        "  draft → check (on success)",
        "  editor: 15 tokens",
        "  check → tally (output contains 'fine')",
        "  tally → done (always)",
    ]:
        assert line in progress, line
    assert progress.index("◆ draft") < progress.index("◆ check") < progress.index("◆ tally")
    assert "Notes on bees" in fake_server.requests[0]["messages"][-1]["content"]
    assert fake_server.requests[1]["messages"][-1]["content"] == "Check: bee notes"
    assert [row[:5] for row in rows(progress, "draft") + rows(progress, "check")] == [
        ["draft", "1", "completed", "bee notes", "15"],
        ["check", "1", "completed", "looks fine", "15"],
    ]
    assert rows(progress, "tally")[0][3] == "2 steps before tally"
    [total] = rows(progress, "flow")
    assert total[2] == "completed" and total[4] == "30" and float(total[5]) > 0
    assert result.stdout.strip() == "2 steps before tally"
    assert re.search(r"run frun_\w+: completed at done", progress)


def test_json_prints_the_result(config, fake_server):
    fake_server.script(Reply(text="bee notes"), Reply(text="no good"))
    result = flow("run", "pipeline", "-i", "topic=bees", "--json", "-q", config=config)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "completed" and data["final_state"] == "rejected"
    assert [step["state"] for step in data["history"]] == ["draft", "check"]
    assert data["variables"] == {"topic": "bees", "steps": 0}
    assert "◆" not in result.stderr


def test_a_paused_run_resumes_by_id_in_later_invocations(config):
    result = flow("run", "gate", "-i", "topic=bees", config=config)
    assert result.exit_code == 0, result.output
    run = run_id(result.stderr)
    assert f"run {run}: paused at ask" in result.stderr
    assert "waiting for a reply at ask: Publish bees?" in result.stderr
    assert f"agentrig flow resume {run} -c {config} --reply TEXT" in result.stderr
    assert rows(flow("runs", "--status", "paused", config=config).stdout, run)[0][:5] == [
        run, "gate", "paused", "ask", "0",
    ]  # fmt: skip

    nothing = flow("resume", run, config=config)  # a decision is needed
    assert nothing.exit_code == 1 and f"flow run {run} waits for a decision" in nothing.output
    assert "--reply TEXT" in nothing.output
    wrong = flow("resume", run, "--approve", "nope", config=config)
    assert wrong.exit_code == 1 and "nothing named 'nope' waits" in wrong.output
    assert rows(flow("runs", config=config).stdout, run)[0][2] == "paused"  # unchanged

    failed = flow("resume", run, "--reply", "yes please", config=config)
    assert failed.exit_code == 1, failed.output
    assert f"flow {'gate'}: run {run} resumes at ask" in failed.stderr
    assert "◇ publish: failed" in failed.stderr and "service is down" in failed.stderr
    assert f"to run its failed state again: agentrig flow resume {run} -c {config}" in (
        failed.stderr
    )
    assert rows(flow("runs", "--status", "failed", config=config).stdout, run)

    Path("ready").write_text("")  # the outage is over, and then the process dies mid-step
    asyncio.run(set_status(config, run, "running"))
    done = flow("resume", run, "--json", config=config)
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["status"] == "completed" and data["output"] == "published bees"
    assert [(s["state"], s["visit"], s["status"]) for s in data["history"]] == [
        ("ask", 1, "completed"), ("publish", 1, "failed"), ("publish", 2, "completed"),
    ]  # fmt: skip
    assert rows(flow("runs", "--status", "completed", config=config).stdout, run)
    assert flow("runs", "--status", "paused", config=config).stdout.strip() == "no flow runs"
    again = flow("resume", run, config=config)
    assert again.exit_code == 1 and "has completed already" in again.output


def test_a_crew_review_in_a_flow_is_revised_then_approved(config, fake_server):
    fake_server.script(Reply(text="draft one"))
    result = flow("run", "reviewed", "-i", "topic=bees", config=config)
    assert result.exit_code == 0, result.output
    run = run_id(result.stderr)
    assert "waiting for review of task summarize at draft: draft one" in result.stderr
    assert f"agentrig flow resume {run} -c {config} --approve summarize" in result.stderr
    assert f"agentrig flow resume {run} -c {config} --revise summarize FEEDBACK" in result.stderr

    empty = flow("resume", run, "--revise", "summarize", " ", config=config)
    assert empty.exit_code == 1 and "the feedback says what to change" in empty.output
    fake_server.script(Reply(text="draft two"))
    result = flow("resume", run, "--revise", "summarize", "shorter", config=config)
    assert result.exit_code == 0, result.output
    assert "shorter" in fake_server.requests[-1]["messages"][-1]["content"]
    assert "review of task summarize at draft: draft two" in result.stderr
    calls = len(fake_server.requests)

    result = flow("resume", run, "--approve", "summarize", config=config)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "draft two" and len(fake_server.requests) == calls
    [draft] = rows(result.stderr, "draft")
    assert draft[:5] == ["draft", "1", "completed", "draft two", "30"]  # both drafts' tokens


async def set_status(config: Path, run: str, status: str) -> None:
    database = Database(f"sqlite:///{config.parent / 'flows.db'}")
    try:
        store = FlowRunStore(database)
        stored = await store.get(run)
        assert stored is not None
        await store.save({**stored.data, "status": status})
    finally:
        await database.aclose()


def test_errors_are_named_and_exit_non_zero(config):
    result = flow("run", "nope", config=config)
    assert result.exit_code == 1 and "no flow named 'nope'" in result.output
    assert "flows: ['gate', 'pipeline', 'reviewed']" in result.output
    result = flow("run", "gate", "-i", "topic", config=config)
    assert result.exit_code == 1 and "--input 'topic': expected key=value" in result.output
    result = flow("run", "gate", config=config)
    assert result.exit_code == 1 and "bad inputs (topic: Field required)" in result.output
    result = flow("run", "gate", "-i", "topic=x", "-i", "colour=red", config=config)
    assert result.exit_code == 1 and "has no variables ['colour']" in result.output
    result = flow("resume", "frun_missing", "--reply", "hi", config=config)
    assert result.exit_code == 1 and "no flow run 'frun_missing'" in result.output
    result = flow("runs", "--status", "sleeping", config=config)
    assert result.exit_code == 1 and "one of running, paused, completed, failed" in result.output
    assert flow("runs", config=config).stdout.strip() == "no flow runs"  # nothing stored
