"""Flows from YAML: states by crew, agent, function and human; conditions; typed variables;
errors naming the file, the line and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentrig import ModelRouter
from agentrig.crews.catalog import CrewCatalog
from agentrig.errors import ConfigError
from agentrig.flows import FlowContext
from agentrig.flows.catalog import FlowCatalog, UnknownFlow
from agentrig.flows.loader import find_flows, load_flow
from agentrig.testing import ScriptedModel, text, tool_call


class Verdict(BaseModel):
    verdict: str
    notes: str = ""


def count(ctx: FlowContext) -> dict:
    return {"drafts": ctx.variables.drafts + 1}


def low_confidence(step, variables) -> bool:
    return variables.drafts > 1


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return folder


CREW = {
    "writing/agents.yaml": """
        writer:
          role: Writer
          goal: Write about {topic}
          backstory: A writer.
          llm: scripted/writer
    """,
    "writing/tasks.yaml": """
        draft:
          description: Write a draft about {topic}. Previous step said {output}.
          expected_output: A draft.
          agent: writer
    """,
}
FLOW = """
    name: content
    description: Write, count, review.
    variables:
      topic: {type: str}
      drafts: 0
      verdict: {type: str, default: ""}
    agents:
      reviewer:
        role: Editor
        goal: Judge drafts
        backstory: An editor.
        llm: scripted/reviewer
        output_type: "tests.flows.test_yaml:Verdict"
    states:
      writing: {crew: writing, initial: true}
      counting: {function: "tests.flows.test_yaml:count"}
      review: {agent: reviewer, input: "Review this: {output}", updates: true, max_visits: 2}
      ask: {human: "Approve the draft on {topic}?"}
      published: {final: true}
    transitions:
      - {from: writing, to: counting, when: on_success}
      - {from: counting, to: review}
      - from: review
        to: published
        when: {and: [on_success, {variable_equals: {verdict: approved}}]}
        priority: 10
      - {from: review, to: ask, when: {check: "tests.flows.test_yaml:low_confidence"}}
      - from: review
        to: writing
        when: {not: {output_contains: {text: APPROVED, case_sensitive: true}}}
      - {from: ask, to: published}
"""


def router() -> ModelRouter:
    built = ModelRouter()
    built.register("scripted/writer", ScriptedModel([text("draft one"), text("draft two")]))
    verdicts = [text('{"verdict": "revise", "notes": "x"}'), text('{"verdict": "approved"}')]
    built.register("scripted/reviewer", ScriptedModel(verdicts))
    return built


async def test_a_yaml_flow_runs_its_crews_agents_and_functions(tmp_path):
    folder = write(tmp_path / "crews", {**CREW, "content/flow.yaml": FLOW})
    models = router()
    assert find_flows(folder) == {"content": folder / "content" / "flow.yaml"}
    catalog = FlowCatalog(_crews(folder, models), database_url=f"sqlite:///{tmp_path}/r.db")
    flow = catalog.get("content")
    assert catalog.get("content") is flow and flow.description == "Write, count, review."
    assert flow.inputs == ["topic"]
    result = await flow.run({"topic": "bees"})
    assert result.status == "completed", result.error
    states = [s.state for s in result.history]
    assert states == ["writing", "counting", "review", "writing", "counting", "review"]
    assert result.variables.verdict == "approved" and result.variables.drafts == 2
    conditions = [s.condition for s in result.history]
    assert conditions[2] == "not output contains 'APPROVED'"
    assert conditions[5] == "on success and verdict == 'approved'"
    described = catalog.describe("content")
    assert described["inputs"] == ["topic"] and described["mermaid"] == flow.mermaid()
    assert [s["kind"] for s in described["states"]] == ["crew", "function", "agent", "human", "end"]
    assert "review --> ask: low_confidence" in flow.mermaid()
    with pytest.raises(UnknownFlow, match=r"no flow named 'nope'.*flows: \['content'\]"):
        catalog.get("nope")


def _crews(folder: Path, models: ModelRouter):
    from agentrig.crews.catalog import CrewCatalog

    return CrewCatalog(folder, router=models)


HERE = "tests.flows.test_yaml"
ASK = f'  - {{from: review, to: ask, when: {{check: "{HERE}:low_confidence"}}}}\n'
BROKEN = [
    ("states:\n", "states:\n  extra: {crew: nope}\n", "flow.yaml:16: states.extra.crew: no crew"),
    (f'"{HERE}:count"', "count", "states.counting.function: unknown function 'count'"),
    (f'"{HERE}:count"', '"tests.flows:nothing"', "cannot import 'tests.flows:nothing'"),
    (f'"{HERE}:Verdict"', f'"{HERE}:count"', f"output_type: '{HERE}:count' is not a pydantic"),
    ("to: review}", "to: reviews}", "transitions.1: flow 'content': transition 'counting' -> "),
    ("when: on_success}", "when: on_sucess}", "transitions.0.when: unknown condition 'on_s"),
    ("{verdict: approved}", "{verdikt: approved}", "names the unknown variables ['verdikt']"),
    ("drafts: 0", "drafts: {type: integer}", "variables.drafts.type: unknown type 'integer'"),
    ("max_visits: 2", "max_visits: 0", "states.review.max_visits: Input should be greater"),
    ('{human: "Approve', f'{{function: "{HERE}:count", human: "A', "names ['function', 'human']"),
    ("{from: ask, to: published}", "{from: ask, to: ask}", "flow.yaml:15: states: flow 'con"),
    (ASK, "", "no transition reaches the states ['ask']"),
]


@pytest.mark.parametrize(("old", "new", "where"), BROKEN)
def test_yaml_errors_name_the_file_the_line_and_the_key(tmp_path, old, new, where):
    body = textwrap.dedent(FLOW)
    assert old in body
    folder = write(tmp_path / "crews", {**CREW, "content/flow.yaml": body.replace(old, new)})
    with pytest.raises(ConfigError) as error:
        load_flow(folder / "content", crews=None)
    assert where in str(error.value)
    assert str(error.value).startswith(str(folder / "content" / "flow.yaml") + ":")


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_flow(tmp_path / "missing.yaml")
    broken = write(tmp_path, {"f/flow.yaml": "states: [\n"})
    with pytest.raises(ConfigError, match=r"flow.yaml:2: not valid YAML"):
        load_flow(broken / "f")
    unknown = write(tmp_path, {"g/flow.yaml": "states: {a: {final: true}}\nstatez: 1\n"})
    with pytest.raises(ConfigError, match=r"flow.yaml:2: statez: Extra inputs are not permitted"):
        load_flow(unknown / "g")


async def test_crews_beside_the_flow_are_built_with_the_flows_router(tmp_path):
    folder = write(tmp_path / "crews", {**CREW, "content/flow.yaml": FLOW})
    flow = load_flow(folder / "content", router=router(), persist=False)
    result = await flow.run({"topic": "bees"})
    assert result.status == "completed", result.error
    assert result.history[0].output == "draft one"  # the writer's scripted model, routed


def test_a_crew_the_catalog_does_not_have_is_an_error_in_the_file(tmp_path):
    flow = FLOW.replace("{crew: writing, initial: true}", "{crew: writting, initial: true}")
    folder = write(tmp_path / "crews", {**CREW, "content/flow.yaml": flow})
    catalog = FlowCatalog(_crews(folder, router()))
    with pytest.raises(ConfigError, match=r"flow.yaml:\d+: states.writing.crew: no crew named"):
        catalog.get("content")


async def test_a_catalogs_tools_given_as_a_list_reach_the_flows_agents(tmp_path):
    from agentrig import tool

    @tool
    def stamp(text: str) -> str:
        """Stamp the text."""
        return f"stamped {text}"

    flow_yaml = """
        agents:
          clerk: {role: Clerk, goal: Stamp, backstory: A., llm: scripted/clerk, tools: [stamp]}
        states:
          work: {agent: clerk, initial: true}
          done: {final: true}
        transitions:
          - {from: work, to: done}
    """
    folder = write(tmp_path / "crews", {"stamping/flow.yaml": flow_yaml})
    models = ModelRouter()
    clerk = ScriptedModel([tool_call("stamp", text="form"), text("filed")])
    models.register("scripted/clerk", clerk)
    catalog = FlowCatalog(CrewCatalog(folder, router=models, tools=[stamp]), database_url=None)
    result = await catalog.get("stamping").run()
    assert result.status == "completed" and result.output == "filed"
    assert "stamped form" in str(clerk.requests[-1].items)
