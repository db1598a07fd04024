"""Flows: conditions, priorities, guards, graph checks, variables, events and Mermaid."""

from __future__ import annotations

import itertools

import pytest
from pydantic import BaseModel

from agentrig import Agent
from agentrig.crews import Crew, Task, TaskFinished
from agentrig.errors import ConfigError
from agentrig.flows import (
    Always,
    And,
    Flow,
    FlowInputError,
    Not,
    OnFailure,
    OnSuccess,
    Or,
    OutputContains,
    StateEntered,
    StateFinished,
    StepEvent,
    StepOutput,
    StepRecord,
    TransitionTaken,
    VariableEquals,
)
from agentrig.testing import ScriptedModel, text


class Content(BaseModel):
    topic: str
    drafts: int = 0
    verdict: str = ""


def says(answer: str):
    def step(ctx):
        return answer

    step.__name__ = f"say_{answer.split()[0]}"
    return step


def chain(*names: str, **flow) -> Flow:
    """A flow of function states answering their names, one after the other."""
    built = Flow("chain", persist=False, **flow)
    for index, name in enumerate(names):
        last = index == len(names) - 1
        built.state(name, run=says(name), initial=index == 0, final=last)
    for source, target in itertools.pairwise(names):
        built.transition(source, target)
    return built


def step(status="completed", output="") -> StepRecord:
    return StepRecord("s", 1, status, output)


# --- conditions ---------------------------------------------------------------------------


def test_every_condition_and_their_combinations():
    done, failed = step(output="Looks APPROVED to me"), step("failed", "boom")
    variables = {"verdict": "approved", "drafts": 2}
    assert Always().holds(failed, variables)
    assert OnSuccess().holds(done, variables) and not OnSuccess().holds(failed, variables)
    assert OnFailure().holds(failed, variables) and not OnFailure().holds(done, variables)
    assert OutputContains("approved").holds(done, variables)  # case-insensitive by default
    assert not OutputContains("approved", case_sensitive=True).holds(done, variables)
    assert not OutputContains("boom").holds(failed, variables)  # a failed step's error
    assert VariableEquals("verdict", "approved").holds(done, variables)
    assert not VariableEquals("drafts", 3).holds(done, variables)
    both = OnSuccess() & VariableEquals("drafts", 2)
    assert isinstance(both, And) and both.holds(done, variables)
    assert not both.holds(failed, variables)
    either = OnFailure() | OutputContains("nothing")
    assert isinstance(either, Or) and either.holds(failed, variables)
    assert not either.holds(done, variables)
    assert isinstance(~OnSuccess(), Not) and (~OnSuccess()).holds(failed, variables)
    assert (OnSuccess() & (lambda s, v: v["drafts"] > 1)).holds(done, variables)
    assert not (OnSuccess() & (lambda s, v: v["drafts"] > 5)).holds(done, variables)
    assert (~(OnFailure() | OnSuccess())).label == "not (on failure or on success)"
    with pytest.raises(KeyError, match="no variable 'missing'"):
        VariableEquals("missing", 1).holds(done, variables)
    with pytest.raises(ValueError, match="text to look for"):
        OutputContains("")


async def test_a_user_function_is_a_condition_of_the_step_and_the_typed_variables():
    flow = Flow("typed", variables=Content, persist=False)
    flow.state("count", run=lambda ctx: {"drafts": ctx.variables.drafts + 1}, initial=True)
    flow.state("many", final=True)
    flow.state("few", final=True)
    flow.transition("count", "many", when=lambda step, v: v.drafts > 5)
    flow.transition("count", "few", when=lambda step, v: v.drafts <= 5)
    result = await flow.run({"topic": "t", "drafts": 9})
    assert result.final_state == "many" and result.variables.drafts == 10
    assert (await flow.run({"topic": "t"})).final_state == "few"


# --- transitions: priority, order, failures -----------------------------------------------


async def test_transitions_are_tried_by_priority_then_declaration_order():
    flow = Flow("p", persist=False)
    flow.state("review", run=says("approved, with a revision note"), initial=True)
    for name in ("low", "first", "second", "top"):
        flow.state(name, final=True)
    flow.transition("review", "low", when=OutputContains("approved"), priority=-1)
    flow.transition("review", "first", when=OutputContains("revision"))
    flow.transition("review", "second", when=Always())
    flow.transition("review", "top", when=OutputContains("missing"), priority=10)
    result = await flow.run()
    # "top" does not hold; "first" and "second" tie at 0 and "first" was declared first
    assert result.final_state == "first"
    assert result.history[0].next_state == "first"
    assert result.history[0].condition == "output contains 'revision'"
    flow.transition("review", "low", when=Always(), priority=5)
    assert (await flow.run()).final_state == "low"


async def test_a_state_with_no_transition_that_holds_fails_the_flow_quoting_its_output():
    flow = Flow("stuck", persist=False)
    flow.state("review", run=says("maybe later"), initial=True)
    flow.state("published", final=True)
    flow.transition("review", "published", when=OutputContains("approved"))
    result = await flow.run()
    assert result.status == "failed" and result.reason == "no_transition"
    assert result.final_state == "review"
    assert "state 'review'" in result.error and "'maybe later'" in result.error
    assert [s.state for s in result.history] == ["review"]


async def test_a_raising_step_fails_and_on_failure_routes_it():
    def flaky(ctx):
        raise RuntimeError("the API is down")

    flow = Flow("f", persist=False)
    flow.state("call", run=flaky, initial=True)
    flow.state("ok", final=True)
    flow.state("fallback", run=lambda ctx: f"handled: {ctx.output or ctx.history[-1].output}")
    flow.state("done", final=True)
    flow.transition("call", "ok", when=OnSuccess())
    flow.transition("call", "fallback", when=OnFailure())
    flow.transition("fallback", "done")
    result = await flow.run()
    assert result.status == "completed" and result.final_state == "done"
    failed = result.history[0]
    assert failed.status == "failed" and failed.error == "the API is down"
    assert failed.output == "RuntimeError: the API is down"
    assert result.output == "handled: RuntimeError: the API is down"


async def test_a_condition_that_raises_fails_the_flow_naming_it():
    flow = Flow("c", persist=False)
    flow.state("a", run=says("a"), initial=True)
    flow.state("b", final=True)
    flow.transition("a", "b", when=lambda step, v: 1 / 0)
    result = await flow.run()
    assert result.status == "failed" and result.reason == "condition"
    assert "ZeroDivisionError" in result.error and "'a' -> 'b'" in result.error


# --- guards -------------------------------------------------------------------------------


def review_cycle(max_visits: int | None = 3, max_steps: int = 100) -> Flow:
    flow = Flow("content", variables=Content, persist=False, max_steps=max_steps)
    flow.state("writing", run=lambda ctx: StepOutput("draft", {"drafts": ctx.variables.drafts + 1}),
               initial=True)  # fmt: skip
    flow.state("review", run=says("needs revision"))
    flow.state("revision", run=says("revised"), max_visits=max_visits)
    flow.state("published", final=True)
    flow.transition("writing", "review")
    flow.transition("review", "published", when=OutputContains("approved"), priority=10)
    flow.transition("review", "revision", when=OutputContains("revision"))
    flow.transition("revision", "writing")
    return flow


async def test_max_visits_ends_a_review_cycle_with_its_history():
    result = await review_cycle(max_visits=2).run({"topic": "bees"})
    assert result.status == "failed" and result.reason == "max_visits"
    states = [s.state for s in result.history]
    assert states == ["writing", "review", "revision"] * 2 + ["writing", "review"]
    assert "'revision' would run a 3rd time (max_visits=2)" in result.error
    assert "writing (completed) -> review (completed) -> revision" in result.error
    assert result.variables.drafts == 3 and result.final_state == "revision"


async def test_max_steps_ends_a_cycle_without_max_visits():
    result = await review_cycle(max_visits=None, max_steps=7).run({"topic": "bees"})
    assert result.status == "failed" and result.reason == "max_steps"
    assert len(result.history) == 7 and "ran 7 steps (max_steps=7)" in result.error


# --- checks at construction ---------------------------------------------------------------


def test_the_graph_is_checked_and_errors_name_the_states():
    flow = Flow("g", persist=False)
    flow.state("a", run=says("a"), initial=True)
    with pytest.raises(ConfigError, match="already has a state 'a'"):
        flow.state("a", run=says("a"))
    with pytest.raises(ConfigError, match=r"has an initial state already \('a'\)"):
        flow.state("b", run=says("b"), initial=True)
    with pytest.raises(ConfigError, match="runs nothing and is not final"):
        flow.state("c")
    with pytest.raises(ConfigError, match="runs 42: a Crew, an Agent, a function"):
        flow.state("c", run=42)
    with pytest.raises(ConfigError, match="names the unknown state 'nowhere'"):
        flow.transition("a", "nowhere")
    flow.state("end", final=True)
    with pytest.raises(ConfigError, match="'end' is final"):
        flow.transition("end", "a")
    with pytest.raises(ConfigError, match=r"no transition reaches the states \['end'\]"):
        flow.validate()
    flow.state("loop", run=says("loop"))
    flow.transition("a", "end")
    flow.transition("a", "loop")
    flow.transition("loop", "loop")
    with pytest.raises(ConfigError, match=r"the states \['loop'\] have no way to a final state"):
        flow.validate()
    flow.transition("loop", "end", when=OnFailure())
    assert flow.validate() == "a"


def test_a_flow_needs_an_initial_and_a_final_state():
    flow = Flow("none", persist=False)
    flow.state("a", run=says("a"))
    with pytest.raises(ConfigError, match="no initial state"):
        flow.validate()
    other = Flow("nofinal", persist=False)
    other.state("a", run=says("a"), initial=True)
    with pytest.raises(ConfigError, match="no final state"):
        other.validate()


def test_variables_named_by_states_and_conditions_must_exist():
    flow = Flow("v", variables=Content, persist=False)
    with pytest.raises(ConfigError, match="sets the unknown variable 'draft'"):
        flow.state("w", run=says("w"), initial=True, output_to="draft")
    flow.state("w", run=says("w"), initial=True, output_to="verdict")
    flow.state("end", final=True)
    with pytest.raises(ConfigError, match=r"names the unknown variables \['verdikt'\]"):
        flow.transition("w", "end", when=OnSuccess() & VariableEquals("verdikt", "ok"))
    assert flow.graph.transitions == []  # the refused transition is not kept


# --- variables ----------------------------------------------------------------------------


async def test_inputs_are_checked_against_the_variables_before_anything_runs():
    ran = []
    flow = Flow("in", variables=Content, persist=False)
    flow.state("a", run=lambda ctx: ran.append(1), initial=True)
    flow.state("b", final=True)
    flow.transition("a", "b")
    assert flow.inputs == ["topic"]
    with pytest.raises(FlowInputError, match="topic: Field required"):
        await flow.run({})
    with pytest.raises(FlowInputError, match=r"has no variables \['topik'\]"):
        await flow.run({"topic": "x", "topik": "y"})
    with pytest.raises(FlowInputError, match="drafts: Input should be a valid integer"):
        await flow.run({"topic": "x", "drafts": "many"})
    assert ran == []


async def test_steps_update_variables_by_return_value_output_to_and_structured_outputs():
    class Verdict(BaseModel):
        verdict: str
        notes: str

    reviewer = Agent(
        name="reviewer",
        instructions="Review.",
        model=ScriptedModel([text('{"verdict": "approved", "notes": "fine"}')]),
        output_type=Verdict,
    )
    flow = Flow("vars", variables=Content, persist=False)
    flow.state("count", run=lambda ctx: {"drafts": 4}, initial=True)
    flow.state("write", run=lambda ctx: f"draft {ctx.variables.drafts}", output_to="topic")
    flow.state("review", run=reviewer, updates=True, input="Review: {topic}")
    flow.state("published", final=True)
    flow.transition("count", "write")
    flow.transition("write", "review")
    flow.transition("review", "published", when=VariableEquals("verdict", "approved"))
    result = await flow.run({"topic": "bees"})
    assert result.status == "completed", result.error
    assert result.variables == Content(topic="draft 4", drafts=4, verdict="approved")
    assert result.history[2].structured == {"verdict": "approved", "notes": "fine"}
    assert "Review: draft 4" in str(reviewer.model.requests[0].items)


async def test_a_wrong_update_fails_the_step_naming_the_variable():
    flow = Flow("bad", variables=Content, persist=False)
    flow.state("a", run=lambda ctx: {"drafts": "lots"}, initial=True)
    flow.state("b", run=lambda ctx: {"nope": 1})
    flow.state("end", final=True)
    flow.state("end2", final=True)
    flow.transition("a", "end", when=OnSuccess())
    flow.transition("a", "b", when=OnFailure())
    flow.transition("b", "end2", when=OnSuccess())
    result = await flow.run({"topic": "x"})
    first, second = result.history
    assert first.status == "failed" and "variable 'drafts' wrongly" in first.error
    assert second.status == "failed" and "unknown variables ['nope']" in second.error
    assert result.status == "failed" and result.variables.drafts == 0  # nothing half-applied


async def test_a_function_may_be_async_and_return_the_variables_model():
    async def rewrite(ctx):
        return ctx.variables.model_copy(update={"verdict": "async"})

    flow = Flow("a", variables=Content, persist=False)
    flow.state("r", run=rewrite, initial=True)
    flow.state("e", final=True)
    flow.transition("r", "e")
    result = await flow.run({"topic": "x"})
    assert result.variables.verdict == "async"


async def test_dict_variables_keep_their_defaults():
    flow = Flow("d", variables={"n": 1, "label": "x"}, persist=False)
    flow.state("inc", run=lambda ctx: {"n": ctx.variables["n"] + 1}, initial=True)
    flow.state("e", final=True)
    flow.transition("inc", "e")
    result = await flow.run({"label": "y"})
    assert result.variables == {"n": 2, "label": "y"}


# --- crews and agents as states, events ----------------------------------------------------


async def test_the_events_come_in_order_with_nested_crew_and_agent_events_tagged():
    writer = Agent(name="writer", role="W", goal="g", backstory="b",
                   model=ScriptedModel([text("a draft about {topic}")]))  # fmt: skip
    crew = Crew("writing", agents=[writer], tasks=[Task("Write on {topic}", "x", agent=writer)])
    checker = Agent(name="checker", instructions="Check.", model=ScriptedModel([text("approved")]))
    flow = Flow("events", variables=Content, persist=False)
    flow.state("write", run=crew, initial=True)
    flow.state("check", run=checker)
    flow.state("done", final=True)
    flow.transition("write", "check", when=OnSuccess())
    flow.transition("check", "done", when=OutputContains("approved"))
    stream = flow.run_streamed({"topic": "bees"})
    events = [event async for event in stream.events()]
    kinds = [e.type for e in events if not isinstance(e, StepEvent)]
    assert kinds == [
        "flow.started",
        "flow.state_entered", "flow.state_finished", "flow.transition",
        "flow.state_entered", "flow.state_finished", "flow.transition",
        "flow.finished",
    ]  # fmt: skip
    nested = [e for e in events if isinstance(e, StepEvent)]
    assert {e.state for e in nested} == {"write", "check"}
    first_nested = events.index(nested[0])
    assert isinstance(events[first_nested - 1], StateEntered)
    assert any(isinstance(e.event, TaskFinished) for e in nested if e.state == "write")
    transitions = [e for e in events if isinstance(e, TransitionTaken)]
    assert [(t.source, t.target, t.condition) for t in transitions] == [
        ("write", "check", "on success"),
        ("check", "done", "output contains 'approved'"),
    ]
    finished = [e for e in events if isinstance(e, StateFinished)]
    assert finished[0].step.output == "a draft about {topic}"
    result = stream.result
    assert result.status == "completed" and result.output == "approved"
    assert result.usage.requests == 2 and result.history[0].usage.requests == 1
    assert "Write on bees" in str(writer.model.requests[0].items)


# --- Mermaid ------------------------------------------------------------------------------


def test_mermaid_shows_states_transitions_conditions_and_priorities():
    assert review_cycle().mermaid() == (
        "stateDiagram-v2\n"
        '    state "writing (function <lambda>)" as writing\n'
        '    state "review (function say_needs)" as review\n'
        '    state "revision (function say_revised) (max 3 visits)" as revision\n'
        '    state "published" as published\n'
        "    [*] --> writing\n"
        "    writing --> review: always\n"
        "    review --> published: output contains 'approved' [priority 10]\n"
        "    review --> revision: output contains 'revision'\n"
        "    revision --> writing: always\n"
        "    published --> [*]\n"
    )


def test_mermaid_ids_are_safe_for_any_state_name():
    flow = Flow("names", persist=False)
    flow.state("needs review?", run=says("x"), initial=True)
    flow.state("done: ok", final=True)
    flow.transition("needs review?", "done: ok", when=OutputContains('say "yes": now'))
    text_ = flow.mermaid()
    assert "s0_needs_review_ --> s1_done__ok: output contains 'say 'yes' - now'" in text_
    assert 'state "done - ok" as s1_done__ok' in text_


async def test_a_chain_runs_every_state_once():
    result = await chain("a", "b", "c").run()
    assert [s.state for s in result.history] == ["a", "b", "c"]  # a final state may run
    assert result.status == "completed" and result.final_state == "c" and result.output == "c"
    assert [s.next_state for s in result.history] == ["b", "c", None]
