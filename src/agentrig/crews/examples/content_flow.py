"""What the ``content`` flow's YAML names: the reviewer's verdict and the two function steps.

A step function gets the flow's context (``variables``, ``visit``, ``history``, ``output``)
and returns the step's text output (``output_to`` in the YAML keeps it in a variable).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Review(BaseModel):
    """The reviewer's answer. On the local model the JSON is written under a grammar made
    from this schema, so ``verdict`` can only be one of the two words."""

    verdict: Literal["approved", "revise"] = Field(
        description="approved when the draft can be published as it is, else revise"
    )
    notes: str = Field(description="What to change (for revise), or why it is good")


def revision(context: Any) -> str:
    """The brief for the writer's next draft: the previous draft and the reviewer's notes."""
    variables = context.variables
    return (
        f"This is revision {context.visit}. Your previous draft was:\n\n{variables.draft}\n\n"
        f"The editor asked for these changes:\n{variables.notes}\n\n"
        f"Write the whole {variables.format} again with these changes made."
    )


def publish(context: Any) -> str:
    """The approved draft, as the flow's output."""
    return context.variables.draft
