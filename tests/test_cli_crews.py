"""``agentrig crew``: list, run with progress and a paused state, resume after a review."""

import json

import pytest
from typer.testing import CliRunner

from agentrig.cli import app
from agentrig.testing.fake_openai_server import Reply

runner = CliRunner()

AGENTS = """
researcher:
  role: Researcher of {topic}
  goal: Find facts
  backstory: You dig.
writer:
  role: Writer
  goal: Write
  backstory: You write.
"""
TASKS = """
research:
  description: Research {topic}
  expected_output: facts
  agent: researcher
write:
  description: Write about {topic}
  expected_output: a post
  agent: writer
  human_input: true
"""


@pytest.fixture
def config(cli_config, tmp_path):
    """The shared CLI configuration (a fake OpenAI server as the default role) and a crew."""
    crew = tmp_path / "crews" / "review"
    crew.mkdir(parents=True)
    (crew / "agents.yaml").write_text(AGENTS)
    (crew / "tasks.yaml").write_text(TASKS)
    (crew / "crew.yaml").write_text("description: Research, then a reviewed post.\n")
    with cli_config.open("a") as toml:
        toml.write(f'[server]\ncrews_dir = "{tmp_path / "crews"}"\n')
    return cli_config


def crew(*args, config):
    return runner.invoke(app, ["crew", *args, "-c", str(config)], env={"COLUMNS": "250"})


def test_crew_list_shows_each_crew_and_its_inputs(config):
    result = crew("list", config=config)
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("│ review ")]
    cells = [cell.strip() for cell in line.split("│")[1:-1]]
    assert cells == [
        "review", "sequential", "research, write", "researcher, writer", "topic",
        "Research, then a reviewed post.",
    ]  # fmt: skip


def test_ready_made_crews_are_listed_and_run_unless_a_folder_crew_replaces_them(
    config, fake_server, tmp_path, monkeypatch
):
    examples = tmp_path / "examples"
    for name, description in [("review", "An example's."), ("helper", "Helps.")]:
        (examples / name).mkdir(parents=True)
        (examples / name / "agents.yaml").write_text(AGENTS)
        (examples / name / "tasks.yaml").write_text(TASKS.split("write:")[0])
        (examples / name / "crew.yaml").write_text(f"description: {description}\n")
    monkeypatch.setattr("agentrig.crews.catalog.EXAMPLES", examples)
    result = crew("list", config=config)
    assert result.exit_code == 0, result.output
    names = [line.split("│")[1].strip() for line in result.output.splitlines() if "│" in line]
    assert names == ["helper", "review"]
    assert (
        "Research, then a reviewed post." in result.output and "An example's" not in result.output
    )
    assert f"ready-made: helper (in {examples}" in result.output

    fake_server.script(Reply(text="bee facts"))
    result = crew("run", "helper", "-i", "topic=bees", config=config)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "bee facts"


def test_run_pauses_for_review_then_resume_revises_and_approves(config, fake_server, tmp_path):
    fake_server.script(Reply(text="bee facts"), Reply(text="draft one"))
    state = tmp_path / "state.json"
    result = crew("run", "review", "-i", "topic=bees", "--json", "--state-file", str(state),
                  config=config)  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "paused" and data["state_file"] == str(state)
    assert [t["status"] for t in data["tasks"]] == ["completed", "awaiting_review"]
    assert data["interruptions"][0]["output"] == "draft one" and data["cost_usd"] > 0
    assert "▶ research: researcher" in result.stderr and "waiting for review" in result.stderr
    assert "Researcher of bees" in fake_server.requests[0]["messages"][0]["content"]

    fake_server.script(Reply(text="draft two"))
    result = crew("resume", str(state), "--revise", "write", "shorter", "--json", config=config)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["interruptions"][0]["output"] == "draft two"
    assert "shorter" in fake_server.requests[-1]["messages"][-1]["content"]
    calls = len(fake_server.requests)

    result = crew("resume", str(state), "--approve", "write", config=config)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "draft two" and len(fake_server.requests) == calls
    assert "completed" in result.stderr


def test_bad_input_is_named(config, tmp_path):
    result = crew("run", "review", config=config)
    assert result.exit_code == 1 and "needs the input 'topic'" in result.output
    result = crew("run", "nope", config=config)
    assert result.exit_code == 1 and "no crew 'nope'" in result.output
    assert "or the ready-made ones" in result.output
    result = crew("run", "review", "-i", "topic", config=config)
    assert result.exit_code == 1 and "expected key=value" in result.output
    (tmp_path / "s.json").write_text("{}")
    result = crew("resume", str(tmp_path / "s.json"), "--approve", "write", config=config)
    assert result.exit_code == 1 and "not an agentrig crew state" in result.output
