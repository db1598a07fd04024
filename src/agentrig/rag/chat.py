"""Chat with a knowledge base: retrieve for every message, answer with cited sources.

Each message is searched first (hybrid retrieval) and the hits become the numbered
sources in the agent's instructions (``prompts.toml``, rendered for that message); the
agent may call ``knowledge_search`` for follow-up searches, whose hits are numbered on.
The answer cites sources as ``[n]``; ``sources`` returns the ones it cited (all that it
was given, if it cited none). The conversation is an agentrig session in the database,
keyed by tenant and conversation id, so a conversation continues across messages,
server processes and the asynchronous path alike. ``agent_id`` lets one of the served
agents answer instead, with its own instructions first and the same sources and tool.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from agentrig.agents import Agent, Runner
from agentrig.agents.events import ItemEvent, RunFinished, TextDeltaEvent
from agentrig.items import FunctionCall, FunctionCallOutput, new_id
from agentrig.knowledge.service import Knowledge
from agentrig.knowledge.vectors import Hit
from agentrig.rag.prompts import Prompts
from agentrig.sessions.sql import SQLAlchemySession
from agentrig.tools import ToolContext
from agentrig.tools.function_tool import FunctionTool

_CITATION = re.compile(r"\[(\d{1,3})\]")


def source_json(hit: Hit, number: int | None = None) -> dict[str, Any]:
    """A retrieved chunk as a source: where it comes from, its score and its text."""
    source = {
        "document_id": hit.document_id,
        "filename": hit.metadata.get("filename"),
        "kb": hit.kb,
        "chunk": hit.chunk_index,
        "page": hit.page,
        "heading": hit.heading,
        "score": hit.score,
        "text": hit.text,
    }
    return source if number is None else {"number": number, **source}


def cited(answer: str, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sources ``answer`` cites as ``[n]``, in order; all of them if it cites none."""
    numbers = sorted({int(n) for n in _CITATION.findall(answer)})
    chosen = [s for s in sources if s["number"] in numbers]
    return chosen or list(sources)


@dataclass(frozen=True)
class ChatAnswer:
    response: str
    conversation_id: str
    sources: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "response": self.response,
            "conversation_id": self.conversation_id,
            "sources": self.sources,
        }


@dataclass
class KnowledgeChat:
    """Answers on ``knowledge`` through its router; conversations live in its database."""

    knowledge: Knowledge
    prompts: Prompts
    agents: Mapping[str, Agent]
    model: Any = "default"  # a role, a provider/model, or any LLMClient
    max_turns: int = 6

    @classmethod
    def open(cls, knowledge: Knowledge, agents: Mapping[str, Agent]) -> KnowledgeChat:
        """The chat that ``knowledge``'s settings describe (prompts file, chat model)."""
        settings = knowledge.settings.knowledge
        return cls(knowledge, Prompts.load(settings.prompts_file), agents, settings.chat_model)

    def __post_init__(self) -> None:
        self._search = self._search_tool()
        self._agent = Agent(
            name="knowledge",
            instructions=self._instructions,
            model=self.model,
            tools=[self._search],
            description="Answers from the documents of a knowledge base, with sources.",
        )

    async def answer(
        self,
        tenant: str,
        message: str,
        *,
        conversation_id: str | None = None,
        kb: str | None = None,
        agent_id: str | None = None,
    ) -> ChatAnswer:
        agent, run, conversation_id = await self._prepare(
            tenant, message, conversation_id, kb, agent_id
        )
        result = await Runner.run(agent, message, **run)
        response = str(result.final_output or "")
        sources = cited(response, result.context["sources"])
        return ChatAnswer(response, conversation_id, sources)

    async def stream(
        self,
        tenant: str,
        message: str,
        *,
        conversation_id: str | None = None,
        kb: str | None = None,
        agent_id: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Events: ``start`` (conversation id), ``delta`` (text), ``tool_call`` and
        ``tool_result`` (knowledge searches), then ``done`` with the answer and sources."""
        agent, options, conversation_id = await self._prepare(
            tenant, message, conversation_id, kb, agent_id
        )
        yield {"type": "start", "conversation_id": conversation_id}
        run = Runner.run_streamed(agent, message, **options)
        result = None
        async for event in run.events():
            if isinstance(event, TextDeltaEvent):
                yield {"type": "delta", "text": event.delta}
            elif isinstance(event, ItemEvent) and isinstance(event.item, FunctionCall):
                item = event.item
                yield {"type": "tool_call", "name": item.name, "arguments": item.arguments}
            elif isinstance(event, ItemEvent) and isinstance(event.item, FunctionCallOutput):
                yield {"type": "tool_result", "output": event.item.output}
            elif isinstance(event, RunFinished):
                result = event.result
        result = result or run.result
        response = str(result.final_output or "")
        answer = ChatAnswer(response, conversation_id, cited(response, result.context["sources"]))
        yield {"type": "done", **answer.to_json()}

    async def _prepare(
        self,
        tenant: str,
        message: str,
        conversation_id: str | None,
        kb: str | None,
        agent_id: str | None,
    ) -> tuple[Agent, dict[str, Any], str]:
        """The agent, the run's options (context with the sources, session, router) and
        the conversation id."""
        if not message.strip():
            raise ValueError("message: empty; ask something")
        agent = self._agent
        own = None
        if agent_id is not None:
            served = self.agents.get(agent_id)
            if served is None:
                raise LookupError(f"agent_id: no agent {agent_id!r}; served: {sorted(self.agents)}")
            agent = served.clone(
                instructions=self._instructions, tools=[*served.tools, self._search]
            )
            own = served_instructions(served)
        kb = kb or self.knowledge.settings.knowledge.default_kb
        hits = await self.knowledge.retriever.search(message, tenant=tenant, kb=kb)
        sources = [source_json(hit, n) for n, hit in enumerate(hits, 1)]
        context = {"tenant": tenant, "kb": kb, "sources": sources, "agent_instructions": own}
        conversation_id = conversation_id or new_id("conv")
        session = SQLAlchemySession(f"chat:{tenant}:{conversation_id}", self.knowledge.database)
        options = {"context": context, "session": session, "router": self.knowledge.router}
        options |= {"registry": self.agents, "max_turns": self.max_turns}
        return agent, options, conversation_id

    async def _instructions(self, run: Any, agent: Agent) -> str:
        context = run.context
        return self.prompts.render(
            "instructions",
            kb=context["kb"],
            sources=context["sources"],
            agent_instructions=context.get("agent_instructions"),
        )

    def _search_tool(self) -> FunctionTool:
        knowledge, prompts = self.knowledge, self.prompts

        async def knowledge_search(ctx: ToolContext, query: str) -> str:
            """Search the knowledge base.

            Args:
                query: What to look for, in a few words.
            """
            context = ctx.context
            hits = await knowledge.retriever.search(
                query, tenant=context["tenant"], kb=context["kb"]
            )
            start = len(context["sources"]) + 1
            found = [source_json(hit, n) for n, hit in enumerate(hits, start)]
            context["sources"].extend(found)
            return prompts.render("search_result", sources=found, query=query)

        return FunctionTool(
            knowledge_search,
            name="knowledge_search",
            description=self.prompts.render("search_tool"),
        )


def served_instructions(agent: Agent) -> str | None:
    """A served agent's own instructions, when they are a plain string."""
    instructions = agent.effective_instructions
    return instructions if isinstance(instructions, str) else None
