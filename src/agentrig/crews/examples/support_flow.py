"""What the ``support`` flow's YAML names: the triage and answer types, and the step that
gives the final reply.

The fields are short closed lists (``Literal``) wherever the flow branches on them: on the
local model the JSON is written under a grammar made from the schema, so ``urgency`` and
``confidence`` can only be one of their words and ``variable_equals`` compares exactly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Triage(BaseModel):
    # A small model leans to the first word of a list: the usual answers come first.
    category: Literal["technical", "billing", "returns", "account", "other"] = Field(
        description="What the question is about"
    )
    urgency: Literal["normal", "low", "urgent"] = Field(
        description="normal for most questions; urgent only for a safety issue or a "
        "customer who cannot use the product at all"
    )


class Answer(BaseModel):
    answer: str = Field(description="The reply to the customer, citing passages like [1]")
    confidence: Literal["high", "medium", "low"] = Field(
        description="high when the knowledge base answers the question, low when it does "
        "not (a person then answers instead)"
    )


def reply(context: Any) -> str:
    """The answer to send, the assistant's or the person's: the flow's output."""
    return context.variables.answer
