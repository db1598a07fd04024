"""Crews from YAML in CrewAI's layout, and errors naming the file, line and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentrig import ModelRouter
from agentrig.crews import Crew, Process
from agentrig.errors import ConfigError
from agentrig.testing import ScriptedModel, text

from .helpers import sent

CONTENT = Path(__file__).parent / "fixtures" / "content"


def scripted_router() -> tuple[ModelRouter, ScriptedModel, ScriptedModel]:
    router = ModelRouter()
    research, write = ScriptedModel([text("three findings")]), ScriptedModel([text("a post")])
    router.register("scripted/research", research)
    router.register("scripted/write", write)
    return router, research, write


async def test_a_crewai_layout_folder_becomes_a_crew(tmp_path):
    router, research, write = scripted_router()
    crew = Crew.from_yaml(CONTENT, router=router)
    assert crew.name == "content" and crew.process is Process.sequential
    assert [t.name for t in crew.tasks] == ["research_task", "writing_task"]
    assert crew.inputs == ["topic", "format"]
    assert crew.max_cost_usd == 1.0 and crew.task("writing_task").context == ("research_task",)
    result = await crew.kickoff({"topic": "bees", "format": "blog post"})
    assert result.status == "completed" and result.output == "a post"
    assert research.requests[0].instructions.startswith("You are bees Senior Research Analyst.")
    assert [spec.name for spec in research.requests[0].tools] == ["calculator"]
    assert "Write a blog post about bees" in sent(write.requests[0])
    assert "three findings" in sent(write.requests[0])
    assert (tmp_path / "out" / "bees.md").read_text() == "a post\n"


def broken_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "crew"
    shutil.copytree(CONTENT, folder)
    path = folder / "config" / name
    path.write_text(path.read_text().replace(old, new))
    return folder


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("tasks.yaml", "agent: writer", "agent: editor",
         r"tasks.yaml:11: writing_task.agent: unknown agent 'editor'"),
        ("tasks.yaml", "- research_task", "- reserch_task",
         r"tasks.yaml:13: writing_task.context.0: unknown task 'reserch_task'"),
        ("agents.yaml", "- calculator", "- web_search",
         r"agents.yaml:11: researcher.tools.0: unknown tool 'web_search'"),
        ("agents.yaml", "allow_delegation: false", "allow_delegation: maybe",
         r"agents.yaml:12: researcher.allow_delegation: Input should be a valid boolean"),
        ("tasks.yaml", "  agent: researcher", "  agent: researcher\n  memory: true",
         r"tasks.yaml:7: research_task.memory: Extra inputs are not permitted"),
        ("tasks.yaml", "guardrail: max_words(50)", "guardrail: polite",
         r"tasks.yaml:14: writing_task.guardrail: unknown guardrail 'polite'"),
        ("tasks.yaml", "  expected_output: A post", "  expected_output: [A post",
         r"tasks.yaml:\d+: .*not valid YAML"),
    ],
)  # fmt: skip
def test_yaml_errors_name_the_file_the_line_and_the_key(tmp_path, name, old, new, message):
    folder = broken_copy(tmp_path, name, old, new)
    with pytest.raises(ConfigError, match=message):
        Crew.from_yaml(folder)


def test_crew_file_errors_and_registries(tmp_path):
    folder = broken_copy(tmp_path, "tasks.yaml", "max_words(50)", "short")
    (folder / "crew.yaml").write_text("name: content\nprocess: sideways\n")
    with pytest.raises(ConfigError, match=r"crew.yaml:2: process: Input should be"):
        Crew.from_yaml(folder)
    (folder / "crew.yaml").write_text("process: parallel\n")
    crew = Crew.from_yaml(folder, guardrails={"short": lambda output: True})
    assert crew.name == "crew" and crew.process is Process.parallel
    with pytest.raises(ConfigError, match=r"no agents\.yaml"):
        Crew.from_yaml(tmp_path)
