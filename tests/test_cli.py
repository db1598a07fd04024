"""The command line, run in-process against a fake server and for real on the local model."""

import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from agentrig.cli import app, parse_since
from agentrig.testing.fake_openai_server import Fail, Reply

runner = CliRunner()


@pytest.fixture
def config(cli_config):
    return cli_config


def test_ask_prints_the_answer(config, fake_server):
    fake_server.script(Reply(text="forty-two"))
    result = runner.invoke(app, ["ask", "meaning of life?", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "forty-two"
    assert fake_server.requests[-1]["messages"][-1] == {
        "role": "user",
        "content": "meaning of life?",
    }


def test_ask_streams_through_a_role_with_fallback(config, fake_server):
    fake_server.script(Reply(text="streamed words here"))
    result = runner.invoke(app, ["ask", "hi", "--stream", "--role", "fast", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output == "streamed words here\n"
    assert fake_server.requests[-1]["stream"] is True


def test_usage_reports_calls_and_cost(config, fake_server):
    fake_server.script(Reply(prompt_tokens=100, completion_tokens=50), Fail(400, "bad"))
    runner.invoke(app, ["ask", "one", "-c", str(config)])
    failed = runner.invoke(app, ["ask", "two", "-c", str(config)])
    assert failed.exit_code == 1 and "fake/m: HTTP 400: bad" in failed.output
    result = runner.invoke(app, ["usage", "--since", "1d", "-c", str(config)])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "fake/m" in line]
    cells = [cell.strip() for cell in line.split("│")[1:-1]]
    # two calls, one failed; 100 * $1000/MTok + 50 * $2000/MTok = $0.2
    assert cells == ["default", "fake/m", "2", "1", "100", "50", "0.200000"]


def test_models_lists_roles_and_checks_providers(config):
    result = runner.invoke(app, ["models", "-c", str(config)], terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    fake = next(line for line in lines if line.startswith("│ fake"))
    dead = next(line for line in lines if line.startswith("│ dead"))
    assert "yes" in fake and "answers at" in fake
    assert "no" in dead and "unreachable" in dead
    assert any("dead/m -> fake/m" in line for line in lines)


def test_bad_configuration_exits_with_the_reason(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[llm]\nmax_attempts = 0\n")
    result = runner.invoke(app, ["ask", "hi", "-c", str(bad)])
    assert result.exit_code == 1
    assert "llm.max_attempts" in result.output and "greater than or equal to 1" in result.output


def test_an_error_naming_a_config_table_keeps_its_brackets(tmp_path):
    local = tmp_path / "agentrig.toml"
    local.write_text('[jobs]\nbackend = "local"\n')
    result = runner.invoke(app, ["worker", "--burst", "-c", str(local)])
    assert result.exit_code == 1
    assert 'runs the jobs of [jobs] backend = "redis"' in " ".join(result.output.split())


def test_unknown_role_exits_with_the_known_ones(config):
    result = runner.invoke(app, ["ask", "hi", "--role", "nope", "-c", str(config)])
    assert result.exit_code == 1 and "unknown role or model 'nope'" in result.output


def test_db_upgrade_reports_the_revision():
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and "revision 0006" in result.output


def test_parse_since():
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(typer.BadParameter, match="'yesterday'"):
        parse_since("yesterday", now)


def test_ask_the_local_model_for_real():
    result = runner.invoke(app, ["ask", "Say hello.", "--max-tokens", "16"])
    assert result.exit_code == 0, result.output
    assert result.output.strip()


def test_version_is_the_projects():
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"agentrig {project['project']['version']}\n"


def all_commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*path, name))


def words(text: str) -> str:
    """Text as the terminal shows it: no box drawing, no code marks, one space between."""
    text = re.sub(r"`([^`]*)`", r"\1", text)
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize(
    ("path", "command"),
    [((), typer.main.get_command(app)), *all_commands(typer.main.get_command(app))],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_help_shows_every_text_whole(path, command):
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    shown = words(result.output)
    texts = [command.help] + [param.help for param in command.params if param.help]
    for text in texts:
        assert words(text) in shown  # nothing eaten as markup, no ``reStructuredText``


def test_worker_help_keeps_its_brackets():
    result = runner.invoke(app, ["worker", "--help"], env={"COLUMNS": "250"})
    assert '([jobs] backend = "redis")' in result.output and "``" not in result.output
