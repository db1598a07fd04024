"""What the router adds to a model call: fallback planning, retries, cost, budget, usage rows.

The same calls go to the in-process fake Chat Completions server, once through the
``openai`` adapter alone and once through ``ModelRouter`` (role with a monthly budget,
usage rows written to SQLite by the SQL ledger). Two measures of the added latency:

* paired: inside the router, the adapter call is timed on its own; the router's share of
  that call is the outer time minus the inner time (exact per call, free of server noise);
* unpaired: p50/p99 of the routed calls minus p50/p99 of the bare adapter calls.

Target: p99 added latency under 1 ms.  Run: ``.venv/bin/python bench/router_overhead.py``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentrig.config import LLMSettings
from agentrig.items import as_items
from agentrig.llm.cost import Price
from agentrig.llm.providers.openai_chat import OpenAIChatClient
from agentrig.llm.router import ModelRouter
from agentrig.llm.types import ModelRequest, ModelResponse, ModelStreamEvent
from agentrig.store import Database, SQLUsageLedger, usage_summary
from agentrig.testing.fake_openai_server import FakeOpenAIServer


class TimedClient:
    """Wraps the adapter and keeps how long each call spent inside it."""

    def __init__(self, inner: OpenAIChatClient) -> None:
        self.inner = inner
        self.last = 0.0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            return await self.inner.complete(request)
        finally:
            self.last = time.perf_counter() - started

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        return self.inner.stream(request)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(calls: int, warmup: int) -> dict[str, list[float]]:
    with FakeOpenAIServer() as server, tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        await database.upgrade()
        adapter = OpenAIChatClient("gpt-4o-mini", provider="fake", base_url=server.base_url)
        timed = TimedClient(
            OpenAIChatClient("gpt-4o-mini", provider="fake", base_url=server.base_url)
        )
        settings = LLMSettings(budgets={"default": {"monthly_usd": 1000}})
        router = ModelRouter(settings, ledger=SQLUsageLedger(database))
        router.register("fake/gpt-4o-mini", timed, price=Price("0.15", "0.6"))
        router.add_role("default", ["fake/gpt-4o-mini"])
        routed = router.client("default")
        request = ModelRequest(items=as_items("What is 2 + 2?"))

        results: dict[str, list[float]] = {"adapter": [], "router": [], "paired": []}
        for index in range(warmup + calls):
            started = time.perf_counter()
            await adapter.complete(request)
            bare = time.perf_counter() - started
            started = time.perf_counter()
            await routed.complete(request)
            total = time.perf_counter() - started
            if index >= warmup:
                results["adapter"].append(bare)
                results["router"].append(total)
                results["paired"].append(total - timed.last)
        await router.aclose()
        await adapter.aclose()
        rows = await usage_summary(database)
        await database.aclose()
        assert rows[0].calls == warmup + calls, f"{rows} for {warmup + calls} calls"
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    results = asyncio.run(measure(args.calls, args.warmup))

    ms = 1000
    table = Table(title=f"router overhead, {args.calls} sequential calls to the fake server")
    for column in ("path", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for name in ("adapter", "router"):
        values = results[name]
        table.add_row(
            f"{name} (whole call)",
            f"{percentile(values, 0.5) * ms:.3f}",
            f"{percentile(values, 0.99) * ms:.3f}",
            f"{statistics.fmean(values) * ms:.3f}",
        )
    paired = results["paired"]
    table.add_row(
        "added by router (paired)",
        f"{percentile(paired, 0.5) * ms:.3f}",
        f"{percentile(paired, 0.99) * ms:.3f}",
        f"{statistics.fmean(paired) * ms:.3f}",
    )
    table.add_row(
        "added by router (p(router) - p(adapter))",
        f"{(percentile(results['router'], 0.5) - percentile(results['adapter'], 0.5)) * ms:.3f}",
        f"{(percentile(results['router'], 0.99) - percentile(results['adapter'], 0.99)) * ms:.3f}",
        f"{(statistics.fmean(results['router']) - statistics.fmean(results['adapter'])) * ms:.3f}",
    )
    console = Console()
    console.print(table)
    p99 = percentile(paired, 0.99) * ms
    verdict = "meets" if p99 < 1 else "misses"
    console.print(f"p99 added latency {p99:.3f} ms: {verdict} the target of < 1 ms")
    ratio = percentile(results["router"], 0.5) / percentile(results["adapter"], 0.5)
    console.print(f"routed / bare p50 ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
