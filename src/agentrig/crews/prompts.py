"""The texts a crew adds around its tasks, in one place so they can be read and replaced.

``Crew(prompts=CrewPrompts(task=...))`` overrides any of them; each is a ``str.format``
template of the names shown in its default.
"""

from __future__ import annotations

from dataclasses import dataclass

MANAGER_ROLE = "Crew Manager"
MANAGER_GOAL = "Get every task done well by the right coworkers, and check their work."
MANAGER_BACKSTORY = (
    "You are a seasoned manager who gets the best out of a team. You do not do the work "
    "yourself: you delegate each piece to the coworker best suited to it, ask them "
    "questions when something is unclear, judge what they give back, and then write the "
    "task's final answer yourself from their work."
)


@dataclass(frozen=True)
class CrewPrompts:
    task: str = (
        "Current task: {description}\n\n"
        "This is the expected criteria for your final answer: {expected_output}\n"
        "You MUST return the actual complete content as the final answer, not a summary."
    )
    context: str = "\n\nThis is the context you are working with:\n{context}"
    context_entry: str = "## {task}\n{output}"
    retry: str = (
        "\n\nYour previous answer was:\n{previous}\n\n"
        "It was not accepted. Feedback: {feedback}\nGive a new, complete final answer."
    )
    assigned: str = "\n\nThis task is meant for: {agent}."
    delegate_work: str = (
        "Delegate a specific task to one of these coworkers: {coworkers}. Give the coworker, "
        "the task, and ALL the context it needs: the coworker knows nothing about your "
        "task, so share everything you know and explain rather than refer to things."
    )
    ask_question: str = (
        "Ask a specific question to one of these coworkers: {coworkers}. Give the coworker, "
        "the question, and ALL the context it needs to answer: it knows nothing about your "
        "task, so share everything you know and explain rather than refer to things."
    )
    delegated_task: str = "{task}\n\nContext from the coworker who asked:\n{context}"
    unknown_coworker: str = (
        "Error: {coworker!r} is not a coworker you can ask. Choose one of: {coworkers}."
    )
    delegation_limit: str = (
        "Error: this task has used its {limit} delegations. Do not delegate or ask again: "
        "give the final answer yourself from what you have."
    )
    guardrail_agent: str = (
        "Check this answer to a task.\n\nTask: {description}\n\nExpected: {expected_output}"
        "\n\nAnswer:\n{output}\n\nSay whether it is valid, and if not, give feedback saying "
        "what to change."
    )
