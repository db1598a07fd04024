"""The knowledge chat: sources retrieved for every message, follow-up searches, cited
sources, conversations that continue, streaming, and prompts users can override."""

from __future__ import annotations

import pytest

from agentrig.errors import ConfigError
from agentrig.rag.chat import KnowledgeChat, cited
from agentrig.rag.prompts import Prompts
from agentrig.testing import ScriptedModel, text, tool_call
from tests.conftest import add_samples


@pytest.fixture
async def indexed(knowledge):
    """The knowledge service with the sample documents in ``lumen``."""
    await add_samples(knowledge)
    return knowledge


def chat_with(knowledge, model, prompts: Prompts | None = None) -> KnowledgeChat:
    return KnowledgeChat(knowledge, prompts or Prompts.load(), {}, model=model)


async def test_answers_from_retrieved_sources_and_returns_the_cited_ones(indexed):
    model = ScriptedModel([text("A full charge takes about 4 hours [1].")])
    answer = await chat_with(indexed, model).answer(
        "t1", "How long does charging take?", kb="lumen"
    )
    assert answer.response == "A full charge takes about 4 hours [1]."
    assert answer.conversation_id.startswith("conv_")
    [source] = answer.sources
    assert source["number"] == 1 and source["filename"] == "lumen-e3-manual.md"
    assert "4 hours" in source["text"] and source["heading"].endswith("Battery and charging")
    instructions = model.requests[0].instructions
    assert '"lumen"' in instructions and "[1] lumen-e3-manual.md" in instructions
    assert "4 hours" in instructions  # the retrieved text is in the model's context
    assert [tool.name for tool in model.requests[0].tools] == ["knowledge_search"]


async def test_follow_up_searches_are_numbered_on_and_can_be_cited(indexed):
    model = ScriptedModel(
        [tool_call("knowledge_search", query="theft cover excess"), text("EUR 150 [6].")]
    )
    answer = await chat_with(indexed, model).answer("t1", "And if it is stolen?", kb="lumen")
    first_round = 5  # the default top_k for the message itself
    tool_output = model.requests[1].items[-1].output
    assert f"[{first_round + 1}]" in tool_output and "150" in tool_output
    [source] = answer.sources
    assert source["number"] == 6 and source["filename"] == "service-plans.html"


async def test_a_conversation_continues_and_belongs_to_its_tenant(indexed):
    model = ScriptedModel([text("About 4 hours [1]."), text("About 2.5 hours [1].")])
    chat = chat_with(indexed, model)
    first = await chat.answer("t1", "How long does charging take?", kb="lumen")
    await chat.answer("t1", "And to 80%?", kb="lumen", conversation_id=first.conversation_id)
    seen = [getattr(item, "text", "") for item in model.requests[1].items]
    assert "How long does charging take?" in seen and "About 4 hours [1]." in seen
    other = ScriptedModel([text("Hello.")])
    await chat_with(indexed, other).answer(
        "t2", "hi", kb="lumen", conversation_id=first.conversation_id
    )
    assert [getattr(i, "text", "") for i in other.requests[0].items] == ["hi"]  # not t1's


async def test_streaming_gives_deltas_tool_events_and_the_sources_last(indexed):
    model = ScriptedModel(
        [tool_call("knowledge_search", query="error E07"), text("Let it cool [6].")]
    )
    events = [event async for event in chat_with(indexed, model).stream("t1", "E07?", kb="lumen")]
    kinds = [event["type"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert "tool_call" in kinds and "tool_result" in kinds and kinds.count("delta") >= 3
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "Let it cool [6]."
    done = events[-1]
    assert done["response"] == "Let it cool [6]." and done["sources"][0]["number"] == 6
    assert done["conversation_id"] == events[0]["conversation_id"]


async def test_prompts_can_be_overridden_and_bad_ones_are_clear_errors(indexed, tmp_path):
    mine = tmp_path / "prompts.toml"
    mine.write_text('instructions = "Answer in French from {{ sources | length }} sources."\n')
    model = ScriptedModel([text("Quatre heures [1].")])
    await chat_with(indexed, model, Prompts.load(mine)).answer("t1", "charging time?", kb="lumen")
    assert model.requests[0].instructions == "Answer in French from 5 sources."
    (tmp_path / "bad.toml").write_text('instructions = "{% for x in %}"\n')
    with pytest.raises(ConfigError, match="instructions"):
        Prompts.load(tmp_path / "bad.toml")
    (tmp_path / "unknown.toml").write_text('greeting = "hi"\n')
    with pytest.raises(ConfigError, match="unknown prompt"):
        Prompts.load(tmp_path / "unknown.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        Prompts.load(tmp_path / "missing.toml")


def test_cited_picks_the_cited_sources_or_all():
    sources = [{"number": n} for n in (1, 2, 3)]
    assert cited("see [3] and [1], not [9]", sources) == [{"number": 1}, {"number": 3}]
    assert cited("no citations", sources) == sources
