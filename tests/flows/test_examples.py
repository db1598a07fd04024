"""The ready-made crews and flows of ``agentrig.crews.examples``, run end to end with
scripted models steering each branch: every agent answers from its own script (see
``example_helpers.ByRole``), so the tests see what each one was asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import agentrig
from agentrig.crews import Crew, Process
from agentrig.crews.catalog import EXAMPLES, CrewCatalog
from agentrig.crews.loader import find_crews
from agentrig.flows import FlowRun
from agentrig.flows.catalog import FlowCatalog
from agentrig.flows.loader import find_flows, load_flow
from agentrig.testing import text, tool_call

from .example_helpers import ByRole, router_for, sent, tool_outputs

HERE = Path(__file__).parent
MANUAL = Path(agentrig.__file__).parent / "samples" / "kb" / "lumen-e3-manual.md"
CHARGING = "A full charge from empty takes about\n4 hours"  # the manual's words
CODE = "def load(path):\n    return eval(open(path).read())\n"


def as_json(**fields) -> str:
    return json.dumps(fields)


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/runs.db"


@pytest.fixture
async def manual(knowledge):
    """The knowledge service with the Lumen E3 manual in the default tenant's default
    knowledge base (what ``knowledge_search`` searches)."""
    document = await knowledge.add_document("default", MANUAL.read_bytes(), MANUAL.name)
    report = await knowledge.index("default", document.id)
    assert report.status == "indexed" and report.chunks > 1, report
    return knowledge


# --- every example ------------------------------------------------------------------------


def test_every_example_loads_without_a_knowledge_base_and_documents_its_run(tmp_path):
    crews, flows = find_crews(EXAMPLES), find_flows(EXAMPLES)
    assert sorted(crews) == ["code-review", "research", "sales"]
    assert sorted(flows) == ["content", "support"]
    inputs = {}
    for name, path in crews.items():
        crew = Crew.from_yaml(path)  # research names knowledge_search: a stand-in here
        assert crew.name == name and crew.description
        assert all(agent.model == "default" for agent in crew.agents.values())
        inputs[name] = crew.inputs
    assert inputs == {
        "research": ["topic", "format"],
        "sales": ["product", "language"],
        "code-review": ["language", "code"],
    }
    for name, path in flows.items():
        flow = load_flow(path, persist=False)
        assert flow.name == name and flow.description
        assert flow.validate() == {"content": "research", "support": "triage"}[name]
        inputs[name] = flow.inputs
    assert inputs["content"] == ["topic"] and inputs["support"] == ["question"]
    for name, needed in inputs.items():
        readme = (EXAMPLES / name / "README.md").read_text()
        command = f"agentrig {'flow' if name in flows else 'crew'} run {name}"
        assert command in readme, name
        assert all(f"--input {item}=" in readme for item in needed), (name, needed)
    # as the CLI and the server list and show them: ready-made, with no knowledge service
    catalog = CrewCatalog(tmp_path / "crews", examples=True)
    assert catalog.names() == ["code-review", "research", "sales"]
    assert catalog.describe("code-review")["process"] == "parallel"
    flow_catalog = FlowCatalog(catalog, examples=True)
    assert flow_catalog.names() == ["content", "support"]
    shown = flow_catalog.describe("support")
    assert [s["name"] for s in shown["states"]] == [
        "triage", "search", "answer", "escalation", "answered"
    ]  # fmt: skip
    assert "(max 3 visits)" in flow_catalog.describe("content")["mermaid"]


async def test_without_a_knowledge_base_the_search_says_there_is_nothing_to_search():
    model = ByRole(
        {
            "Research Analyst": [tool_call("knowledge_search", query="bees"), text("- none [0]")],
            "Writer": [text("# Bees\n\nNothing found.")],
        }
    )
    crew = Crew.from_yaml(EXAMPLES / "research", router=router_for(model))
    result = await crew.kickoff({"topic": "bees", "format": "note"})
    assert result.status == "completed"
    [said] = tool_outputs(model.requests("Research Analyst")[1])
    assert said.startswith("No knowledge base is connected") and "answer from what you know" in said


# --- the crews ----------------------------------------------------------------------------


async def test_research_searches_the_knowledge_base_once_and_the_writer_uses_the_findings(
    manual,
):
    findings = "- A full charge takes about 4 hours [1]\n- 80% takes 2.5 hours [1]"
    post = "# Charging the Lumen E3\n\nA full charge takes about 4 hours [1]."
    model = ByRole(
        {
            "Research Analyst": [tool_call("knowledge_search", query="battery charging"),
                                 text(findings)],
            "Writer": [text(post)],
        }
    )  # fmt: skip
    crew = Crew.from_yaml(EXAMPLES / "research", router=router_for(model), knowledge=manual)
    assert crew.process is Process.sequential
    result = await crew.kickoff({"topic": "Lumen E3 charging", "format": "blog post"})
    assert result.status == "completed" and result.output == post
    assert [(o.task, o.agent, o.raw) for o in result.tasks_output] == [
        ("research_task", "researcher", findings),
        ("writing_task", "writer", post),
    ]
    first, second = model.requests("Research Analyst")
    assert [spec.name for spec in first.tools] == ["knowledge_search"]
    assert "Research Lumen E3 charging" in sent(first) and "knowledge_search" in sent(first)
    [passages] = tool_outputs(second)  # one search, against the indexed manual
    assert passages.startswith("[1] lumen-e3-manual.md (") and CHARGING in passages
    [write] = model.requests("Writer")
    assert write.tools == [] and "Write a blog post about Lumen E3 charging" in sent(write)
    assert findings in sent(write)  # the research task's output is the writer's context
    assert model.calls == ["Research Analyst", "Research Analyst", "Writer"]


async def test_sales_answers_the_prospect_in_the_language_asked_for():
    notes = "Profile: a commuter\nNeeds: range\nLikely questions: 1. 2. 3.\nLead: warm"
    answer = "สวัสดีครับ Lumen E3 วิ่งได้ไกลถึง 110 กม. ต่อการชาร์จหนึ่งครั้ง"
    follow_up = "สวัสดีครับ ไม่ทราบว่าคุณมีคำถามเพิ่มเติมเกี่ยวกับ Lumen E3 ไหมครับ"
    model = ByRole(
        {
            "Sales Development Representative": [text(notes)],
            "Account Executive": [text(answer), text(follow_up)],
        }
    )
    crew = Crew.from_yaml(EXAMPLES / "sales", router=router_for(model))
    result = await crew.kickoff({"product": "Lumen E3", "language": "Thai"})
    assert result.status == "completed" and result.output == follow_up
    assert [(o.task, o.agent, o.raw) for o in result.tasks_output] == [
        ("qualification", "qualifier", notes),
        ("answer", "account_executive", answer),
        ("follow_up", "account_executive", follow_up),
    ]
    [qualify] = model.requests("Sales Development Representative")
    assert "Write internal notes, in English" in sent(qualify)
    replying, following = model.requests("Account Executive")
    assert replying.instructions.startswith("You are Account Executive for Lumen E3.")
    assert "in their own language, Thai" in replying.instructions
    assert "Write the whole reply in Thai, and only in Thai" in sent(replying)
    assert "A short reply (at most 150 words) in Thai" in sent(replying)
    assert notes in sent(replying)  # answers from the qualification
    assert "Write it in Thai, and only in Thai" in sent(following) and answer in sent(following)


async def test_code_review_runs_three_reviewers_then_the_lead_with_all_their_reviews():
    reviews = {
        "Security Reviewer": "- [high] load: eval of file contents -> use json.load",
        "Performance Reviewer": "- [low] load: reads the whole file -> stream it",
        "Code Quality Reviewer": "- [medium] load: the file is never closed -> use with",
    }
    merged = "## Verdict\nrequest changes: eval runs any code\n\n## Findings\n- [high] ..."
    model = ByRole({**{role: [text(review)] for role, review in reviews.items()},
                    "Lead Reviewer": [text(merged)]})  # fmt: skip
    crew = Crew.from_yaml(EXAMPLES / "code-review", router=router_for(model))
    assert crew.process is Process.parallel
    assert crew.needs == {
        "security_review": [],
        "performance_review": [],
        "quality_review": [],
        "review": ["security_review", "performance_review", "quality_review"],
    }
    result = await crew.kickoff({"language": "python", "code": CODE})
    assert result.status == "completed" and result.output == merged
    assert [o.task for o in result.tasks_output] == [
        "security_review", "performance_review", "quality_review", "review"
    ]  # fmt: skip
    assert sorted(model.calls[:3]) == sorted(reviews) and model.calls[3:] == ["Lead Reviewer"]
    for role in reviews:
        [request] = model.requests(role)
        assert f"```python\n{CODE}" in sent(request)  # the code, braces and all, as given
    [lead] = model.requests("Lead Reviewer")
    for task, role in [("security_review", "Security Reviewer"),
                       ("performance_review", "Performance Reviewer"),
                       ("quality_review", "Code Quality Reviewer")]:  # fmt: skip
        assert f"## {task}\n{reviews[role]}" in sent(lead)


# --- the content flow ---------------------------------------------------------------------


def content_model(verdicts: list[tuple[str, str]]) -> ByRole:
    """A researcher, a writer answering "draft 1", "draft 2"… and a reviewer giving
    ``verdicts`` ((verdict, notes) pairs) in turn."""
    return ByRole(
        {
            "Research Analyst": [text("- e-bikes assist up to 25 km/h")],
            "Writer": [text(f"draft {n}") for n in range(1, len(verdicts) + 1)],
            "Editor": [text(as_json(verdict=v, notes=notes)) for v, notes in verdicts],
        }
    )


def content_flow(model: ByRole, tmp_path: Path):
    return load_flow(
        EXAMPLES / "content" / "flow.yaml", router=router_for(model), database_url=db_url(tmp_path)
    )


async def test_content_goes_straight_to_published_when_the_first_draft_is_approved(tmp_path):
    model = content_model([("approved", "clear and accurate")])
    flow = content_flow(model, tmp_path)
    result = await flow.run({"topic": "commuting by e-bike"})
    assert result.status == "completed" and result.final_state == "published"
    assert [step.state for step in result.history] == [
        "research", "writing", "review", "published"
    ]  # fmt: skip
    assert result.output == "draft 1"  # the approved draft is the flow's output
    assert result.history[2].structured == {"verdict": "approved", "notes": "clear and accurate"}
    assert result.variables.verdict == "approved" and result.variables.brief == ""
    assert result.variables.research == "- e-bikes assist up to 25 km/h"
    [review] = model.requests("Editor")
    assert review.output_schema is not None and review.output_schema.name == "review"
    assert "draft 1" in sent(review) and "a blog post about commuting by e-bike" in sent(review)
    [write] = model.requests("Writer")
    assert "- e-bikes assist up to 25 km/h" in sent(write)
    stored = await flow.get_run(result.run_id)
    assert stored is not None and stored.status == "completed"


async def test_content_is_revised_twice_then_published(tmp_path):
    model = content_model(
        [("revise", "add a title"), ("revise", "shorter, please"), ("approved", "good")]
    )
    result = await content_flow(model, tmp_path).run({"topic": "e-bikes", "format": "newsletter"})
    assert result.status == "completed" and result.output == "draft 3"
    assert [step.state for step in result.history] == [
        "research",
        "writing", "review", "revision",
        "writing", "review", "revision",
        "writing", "review", "published",
    ]  # fmt: skip
    assert result.run.visits["revision"] == 2 and result.run.visits["writing"] == 3
    first, second, third = model.requests("Writer")
    assert "This is revision" not in sent(first)
    assert "This is revision 1. Your previous draft was:\n\ndraft 1" in sent(second)
    assert "add a title" in sent(second) and "Write the whole newsletter again" in sent(second)
    assert "This is revision 2. Your previous draft was:\n\ndraft 2" in sent(third)
    assert "shorter, please" in sent(third)
    assert model.remaining() == {"Research Analyst": 0, "Writer": 0, "Editor": 0}


async def test_content_fails_rather_than_revise_a_fourth_time(tmp_path):
    model = content_model([("revise", f"not yet ({n})") for n in range(1, 5)])
    result = await content_flow(model, tmp_path).run({"topic": "e-bikes"})
    assert result.status == "failed" and result.reason == "max_visits"
    assert "state 'revision' would run a 4th time (max_visits=3)" in (result.error or "")
    states = [step.state for step in result.history]
    assert states.count("revision") == 3 and states.count("review") == 4
    assert states[-2:] == ["writing", "review"] and result.final_state == "revision"
    assert result.variables.notes == "not yet (4)"


# --- the support flow ---------------------------------------------------------------------


def support_flow(model: ByRole, tmp_path: Path, **options):
    return load_flow(
        EXAMPLES / "support" / "flow.yaml",
        router=router_for(model),
        database_url=db_url(tmp_path),
        **options,
    )


async def test_support_answers_from_the_knowledge_base(tmp_path, manual):
    passages = "[1] A full charge from empty takes about 4 hours."
    model = ByRole(
        {
            "Support Triage": [text(as_json(category="technical", urgency="normal"))],
            "Support Researcher": [tool_call("knowledge_search", query="full charge time"),
                                   text(passages)],
            "Support Agent": [text(as_json(answer="About 4 hours [1].", confidence="high"))],
        }
    )  # fmt: skip
    flow = support_flow(model, tmp_path, knowledge=manual)
    question = "How long does a full charge take?"
    result = await flow.run({"question": question, "customer": "Ana"})
    assert result.status == "completed" and result.final_state == "answered"
    assert [step.state for step in result.history] == ["triage", "search", "answer", "answered"]
    assert result.output == "About 4 hours [1]."  # the answer's text, not its JSON
    variables = result.variables
    assert (variables.category, variables.urgency) == ("technical", "normal")
    assert (variables.answer, variables.confidence) == ("About 4 hours [1].", "high")
    assert variables.passages == passages
    [triage] = model.requests("Support Triage")
    assert triage.output_schema is not None and triage.tools == []
    assert sent(triage) == f"Customer: Ana\nQuestion: {question}"
    search = model.requests("Support Researcher")
    assert [spec.name for spec in search[0].tools] == ["knowledge_search"]
    [found] = tool_outputs(search[1])
    assert found.startswith("[1] lumen-e3-manual.md (") and CHARGING in found
    [answer] = model.requests("Support Agent")
    assert answer.tools == [] and answer.output_schema is not None
    assert passages in sent(answer) and "Category: technical" in sent(answer)


async def test_an_urgent_question_goes_straight_to_a_person(tmp_path):
    model = ByRole({"Support Triage": [text(as_json(category="technical", urgency="urgent"))]})
    result = await support_flow(model, tmp_path).run({"question": "Smoke from my battery!"})
    assert result.status == "paused" and result.final_state == "escalation"
    assert [step.state for step in result.history] == ["triage"]
    [waiting] = result.interruptions
    assert waiting.kind == "human" and "(technical, urgency urgent)" in waiting.output
    assert model.calls == ["Support Triage"]  # no search, no answer


async def test_a_low_confidence_answer_waits_for_a_person_and_resumes_in_another_process(
    tmp_path,
):
    model = ByRole(
        {
            "Support Triage": [text(as_json(category="billing", urgency="normal"))],
            "Support Researcher": [tool_call("knowledge_search", query="bitcoin"),
                                   text("Nothing about bitcoin.")],
            "Support Agent": [text(as_json(answer="I am not sure.", confidence="low"))],
        }
    )  # fmt: skip
    flow = support_flow(model, tmp_path)  # no knowledge base: the search's stand-in answers
    paused = await flow.run({"question": "Can I pay with bitcoin?", "customer": "Bo"})
    assert paused.status == "paused" and paused.final_state == "escalation"
    assert [step.state for step in paused.history] == ["triage", "search", "answer"]
    [waiting] = paused.interruptions
    assert waiting.kind == "human" and waiting.target == "escalation"
    assert "Question: Can I pay with bitcoin?" in waiting.output
    assert "Draft answer (confidence low): I am not sure." in waiting.output
    text_form = paused.run.to_string()
    stored = await flow.get_run(paused.run_id)
    assert stored is not None and stored.status == "paused"
    assert FlowRun.from_string(text_form).to_json() == stored.to_json() == paused.run.to_json()
    before = [step.to_json() for step in stored.history]

    reply = "Not yet: we take cards and bank transfers."
    done = subprocess.run(
        [sys.executable, str(HERE / "example_helpers.py"), db_url(tmp_path), paused.run_id,
         reply],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    resumed = json.loads(done.stdout)
    assert resumed["calls"] == []  # triage, search and answer were not run again
    result = resumed["result"]
    assert result["status"] == "completed" and result["final_state"] == "answered"
    assert result["output"] == reply
    assert [step["state"] for step in result["history"]] == [
        "triage", "search", "answer", "escalation", "answered"
    ]  # fmt: skip
    assert result["history"][:3] == before and result["history"][3]["output"] == reply
    assert result["variables"]["answer"] == reply
    final = await flow.get_run(paused.run_id)
    assert final is not None and final.status == "completed" and final.output == reply
    assert len(model.requests("Support Agent")) == 1  # this process's models: once each
