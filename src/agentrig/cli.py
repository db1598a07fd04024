"""The ``agentrig`` command line: ask a model, list models, report usage, migrate."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from agentrig.config import Settings, load_settings
from agentrig.errors import AgentrigError
from agentrig.items import user_message
from agentrig.llm.health import check_provider
from agentrig.llm.router import ModelRouter
from agentrig.llm.types import ModelRequest, ModelSettings, TextDelta
from agentrig.store import Database, SQLUsageLedger, usage_summary

app = typer.Typer(help="agentrig: build, run and serve LLM agents.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
errors = Console(stderr=True)

T = TypeVar("T")
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="agentrig.toml to read (else $AGENTRIG_CONFIG)."),
]


def _run(make: Callable[[Settings], Awaitable[T]], config: Path | None) -> T:
    """Load settings, run the coroutine, and turn agentrig errors into a clear exit."""
    try:
        settings = load_settings(config)
        logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
        return asyncio.run(make(settings))
    except AgentrigError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


@asynccontextmanager
async def open_router(settings: Settings) -> AsyncIterator[tuple[ModelRouter, Database]]:
    """A router whose usage rows go to the configured database."""
    database = await Database.open(settings)
    router = ModelRouter.from_settings(settings, ledger=SQLUsageLedger(database))
    try:
        yield router, database
    finally:
        await router.aclose()
        await database.aclose()


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="What to ask.")],
    role: Annotated[str, typer.Option(help="Router role or provider/model.")] = "default",
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Print tokens as they come.")
    ] = False,
    instructions: Annotated[str | None, typer.Option(help="System instructions.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Most output tokens.")] = 256,
    config: ConfigOption = None,
) -> None:
    """Answer QUESTION through the router (the local CPU model by default)."""

    async def main(settings: Settings) -> None:
        request = ModelRequest(
            items=[user_message(question)],
            instructions=instructions,
            settings=ModelSettings(max_output_tokens=max_tokens),
        )
        async with open_router(settings) as (router, _):
            client = router.client(role)
            if not stream:
                response = await client.complete(request)
                console.print(response.text, markup=False, highlight=False)
                return
            async for event in client.stream(request):
                if isinstance(event, TextDelta):
                    sys.stdout.write(event.delta)
                    sys.stdout.flush()
            sys.stdout.write("\n")

    _run(main, config)


@app.command()
def models(
    check: Annotated[bool, typer.Option("--check/--no-check", help="Ask each provider.")] = True,
    config: ConfigOption = None,
) -> None:
    """List providers, roles and their fallback chains, and whether each provider answers."""

    async def main(settings: Settings) -> None:
        llm = settings.llm
        providers = Table(title="providers")
        for column in ("provider", "kind", "base_url", "models", "answers"):
            providers.add_column(column)
        names = list(llm.providers)
        health = (
            await asyncio.gather(*(check_provider(n, llm.providers[n]) for n in names))
            if check
            else []
        )
        for index, name in enumerate(names):
            provider = llm.providers[name]
            status = "-"
            if check:
                result = health[index]
                status = (
                    f"[green]yes[/] {result.detail}" if result.ok else f"[red]no[/] {result.detail}"
                )
            providers.add_row(
                name, provider.kind, provider.base_url or "", ", ".join(provider.models), status
            )
        roles = Table(title="roles")
        for column in ("role", "fallback chain", "budget"):
            roles.add_column(column)
        for role, chain in llm.roles.items():
            budget = llm.budgets.get(role)
            limits = []
            if budget and budget.monthly_usd is not None:
                limits.append(f"${budget.monthly_usd}/month")
            if budget and budget.weekly_usd is not None:
                limits.append(f"${budget.weekly_usd}/week")
            roles.add_row(role, " -> ".join(chain), ", ".join(limits) or "-")
        console.print(providers)
        console.print(roles)

    _run(main, config)


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``7d``, ``12h``, ``30m`` ago, or an ISO date/time (UTC when no zone is given)."""
    if value is None:
        return None
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"(\d+)([dhm])", value.strip())
    if match:
        amount, unit = int(match[1]), match[2]
        return now - timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: expected a duration such as 7d, 12h, 30m or a date such as 2026-11-01"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def usage(
    since: Annotated[str | None, typer.Option(help="7d, 12h, 30m, or an ISO date.")] = None,
    config: ConfigOption = None,
) -> None:
    """Print calls, tokens and cost per role and model."""
    start = parse_since(since)

    async def main(settings: Settings) -> None:
        database = await Database.open(settings)
        try:
            rows = await usage_summary(database, start)
        finally:
            await database.aclose()
        table = Table(title=f"usage since {start:%Y-%m-%d %H:%M} UTC" if start else "usage")
        for column in (
            "role",
            "provider/model",
            "calls",
            "failed",
            "input tok",
            "output tok",
            "cost $",
        ):
            table.add_column(column, justify="right" if column[0] in "cfio" else "left")
        for row in rows:
            table.add_row(
                row.role,
                f"{row.provider}/{row.model}",
                str(row.calls),
                str(row.failures),
                str(row.input_tokens),
                str(row.output_tokens),
                f"{row.cost_micros / 1e6:.6f}",
            )
        total = sum(row.cost_micros for row in rows)
        table.add_section()
        table.add_row(
            "total", "", str(sum(r.calls for r in rows)), "", "", "", f"{total / 1e6:.6f}"
        )
        console.print(table)

    _run(main, config)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Migrate the database to the newest schema."""

    async def main(settings: Settings) -> None:
        database = await Database.open(settings)
        revision = await database.current_revision()
        await database.aclose()
        console.print(f"database at revision {revision}")

    _run(main, config)


if __name__ == "__main__":  # pragma: no cover
    app()
