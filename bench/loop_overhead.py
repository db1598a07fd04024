"""Per-turn overhead of an agent loop: agentrig against openai-agents, pydantic-ai, langgraph.

The workload is the same for every contender: one agent, one sync tool ``add(a, b)`` and a
zero-latency scripted model that calls ``add(1, 2)`` on each of N turns, then answers "done".
A turn is one model call (N + 1 per run); the figure is the run's wall time / (N + 1), in µs.
Replies are built before the timer, with token usage set (nothing is estimated); tracing and
telemetry are off; only the run is timed. Contenders: agentrig (``Runner.run``, a
``ScriptedModel``); agentrig+thread (the same with the tool in a worker thread, as the peers
run sync tools); openai-agents (a ``Model`` subclass returning canned ``ModelResponse``s);
pydantic-ai (an async ``FunctionModel``); langgraph (``create_react_agent`` and a chat model
returning canned ``ChatResult``s), also with an ``InMemorySaver`` checkpointer; plain (a
hand-written loop over a list of message dicts, the floor).

Each contender runs in its own process (this script with ``--contender``): one warm-up run,
then timed runs, printed as JSON. The parent runs the contenders round-robin (the first one
rotates each round) and reports per contender the median over rounds of each process's median,
the min and max over all timed runs, and the ratio to agentrig. Targets: at N=100 agentrig's
median is at most a tenth of the fastest framework's (not the plain loop's); at N=1000 it is
within 1.5x of its N=10 median.

Run: ``.venv/bin/python bench/loop_overhead.py [--turns 10 100 1000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

Run = Callable[[], Awaitable[str]]
Prepare = Callable[[int], Run]

INSTRUCTIONS = "Add numbers."
PROMPT = "go"
WARMUP_TURNS = 20
FRAMEWORKS = ("openai-agents", "pydantic-ai", "langgraph", "langgraph+saver")
CONTENDERS = ("agentrig", "agentrig+thread", *FRAMEWORKS, "plain")
PACKAGES = "agentrig openai openai-agents pydantic-ai-slim langgraph langgraph-prebuilt"
PACKAGES += " langgraph-checkpoint langchain-core"
QUIET = {"OPENAI_AGENTS_DISABLE_TRACING": "1", "OTEL_SDK_DISABLED": "true"}  # no tracing
QUIET |= {"LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}


class Tally:
    calls = 0


def add(a: int, b: int) -> int:
    """Add two numbers."""
    Tally.calls += 1
    return a + b


# --- contenders: each setup imports its framework and returns prepare(turns) -> run ---------


def setup_agentrig(thread: bool = False) -> Prepare:
    from agentrig import Agent, Runner, tool
    from agentrig.testing import ScriptedModel, text, tool_call

    add_tool = tool(thread=True)(add) if thread else tool(add)

    def prepare(turns: int) -> Run:
        model = ScriptedModel([tool_call("add", a=1, b=2) for _ in range(turns)] + [text("done")])
        agent = Agent(name="bench", instructions=INSTRUCTIONS, model=model, tools=[add_tool])

        async def run() -> str:
            return (await Runner.run(agent, PROMPT, max_turns=turns + 1)).final_output

        return run

    return prepare


def responses_items(turns: int) -> list[Any]:
    """What the Responses API would return: N ``add`` calls, then the message "done"."""
    from openai.types import responses as oai

    call = {"type": "function_call", "name": "add", "arguments": '{"a": 1, "b": 2}'}
    items = [
        oai.ResponseFunctionToolCall(id=f"f{i}", call_id=f"c{i}", **call) for i in range(turns)
    ]
    text = oai.ResponseOutputText(type="output_text", text="done", annotations=[])
    message = {"type": "message", "id": "m", "role": "assistant", "status": "completed"}
    return [*items, oai.ResponseOutputMessage(content=[text], **message)]


def setup_openai_agents() -> Prepare:
    import agents  # openai-agents

    agents.set_tracing_disabled(True)
    add_tool = agents.function_tool(add)

    class CannedModel(agents.Model):
        def __init__(self, replies: list[agents.ModelResponse]) -> None:
            self.replies = iter(replies)

        async def get_response(self, *args: Any, **kwargs: Any) -> agents.ModelResponse:
            return next(self.replies)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    def reply(item: Any) -> agents.ModelResponse:
        usage = agents.Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15)
        return agents.ModelResponse(output=[item], usage=usage, response_id=None)

    def prepare(turns: int) -> Run:
        model = CannedModel([reply(item) for item in responses_items(turns)])
        agent = agents.Agent(name="bench", instructions=INSTRUCTIONS, model=model, tools=[add_tool])

        async def run() -> str:
            return (await agents.Runner.run(agent, PROMPT, max_turns=turns + 1)).final_output

        return run

    return prepare


def setup_pydantic_ai() -> Prepare:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.usage import RequestUsage, UsageLimits

    def reply(part: Any) -> ModelResponse:
        return ModelResponse(parts=[part], usage=RequestUsage(input_tokens=10, output_tokens=5))

    def prepare(turns: int) -> Run:
        calls = [ToolCallPart("add", {"a": 1, "b": 2}, tool_call_id=f"c{i}") for i in range(turns)]
        replies = iter([*map(reply, calls), reply(TextPart("done"))])

        async def respond(messages: Any, info: Any) -> ModelResponse:
            return next(replies)

        agent = Agent(FunctionModel(respond), name="bench", instructions=INSTRUCTIONS, tools=[add])
        limits = UsageLimits(request_limit=turns + 1)

        async def run() -> str:
            return (await agent.run(PROMPT, usage_limits=limits)).output

        return run

    return prepare


def setup_langgraph(saver: bool) -> Prepare:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.prebuilt import create_react_agent

    add_tool = tool(add)
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}

    class CannedChatModel(BaseChatModel):
        replies: Any
        position: int = 0

        @property
        def _llm_type(self) -> str:
            return "canned"

        def bind_tools(self, tools: Any, **kwargs: Any) -> CannedChatModel:
            return self

        def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
            raise NotImplementedError("async only")

        async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
            self.position += 1
            return self.replies[self.position - 1]

    def reply(**fields: Any) -> ChatResult:
        message = AIMessage(usage_metadata=usage, **fields)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def prepare(turns: int) -> Run:
        call = {"name": "add", "args": {"a": 1, "b": 2}, "type": "tool_call"}
        replies = [reply(content="", tool_calls=[{**call, "id": f"c{i}"}]) for i in range(turns)]
        model = CannedChatModel(replies=[*replies, reply(content="done")])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # create_react_agent is deprecated in langgraph 1.x
            memory = InMemorySaver() if saver else None
            graph = create_react_agent(model, [add_tool], prompt=INSTRUCTIONS, checkpointer=memory)
        config = {"recursion_limit": 2 * turns + 10, "configurable": {"thread_id": "bench"}}

        async def run() -> str:
            state = await graph.ainvoke({"messages": [("user", PROMPT)]}, config)
            return state["messages"][-1].content

        return run

    return prepare


def setup_plain() -> Prepare:
    tools = {"add": add}

    def prepare(turns: int) -> Run:
        call = {"name": "add", "arguments": '{"a": 1, "b": 2}'}
        asks = [{"role": "assistant", "tool_calls": [call | {"id": f"c{i}"}]} for i in range(turns)]
        replies = iter([*asks, {"role": "assistant", "content": "done"}])

        async def model(messages: list[dict[str, Any]]) -> dict[str, Any]:
            return next(replies)

        async def run() -> str:
            messages = [{"role": "system", "content": INSTRUCTIONS}]
            messages.append({"role": "user", "content": PROMPT})
            for _ in range(turns + 1):
                message = await model(messages)
                messages.append(message)
                if not message.get("tool_calls"):
                    return message["content"]
                for call in message["tool_calls"]:
                    output = tools[call["name"]](**json.loads(call["arguments"]))
                    messages.append({"role": "tool", "id": call["id"], "content": str(output)})
            raise RuntimeError("max turns exceeded")

        return run

    return prepare


SETUPS: dict[str, Callable[[], Prepare]] = {
    "agentrig": setup_agentrig,
    "agentrig+thread": lambda: setup_agentrig(thread=True),
    "openai-agents": setup_openai_agents,
    "pydantic-ai": setup_pydantic_ai,
    "langgraph": lambda: setup_langgraph(saver=False),
    "langgraph+saver": lambda: setup_langgraph(saver=True),
    "plain": setup_plain,
}


# --- child process: warm up, time R runs, print JSON ---------------------------------------


async def timed(run: Run, turns: int) -> float:
    Tally.calls = 0
    gc.collect()
    started = time.perf_counter()
    output = await run()
    elapsed = time.perf_counter() - started
    if output != "done" or Tally.calls != turns:
        raise AssertionError(f"output {output!r} after {Tally.calls} tool calls, expected {turns}")
    return elapsed * 1e6 / (turns + 1)


async def measure(prepare: Prepare, turns: int, repeat: int, budget: float) -> list[float]:
    """One warm-up run, then up to ``repeat`` timed runs, fewer once they took ``budget`` s."""
    await timed(prepare(min(turns, WARMUP_TURNS)), min(turns, WARMUP_TURNS))
    samples: list[float] = []
    while len(samples) < repeat and sum(samples) * (turns + 1) < budget * 1e6:
        samples.append(await timed(prepare(turns), turns))
    return samples


def child(args: argparse.Namespace) -> None:
    try:
        prepare = SETUPS[args.contender]()
    except ImportError as exc:
        print(json.dumps({"error": f"not available ({exc})"}))
        return
    work = measure(prepare, args.turns[0], args.repeat, args.budget)
    print(json.dumps({"samples": asyncio.run(work)}))


# --- parent process: round-robin over contenders, then report -------------------------------

Rounds = dict[tuple[str, int], list[list[float]]]


def spawn(name: str, turns: int, args: argparse.Namespace) -> list[float] | str:
    """Run one contender process: its samples (µs per turn), or why there are none."""
    command = [sys.executable, str(Path(__file__).resolve()), "--contender", name]
    command += ["--turns", str(turns), "--repeat", str(args.repeat), "--budget", str(args.budget)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return f"timeout after {args.timeout:g} s"
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["no output"])[-1]
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    return payload.get("samples") or payload["error"]


def collect(args: argparse.Namespace, progress: Console) -> tuple[Rounds, dict[str, str]]:
    """Each round's samples per (contender, N); a contender that fails once is dropped."""
    rounds: Rounds = {}
    problems: dict[str, str] = {}
    for turns in args.turns:
        for index in range(args.rounds):
            shift = index % len(args.contenders)
            for name in args.contenders[shift:] + args.contenders[:shift]:
                if name in problems:
                    continue
                outcome = spawn(name, turns, args)
                if isinstance(outcome, str):
                    problems[name] = f"N={turns}: {outcome}"
                else:
                    rounds.setdefault((name, turns), []).append(outcome)
                    outcome = f"{statistics.median(outcome):,.1f} µs/turn"
                progress.print(f"N={turns} round {index + 1} {name}: {outcome}", highlight=False)
    return rounds, problems


def medians(rounds: Rounds) -> dict[tuple[str, int], float]:
    return {key: statistics.median(map(statistics.median, runs)) for key, runs in rounds.items()}


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def table(args: argparse.Namespace, rounds: Rounds) -> Table:
    middle = medians(rounds)
    result = Table(title="agent loop overhead, µs per turn (turn = one model call)")
    for column in ("N", "contender", "median", "min", "max", "vs agentrig", "rounds", "runs"):
        result.add_column(column, justify="left" if column == "contender" else "right")
    for turns in args.turns:
        base = middle.get(("agentrig", turns))
        for name in args.contenders:
            runs = rounds.get((name, turns))
            if not runs:
                result.add_row(str(turns), name, "n/a")  # why: printed under the table
                continue
            every = [sample for run in runs for sample in run]
            value = middle[name, turns]
            ratio = f"{value / base:.2f}x" if base else "-"
            low, high, counts = fmt(min(every)), fmt(max(every)), (str(len(runs)), str(len(every)))
            result.add_row(str(turns), name, fmt(value), low, high, ratio, *counts)
        result.add_section()
    return result


def targets(rounds: Rounds) -> list[str]:
    middle = medians(rounds)
    ours = {turns: middle.get(("agentrig", turns)) for turns in (10, 100, 1000)}
    peers = [(middle[name, 100], name) for name in FRAMEWORKS if (name, 100) in middle]
    fastest, which = min(peers, default=(None, "none"))
    return [
        target(f"(1) agentrig / fastest framework ({which}) at N=100", ours[100], fastest, 0.1),
        target("(2) agentrig at N=1000 / agentrig at N=10", ours[1000], ours[10], 1.5),
    ]


def target(label: str, value: float | None, reference: float | None, limit: float) -> str:
    if not value or not reference:
        return f"{label}: not measured, SKIP"
    ratio = value / reference
    verdict = "[green]PASS[/green]" if ratio <= limit else "[red]FAIL[/red]"
    numbers = f"{fmt(value)} / {fmt(reference)} µs per turn = {ratio:.3f}"
    return f"{label}: {numbers} (target <= {limit:g}): {verdict}"


def header(args: argparse.Namespace) -> list[str]:
    installed = {dist.name: dist.version for dist in metadata.distributions()}
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    return [
        f"python {platform.python_version()} on {machine} at start",
        "versions: " + ", ".join(f"{name} {installed.get(name, '-')}" for name in PACKAGES.split()),
        f"N: {', '.join(map(str, args.turns))}; rounds: {args.rounds}; per process: 1 warm-up run"
        f" of min(N, {WARMUP_TURNS}) turns, then up to {args.repeat} timed runs, fewer once they "
        f"took {args.budget:g} s; timeout {args.timeout:g} s per process",
    ]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=50, help="most timed runs per process")
    parser.add_argument("--budget", type=float, default=5, help="seconds of timed runs per process")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per process")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.turns = sorted(set(args.turns))
    return args


def main() -> None:
    args = parse()
    os.environ.update(QUIET)  # before any framework is imported, and inherited by the children
    if args.contender:
        child(args)
        return
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    for line in header(args):
        console.print(line, highlight=False)
    rounds, problems = collect(args, Console(stderr=True))
    console.print(table(args, rounds))
    for name, problem in problems.items():
        console.print(f"{name} stopped at {problem}", highlight=False)
    for line in targets(rounds):
        console.print(line, highlight=False)


if __name__ == "__main__":
    main()
