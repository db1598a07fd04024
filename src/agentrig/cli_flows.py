"""``agentrig flow``: list and show the flows of the crews folder (and the ready-made ones),
run one with live progress, resume a stored run after people decide, list stored runs.

Runs go to the configured database at every step boundary, so ``resume RUN_ID`` works in
a later invocation: after a pause, after a failure, or after the process died.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from agentrig.cli import ConfigOption, _run, app, console, errors
from agentrig.cli_crews import CrewsOption, _folder, _inputs, follow
from agentrig.config import Settings
from agentrig.crews import catalog as crew_catalog
from agentrig.crews.catalog import CrewCatalog
from agentrig.errors import AgentrigError, ConfigError
from agentrig.flows import (
    FlowInterruption,
    FlowResult,
    FlowRun,
    NotResumable,
)
from agentrig.flows.catalog import FlowCatalog
from agentrig.flows.progress import describe, seconds, short
from agentrig.llm.router import ModelRouter
from agentrig.store import Database, SQLUsageLedger
from agentrig.store.flow_runs import FlowRunStore
from agentrig.store.shared import close_shared_databases, shared_database

flow_app = typer.Typer(
    help="Flows: state machines of crews, agents, functions and people.", no_args_is_help=True
)
app.add_typer(flow_app, name="flow")

STATUSES = ("running", "paused", "completed", "failed")
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")]


def _catalog(settings: Settings, crews: Path | None, router: Any = None) -> FlowCatalog:
    url = settings.effective_database_url
    folder = CrewCatalog(_folder(settings, crews), router=router, examples=True)
    return FlowCatalog(folder, database_url=url, examples=True)


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """The configured database, shared with the flows' own writes, disposed at the end."""
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield await shared_database(url)
    finally:
        await close_shared_databases()


@asynccontextmanager
async def _open(
    settings: Settings, crews: Path | None
) -> AsyncIterator[tuple[FlowCatalog, FlowRunStore]]:
    """The flows (their agents' usage recorded) and the run store, on one database."""
    async with _database(settings) as database:
        router = ModelRouter.from_settings(settings, ledger=SQLUsageLedger(database))
        try:
            yield _catalog(settings, crews, router), FlowRunStore(database)
        finally:
            await router.aclose()


# --- the closing report -----------------------------------------------------------------


def _resume_command(run_id: str, options: list[str], decision: list[str]) -> str:
    return shlex.join(["agentrig", "flow", "resume", run_id, *options, *decision])


def _decisions(interruption: FlowInterruption) -> list[list[str]]:
    """What a person may type to decide on ``interruption`` (placeholders in capitals)."""
    if interruption.kind == "human":
        return [["--reply", "TEXT"]]
    feedback = "FEEDBACK" if interruption.kind == "review" else "REASON"
    return [["--approve", interruption.target], ["--revise", interruption.target, feedback]]


def _waiting_lines(run: FlowRun, options: list[str]) -> list[str]:
    lines = []
    for waiting in run.waiting:
        if waiting.kind == "human":
            what, asks = f"a reply at {waiting.state}", waiting.output
        elif waiting.kind == "review":
            what, asks = f"review of task {waiting.target} at {waiting.state}", waiting.output
        else:
            what, asks = (
                f"approval of {waiting.target} at {waiting.state}",
                " ".join(f"{call['name']}({call['arguments']})" for call in waiting.tool_calls),
            )
        lines.append(f"waiting for {what}: {short(asks, 300)}")
        lines += [f"  {_resume_command(run.run_id, options, d)}" for d in _decisions(waiting)]
    return lines


def _table(result: FlowResult) -> Table:
    table = Table("state", "visit", "status", "output", "tokens", "cost $", "s", "next")
    for step in result.history:
        table.add_row(
            escape(step.state), str(step.visit), step.status, escape(short(step.output, 60)),
            str(step.usage.total_tokens), f"{step.cost:.4f}", f"{seconds(step):.1f}",
            escape(step.next_state or ""),
        )  # fmt: skip
    paused = result.run.paused
    if result.status == "paused" and paused is not None:
        visit = result.run.visits.get(paused.state, 0) + 1
        table.add_row(
            escape(paused.state), str(visit), "paused", "", str(paused.usage.total_tokens),
            f"{paused.cost_micros / 1e6:.4f}", "", "",
        )  # fmt: skip
    table.add_section()
    table.add_row(
        "flow", "", result.status, "", str(result.usage.total_tokens), f"{result.cost:.4f}", "", ""
    )
    return table


def _report(result: FlowResult, as_json: bool, options: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        errors.print(_table(result))
        if result.status == "completed" and result.output:
            typer.echo(result.output)
    where = f" at {result.final_state}" if result.final_state else ""
    errors.print(f"run {result.run_id}: {result.status}{where}", markup=False, highlight=False)
    if result.error:
        errors.print(f"[bold red]{result.status}:[/] {escape(result.error)}", highlight=False)
    for line in _waiting_lines(result.run, options):
        errors.print(line, markup=False, highlight=False)
    if result.status != "failed":
        return
    if result.reason not in ("max_visits", "max_steps"):  # those would stop it again
        again = _resume_command(result.run_id, options, [])
        errors.print(f"to run its failed state again: {again}", markup=False, highlight=False)
    raise typer.Exit(1)


def _options(config: Path | None, crews: Path | None) -> list[str]:
    """The options a later ``resume`` needs to find the same database and flows."""
    options = ["-c", str(config)] if config else []
    return options + (["--crews", str(crews)] if crews else [])


# --- the commands -----------------------------------------------------------------------


@flow_app.command("list")
def list_flows(crews: CrewsOption = None, config: ConfigOption = None) -> None:
    """List the flows of the crews folder and the ready-made ones: states, initial and
    final states, the inputs they need."""

    async def main(settings: Settings) -> None:
        catalog = _catalog(settings, crews)
        if not len(catalog):
            console.print(f"no flows in {escape(str(catalog.crews.folder))}")
            return
        table = Table("flow", "states", "initial → finals", "inputs", "description")
        for name in catalog.names():
            try:
                flow = catalog.get(name)
            except AgentrigError as exc:
                table.add_row(escape(name), "", "", "", f"[red]error:[/] {escape(str(exc))}")
                continue
            states = flow.graph.states.values()
            finals = ", ".join(s.name for s in states if s.final)
            table.add_row(
                escape(name),
                escape(", ".join(flow.graph.states)),
                escape(f"{flow.validate()} → {finals}"),
                escape(", ".join(flow.inputs)),
                escape(flow.description),
            )
        console.print(table)
        examples = crew_catalog.EXAMPLES
        ready = sorted(n for n, p in catalog.paths.items() if p.is_relative_to(examples))
        if ready:
            console.print(
                f"ready-made: {escape(', '.join(ready))} (in {escape(str(examples))}; "
                "a flow of the same name in the crews folder replaces one)",
                highlight=False,
            )

    _run(main, config)


@flow_app.command("show")
def show_flow(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The flow to show.")],
    crews: CrewsOption = None,
    config: ConfigOption = None,
) -> None:
    """Print flow NAME's graph as Mermaid text (paste it into a Markdown file)."""

    async def main(settings: Settings) -> str:
        return _catalog(settings, crews).get(name).mermaid()

    typer.echo(_run(main, config).rstrip("\n"))


@flow_app.command("run")
def run_flow(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The flow to run.")],
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="A variable, `key=value`; repeat.")
    ] = None,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
    crews: CrewsOption = None,
    config: ConfigOption = None,
) -> None:
    """Run flow NAME: live progress (states, transitions, the crews' tasks), then a table
    of its steps. The run is stored; a paused one prints the `agentrig flow resume` to type."""

    async def main(settings: Settings) -> FlowResult:
        inputs = _inputs(input or [])
        async with _open(settings, crews) as (catalog, store):
            flow = catalog.get(name)
            return await follow(flow.run_streamed(inputs, store=store), quiet, describe)

    _report(_run(main, config), as_json, _options(config, crews))


@flow_app.command("resume")
def resume_flow(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A stored run's id.")],
    approve: Annotated[
        list[str] | None,
        typer.Option("--approve", metavar="TARGET", help="Accept a task's answer or tool call."),
    ] = None,
    revise: Annotated[
        tuple[str, str] | None,
        typer.Option("--revise", metavar="TARGET FEEDBACK", help="Send TARGET back with FEEDBACK."),
    ] = None,
    reply: Annotated[
        str | None, typer.Option("--reply", metavar="TEXT", help="Answer a human step.")
    ] = None,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
    crews: CrewsOption = None,
    config: ConfigOption = None,
) -> None:
    """Resume stored run RUN_ID: a paused one once its decisions are given, a failed one
    (its failed state runs again) or one whose process died. Finished steps do not run again."""
    options = _options(config, crews)

    async def main(settings: Settings) -> FlowResult:
        async with _open(settings, crews) as (catalog, store):
            stored = await store.get(run_id)
            if stored is None:
                raise ConfigError(f"no flow run {run_id!r} is stored (see `agentrig flow runs`)")
            run = FlowRun.from_json(stored.data)
            _decide(run, approve or [], revise if revise and revise[0] else None, reply, options)
            flow = catalog.get(stored.flow, stored.tenant)
            return await follow(flow.resume_streamed(run, store=store), quiet, describe)

    _report(_run(main, config), as_json, options)


def _decide(
    run: FlowRun,
    approve: list[str],
    revise: tuple[str, str] | None,
    reply: str | None,
    options: list[str],
) -> None:
    """Record the decisions on ``run`` (in memory: it is stored when it resumes)."""
    if revise is not None and not revise[1].strip():
        raise ConfigError("--revise TARGET FEEDBACK: the feedback says what to change")
    if run.status == "completed":
        raise NotResumable(f"flow run {run.run_id} has completed already")
    decided = bool(approve or revise or reply is not None)
    if run.waiting and not decided:
        raise NotResumable(
            "\n".join(
                [f"flow run {run.run_id} waits for a decision:", *_waiting_lines(run, options)]
            )
        )
    for target in approve:
        run.approve(target)
    if revise is not None:
        run.revise(*revise)
    if reply is not None:
        run.reply(reply)


@flow_app.command("runs")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    tenant: Annotated[str, typer.Option(help="The tenant whose runs to list.")] = "default",
    config: ConfigOption = None,
) -> None:
    """List the stored flow runs, newest first."""

    async def main(settings: Settings) -> None:
        if status is not None and status not in STATUSES:
            raise ConfigError(f"--status {status!r}: one of {', '.join(STATUSES)}")
        async with _database(settings) as database:
            rows = await FlowRunStore(database).list(tenant, flow=flow, status=status, limit=limit)
        if not rows:
            console.print("no flow runs")
            return
        table = Table("run", "flow", "status", "state", "steps", "cost $", "updated (UTC)")
        for row in rows:
            table.add_row(
                row.id, escape(row.flow), row.status, escape(row.current_state or ""),
                str(row.steps), f"{row.cost_micros / 1e6:.4f}",
                f"{row.updated_at:%Y-%m-%d %H:%M:%S}",
            )  # fmt: skip
        console.print(table)

    _run(main, config)
