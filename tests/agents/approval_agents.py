"""Agents shared by the approval tests and the subprocess that resumes a saved run."""

from agentrig import Agent, tool
from agentrig.testing import ScriptedModel, text, tool_call


@tool(needs_approval=True)
def refund(order: str, amount: float) -> str:
    """Refund an order."""
    return f"refunded {amount} on {order}"


@tool
def lookup(order: str) -> str:
    """Look an order up."""
    return f"order {order}: paid 30.0"


def cashier(*turns) -> Agent:
    return Agent(name="cashier", model=ScriptedModel(list(turns)), tools=[refund, lookup])


def first_half() -> Agent:
    """Looks the order up and asks for a refund (which needs approval)."""
    return cashier([tool_call("lookup", order="A1"), tool_call("refund", order="A1", amount=30.0)])


def second_half() -> Agent:
    """After the decision: the final answer."""
    return cashier(text("Done."))
