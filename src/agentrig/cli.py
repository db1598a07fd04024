"""The ``agentrig`` command line: ask a model, list models, report usage, migrate."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentrig.config import Settings, load_settings
from agentrig.errors import AgentrigError
from agentrig.items import user_message
from agentrig.llm.health import check_provider
from agentrig.llm.router import ModelRouter
from agentrig.llm.types import ModelRequest, ModelSettings, TextDelta
from agentrig.store import Database, SQLUsageLedger, usage_summary

# Help texts are Markdown: `code` shows as code, and <angle brackets> need a code span.
app = typer.Typer(
    help="agentrig: build, run and serve LLM agents.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(help="API keys of the server.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()
errors = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"agentrig {metadata.version('agentrig')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """The options before any command."""


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
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
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
    question: Annotated[str, typer.Argument(metavar="QUESTION", help="What to ask.")],
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
                    f"[green]yes[/] {escape(result.detail)}"
                    if result.ok
                    else f"[red]no[/] {escape(result.detail)}"
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


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    upstream: Annotated[
        str | None, typer.Option(help="Gateway mode: an OpenAI-compatible server's base URL.")
    ] = None,
    agents: Annotated[
        Path | None, typer.Option(help="YAML of agents served as model `agent:<name>`.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option(help="Allow binding beyond 127.0.0.1 without API keys.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Server processes (default 1).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Serve the OpenAI-compatible Responses, Conversations and Chat Completions APIs."""
    import uvicorn

    from agentrig.server.app import create_app
    from agentrig.store.api_keys import ApiKeyStore

    overrides = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "upstream": upstream,
            "agents_file": agents,
            "workers": workers,
        }.items()
        if value is not None
    }

    async def check(settings: Settings) -> Settings:
        from agentrig.cli_knowledge import migrate_on_start

        settings.server = settings.server.model_copy(update=overrides)
        if insecure:
            settings.server.insecure = True
        await migrate_on_start(settings)
        database = await Database.open(settings)
        try:
            keys = await ApiKeyStore(database).count()
        finally:
            await database.aclose()
        if keys == 0 and settings.server.host not in LOOPBACK and not settings.server.insecure:
            raise AgentrigError(
                f"refusing to serve on {settings.server.host} without API keys: create one with "
                "`agentrig keys create --name NAME`, bind to 127.0.0.1, or pass --insecure"
            )
        return settings

    settings = _run(check, config)
    base = f"http://{settings.server.host}:{settings.server.port}"
    typer.echo(
        f"agentrig serving on {base}\n"
        f"  curl {base}/v1/responses -H 'Content-Type: application/json' "
        '-d \'{"model": "default", "input": "Hello!"}\'\n'
        f"  python -c \"from openai import OpenAI; print(OpenAI(base_url='{base}/v1', "
        "api_key='unused').responses.create(model='default', input='Hello!').output_text)\"\n"
        f"  curl {base}/api/v1/chat -H 'Content-Type: application/json' "
        '-d \'{"message": "What does the warranty cover?", "kb": "samples"}\'',
    )
    where = {"host": settings.server.host, "port": settings.server.port}
    if settings.server.workers == 1:
        uvicorn.run(create_app(settings), **where, log_level="warning", access_log=False)
        return
    _serve_workers(settings, where)


def _serve_workers(settings: Settings, where: dict) -> None:
    """uvicorn's worker processes, each building the app from the settings resolved here."""
    import os
    import shutil
    import tempfile

    import uvicorn

    from agentrig.server.app import SETTINGS_VARIABLE
    from agentrig.server.health import MULTIPROCESS_DIRECTORY

    os.environ[SETTINGS_VARIABLE] = settings.model_dump_json()
    own_metrics = not os.environ.get(MULTIPROCESS_DIRECTORY)
    if own_metrics:
        os.environ[MULTIPROCESS_DIRECTORY] = tempfile.mkdtemp(prefix="agentrig-metrics-")
    try:
        uvicorn.run(
            "agentrig.server.app:app_from_environment",
            factory=True,
            workers=settings.server.workers,
            **where,
            log_level="warning",
            access_log=False,
        )
    finally:
        if own_metrics:
            shutil.rmtree(os.environ.pop(MULTIPROCESS_DIRECTORY), ignore_errors=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: a new one).")] = None,
    config: ConfigOption = None,
) -> None:
    """Create an API key and print it (it is shown only once)."""
    from agentrig.store.api_keys import ApiKeyStore

    async def main(settings: Settings) -> None:
        database = await Database.open(settings)
        try:
            key, record = await ApiKeyStore(database).create(name, tenant=tenant)
        finally:
            await database.aclose()
        console.print(
            f"{key}\n(tenant {record.tenant}; stored hashed, shown only this once)",
            markup=False,
            highlight=False,
        )

    _run(main, config)


if __name__ == "__main__":  # pragma: no cover  (python -m: run the app the commands join)
    from agentrig.cli import app as main

    main()
else:
    from agentrig import cli_crews, cli_flows, cli_knowledge  # noqa: F401  (commands join the app)
