"""The router: fallback, retries, cooldown, streams, cost, budgets and usage rows."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from agentrig.config import LLMSettings, ModelConfig
from agentrig.errors import (
    AuthenticationFailed,
    BadRequest,
    BudgetExceeded,
    ConfigError,
    ProviderUnavailable,
    Timeout,
)
from agentrig.items import as_items
from agentrig.llm.budget import BudgetState
from agentrig.llm.cost import Price
from agentrig.llm.ledger import InMemoryLedger
from agentrig.llm.router import ModelRouter
from agentrig.llm.types import (
    Completed,
    ModelRequest,
    ModelSettings,
    ModelStreamEvent,
    TextDelta,
)
from agentrig.store import SQLUsageLedger, usage_summary
from agentrig.testing import ScriptedModel, text
from agentrig.testing.fake_openai_server import Fail, FakeOpenAIServer, Hang, Reply
from agentrig.usage import UsageRecord

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def second_server():
    with FakeOpenAIServer() as server:
        yield server


def settings(servers, roles, *, prices=None, **options) -> LLMSettings:
    prices = prices or {}
    providers = {
        name: {
            "kind": "openai",
            "base_url": server.base_url,
            "models": {
                "m": dict(
                    zip(("input_price", "output_price"), prices.get(name, (1, 2)), strict=True)
                )
            },
        }
        for name, server in servers.items()
    }
    options = {"backoff_initial": 0, "backoff_max": 0, "max_attempts": 3, **options}
    return LLMSettings(providers=providers, roles=roles, **options)


def request(words: str = "hi", **model_settings) -> ModelRequest:
    return ModelRequest(items=as_items(words), settings=ModelSettings(**model_settings))


def outcomes(ledger: InMemoryLedger) -> list[tuple[str, str]]:
    return [(r.provider, r.outcome) for r in ledger.records]


async def test_falls_back_to_the_next_entry(fake_server, second_server):
    fake_server.script(Fail(500), Fail(500), Fail(500))
    second_server.script(Reply(text="from b"))
    ledger = InMemoryLedger()
    router = ModelRouter(
        settings({"a": fake_server, "b": second_server}, {"default": ["a/m", "b/m"]}),
        ledger=ledger,
    )
    response = await router.client().complete(request())
    assert response.text == "from b"
    assert len(fake_server.requests) == 3  # max_attempts
    assert outcomes(ledger) == [("a", "ProviderUnavailable"), ("b", "ok")]


async def test_retries_on_the_same_entry_before_falling_back(fake_server, second_server):
    fake_server.script(Fail(429), Fail(503), Reply(text="third time"))
    ledger = InMemoryLedger()
    router = ModelRouter(
        settings({"a": fake_server, "b": second_server}, {"default": ["a/m", "b/m"]}),
        ledger=ledger,
    )
    assert (await router.client().complete(request())).text == "third time"
    assert len(fake_server.requests) == 3 and second_server.requests == []
    assert outcomes(ledger) == [("a", "ok")]


async def test_retry_after_is_waited_for(fake_server):
    fake_server.script(Fail(429, headers={"retry-after": "0.3"}), Reply(text="ok"))
    router = ModelRouter(settings({"a": fake_server}, {"default": ["a/m"]}, backoff_max=5))
    started = time.monotonic()
    await router.client().complete(request())
    assert time.monotonic() - started >= 0.3


async def test_bad_request_is_not_retried_nor_passed_on(fake_server, second_server):
    fake_server.script(Fail(400, "unknown parameter"))
    router = ModelRouter(
        settings({"a": fake_server, "b": second_server}, {"default": ["a/m", "b/m"]})
    )
    with pytest.raises(BadRequest, match="a/m"):
        await router.client().complete(request())
    assert len(fake_server.requests) == 1 and second_server.requests == []


async def test_context_too_long_falls_back_to_a_bigger_model(fake_server, second_server):
    fake_server.script(Fail(400, "This model's maximum context length is 8k"))
    router = ModelRouter(
        settings({"a": fake_server, "b": second_server}, {"default": ["a/m", "b/m"]})
    )
    assert (await router.client().complete(request())).text == "ok"
    assert len(fake_server.requests) == 1 and len(second_server.requests) == 1


async def test_attempt_time_limit(fake_server, second_server):
    fake_server.script(Hang(1))
    router = ModelRouter(
        settings(
            {"a": fake_server, "b": second_server},
            {"default": ["a/m", "b/m"]},
            attempt_timeout=0.2,
            max_attempts=1,
        )
    )
    assert (await router.client().complete(request())).text == "ok"
    router_a = ModelRouter(
        settings({"a": fake_server}, {"default": ["a/m"]}, attempt_timeout=0.2, max_attempts=1)
    )
    fake_server.script(Hang(1))
    with pytest.raises(Timeout, match=r"a/m: no answer within 0\.2 s"):
        await router_a.client().complete(request())


async def test_cooldown_takes_a_failing_provider_out_of_rotation(fake_server, second_server):
    router = ModelRouter(
        settings(
            {"a": fake_server, "b": second_server},
            {"default": ["a/m", "b/m"]},
            max_attempts=1,
            cooldown_seconds=0.5,
        )
    )
    client = router.client()
    fake_server.script(Fail(500))
    await client.complete(request())
    assert router.is_cooling("a") and not router.is_cooling("b")
    await client.complete(request())  # a is cooling: b goes first
    assert len(fake_server.requests) == 1 and len(second_server.requests) == 2
    second_server.script(Fail(500))  # b fails: a is still tried as a last resort
    assert (await client.complete(request())).text == "ok"
    assert len(fake_server.requests) == 2
    await asyncio.sleep(0.55)
    assert not router.is_cooling("a")
    await client.complete(request())
    assert len(fake_server.requests) == 3


async def test_stream_falls_back_before_its_first_event(fake_server, second_server):
    fake_server.script(Fail(500), Fail(500), Fail(500))
    second_server.script(Reply(text="streamed from b"))
    router = ModelRouter(
        settings({"a": fake_server, "b": second_server}, {"default": ["a/m", "b/m"]})
    )
    events = [e async for e in router.client().stream(request())]
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == "streamed from b"
    assert isinstance(events[-1], Completed)


class BreaksMidStream:
    """Streams one delta, then fails."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request):  # pragma: no cover - not used
        raise NotImplementedError

    async def stream(self, request) -> AsyncIterator[ModelStreamEvent]:
        self.calls += 1
        yield TextDelta(item_id="msg_1", delta="partial ")
        raise ProviderUnavailable("connection dropped", provider="broken", model="m")


async def test_stream_does_not_fall_back_once_output_was_seen():
    broken, backup = BreaksMidStream(), ScriptedModel([text("backup answer")])
    ledger = InMemoryLedger()
    router = ModelRouter(ledger=ledger)
    router.register("broken/m", broken)
    router.register("backup/m", backup)
    router.add_role("default", ["broken/m", "backup/m"])
    seen = []
    with pytest.raises(ProviderUnavailable, match="connection dropped"):
        async for event in router.client().stream(request()):
            seen.append(event)
    assert [e.delta for e in seen] == ["partial "]
    assert broken.calls == 1 and backup.requests == []
    assert outcomes(ledger) == [("broken", "ProviderUnavailable")]


async def test_abandoned_stream_is_recorded_as_cancelled():
    ledger = InMemoryLedger()
    router = ModelRouter(ledger=ledger)
    router.register("s/m", ScriptedModel([text("many words in this answer")]))
    router.add_role("default", ["s/m"])
    stream = router.client().stream(request())
    await anext(stream)
    await stream.aclose()
    assert outcomes(ledger) == [("s", "cancelled")]


async def test_cost_in_micro_dollars_is_recorded_for_calls_and_streams(fake_server):
    # 1000 input tokens (400 cached), 300 output, at $1.5 / $0.5 cached / $2.25 per MTok:
    # 600 * 1.5 + 400 * 0.5 + 300 * 2.25 = 1775 micro-dollars
    reply = Reply(text="x", prompt_tokens=1000, cached_tokens=400, completion_tokens=300)
    fake_server.script(reply, reply)
    llm = settings({"a": fake_server}, {"default": ["a/m"]})
    llm.providers["a"].models["m"] = ModelConfig(
        input_price="1.5", output_price="2.25", cached_input_price="0.5"
    )
    ledger = InMemoryLedger()
    router = ModelRouter(llm, ledger=ledger)
    response = await router.client().complete(request())
    assert response.cost_micros == 1775
    events = [e async for e in router.client().stream(request())]
    assert events[-1].response.cost_micros == 1775
    assert [r.cost_micros for r in ledger.records] == [1775, 1775]
    assert [(r.input_tokens, r.cached_tokens, r.output_tokens) for r in ledger.records] == [
        (1000, 400, 300)
    ] * 2
    assert all(r.latency_ms > 0 and r.role == "default" for r in ledger.records)


def budget_router(ledger, *, monthly=None, weekly=None, chain=("dear/m", "cheap/m")):
    llm = LLMSettings(budgets={"default": {"monthly_usd": monthly, "weekly_usd": weekly}})
    router = ModelRouter(llm, ledger=ledger, now=lambda: NOW)
    router.register("dear/m", ScriptedModel([text("dear")] * 5, name="dear"), price=Price(10, 30))
    router.register("cheap/m", ScriptedModel([text("cheap")] * 5, name="cheap"), price=Price(1, 2))
    router.register("free/m", ScriptedModel([text("free")] * 5, name="free"))
    router.add_role("default", list(chain))
    return router


def spent(ledger: InMemoryLedger, micros: int, at: datetime = NOW) -> None:
    ledger.records.append(UsageRecord(at, "default", "dear", "m", 0, 0, 0, micros, 1.0, "ok"))


@pytest.mark.parametrize(
    ("spent_micros", "state", "answer"),
    [
        (0, BudgetState.NORMAL, "dear"),
        (790_000, BudgetState.NORMAL, "dear"),
        (800_000, BudgetState.PREFER_CHEAP, "cheap"),
        (999_999, BudgetState.PREFER_CHEAP, "cheap"),
    ],
)
async def test_budget_states_order_the_chain(spent_micros, state, answer):
    ledger = InMemoryLedger()
    spent(ledger, spent_micros)
    router = budget_router(ledger, monthly=1)
    assert await router.budget.state("default") is state
    assert (await router.client().complete(request())).text == answer


async def test_spent_budget_uses_only_zero_cost_entries():
    ledger = InMemoryLedger()
    spent(ledger, 1_000_000)
    router = budget_router(ledger, monthly=1, chain=("dear/m", "cheap/m", "free/m"))
    assert await router.budget.state("default") is BudgetState.EXHAUSTED
    assert (await router.client().complete(request())).text == "free"


async def test_spent_budget_without_a_free_entry_raises():
    ledger = InMemoryLedger()
    spent(ledger, 1_200_000)
    router = budget_router(ledger, monthly=1)
    with pytest.raises(BudgetExceeded, match=r"'default'.*monthly spend \$1.200000 of \$1.000000"):
        await router.client().complete(request())
    with pytest.raises(BudgetExceeded):
        async for _ in router.client().stream(request()):
            pass


async def test_weekly_and_monthly_periods_count_separately():
    ledger = InMemoryLedger()
    spent(ledger, 600_000, at=NOW - timedelta(days=7))  # last week, this month
    router = budget_router(ledger, monthly=1, weekly=0.5)
    assert await router.budget.state("default") is BudgetState.NORMAL
    spent(ledger, 500_000, at=NOW - timedelta(days=1))  # this week: weekly spent
    router = budget_router(ledger, monthly=2, weekly=0.5)
    assert await router.budget.state("default") is BudgetState.EXHAUSTED
    with pytest.raises(BudgetExceeded, match="weekly"):
        await router.client().complete(request())
    spent(ledger, 5_000_000, at=NOW - timedelta(days=30))  # last month: ignored
    router = budget_router(ledger, monthly="1.3", weekly=1)  # 1.1 of 1.3 this month
    assert await router.budget.state("default") is BudgetState.PREFER_CHEAP


async def test_concurrent_calls_never_overspend_by_more_than_one_call(fake_server):
    # each call: 10 input tokens at $5/MTok + 5 output tokens at $10/MTok = 100 micro-dollars
    fake_server.default = Reply(text="ok", prompt_tokens=10, completion_tokens=5, chunk_delay=0)
    llm = settings(
        {"a": fake_server},
        {"default": ["a/m"]},
        prices={"a": (5, 10)},
        budgets={"default": {"monthly_usd": "0.001"}},  # 1000 micro-dollars
    )
    ledger = InMemoryLedger()
    router = ModelRouter(llm, ledger=ledger)
    results = await asyncio.gather(
        *(router.client().complete(request(max_output_tokens=5)) for _ in range(50)),
        return_exceptions=True,
    )
    answered = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(answered) + len(refused) == 50
    total = sum(r.cost_micros for r in ledger.records)
    assert total <= 1000 + 100
    assert len(answered) >= 9  # the budget is used, not refused early


async def test_two_hundred_concurrent_calls_make_two_hundred_rows(fake_server, database):
    llm = settings({"a": fake_server}, {"default": ["a/m"]}, prices={"a": (3, 7)})
    router = ModelRouter(llm, ledger=SQLUsageLedger(database))
    responses = await asyncio.gather(*(router.client().complete(request()) for _ in range(200)))
    assert all(r.text == "ok" for r in responses)
    await router.aclose()
    [row] = await usage_summary(database)
    assert (row.role, row.provider, row.model, row.calls, row.failures) == (
        "default",
        "a",
        "m",
        200,
        0,
    )
    assert row.cost_micros == 200 * (10 * 3 + 5 * 7)
    assert (row.input_tokens, row.output_tokens) == (2000, 1000)


async def test_sql_ledger_counts_rows_not_yet_written(database):
    ledger = SQLUsageLedger(database, flush_interval=60)
    await ledger.record(UsageRecord(NOW, "r", "p", "m", 1, 1, 0, 42, 1.0, "ok"))
    assert await ledger.spent_micros("r", NOW - timedelta(days=1)) == 42
    await ledger.flush()
    await ledger.record(UsageRecord(NOW, "r", "p", "m", 1, 1, 0, 8, 1.0, "ok"))
    assert await ledger.spent_micros("r", NOW - timedelta(days=1)) == 50
    assert await ledger.spent_micros("r", NOW + timedelta(seconds=1)) == 0
    assert await ledger.spent_micros("other", NOW - timedelta(days=1)) == 0
    await ledger.aclose()
    assert [row.calls for row in await usage_summary(database)] == [2]


async def test_unknown_role_or_provider_is_a_clear_error():
    router = ModelRouter()
    with pytest.raises(ConfigError, match=r"unknown role or model 'nope'.*'default'"):
        router.client("nope")
    with pytest.raises(ConfigError, match="unknown provider 'zz'"):
        router.client("zz/model")


async def test_embedder_batches_in_order_and_falls_back(fake_server, second_server):
    llm = settings({"a": fake_server, "b": second_server}, {"embed": ["a/m", "b/m"]})
    llm.providers["a"].options["max_batch_size"] = 2
    llm.providers["b"].options["max_batch_size"] = 2
    ledger = InMemoryLedger()
    router = ModelRouter(llm, ledger=ledger)
    texts = ["one", "two", "three", "four", "five"]
    vectors = await router.embedder().embed(texts)
    assert len(vectors) == 5 and len(fake_server.requests) == 3
    assert [r["input"] for r in fake_server.requests] == [
        ["one", "two"],
        ["three", "four"],
        ["five"],
    ]
    again = await router.embedder().embed(["three"])
    assert again[0] == vectors[2]
    fake_server.script(*[Fail(500)] * 3)
    assert await router.embedder().embed(texts) == vectors  # b's fake vectors are the same
    assert {r.kind for r in ledger.records} == {"embed"}
    assert ("a", "ProviderUnavailable") in outcomes(ledger)


async def test_sql_ledger_closing_mid_write_loses_and_duplicates_nothing(database):
    ledger = SQLUsageLedger(database, flush_interval=0.001, batch_size=7)
    for index in range(3000):
        await ledger.record(UsageRecord(NOW, "r", "p", "m", 1, 1, 0, 1, 1.0, "ok"))
        if index % 500 == 0:
            await asyncio.sleep(0.002)  # let the writer start a batch
    await ledger.aclose()
    [row] = await usage_summary(database)
    assert row.calls == 3000 and row.cost_micros == 3000


async def test_missing_api_key_fails_over_with_the_variable_named(fake_server, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    llm = settings({"a": fake_server}, {"default": ["a/m"]})
    llm.providers["keyless"] = llm.providers["a"].model_copy(
        update={"api_key_env": "NO_SUCH_KEY_VAR"}
    )
    ledger = InMemoryLedger()
    router = ModelRouter(llm, ledger=ledger)
    router.add_role("default", ["keyless/m", "a/m"])
    assert (await router.client().complete(request())).text == "ok"
    assert outcomes(ledger) == [("keyless", "AuthenticationFailed"), ("a", "ok")]
    with pytest.raises(AuthenticationFailed, match=r"NO_SUCH_KEY_VAR .* is not set"):
        await router.client("keyless/m").complete(request())
