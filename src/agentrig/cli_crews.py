"""``agentrig crew``: list the crews of the crews folder and the ready-made ones, run one
with live progress, and resume a paused one after a review."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from agentrig.cli import ConfigOption, _run, app, console, errors, open_router
from agentrig.config import Settings
from agentrig.crews import Crew, CrewResult, CrewState
from agentrig.crews import catalog as crew_catalog
from agentrig.crews.catalog import CrewCatalog
from agentrig.crews.progress import describe
from agentrig.errors import ConfigError

crew_app = typer.Typer(help="Crews: agents working through tasks together.", no_args_is_help=True)
app.add_typer(crew_app, name="crew")

CrewsOption = Annotated[
    Path | None,
    typer.Option("--crews", help="The crews folder (else `[server] crews_dir`, `./crews`)."),
]


def _folder(settings: Settings, given: Path | None) -> Path:
    return given or settings.server.crews_dir


def _crews(settings: Settings, given: Path | None) -> dict[str, Path]:
    """The crews of the folder and the ready-made ones (a crew of the folder wins)."""
    return CrewCatalog(_folder(settings, given), examples=True).paths


def _load(settings: Settings, given: Path | None, name: str, router: Any) -> Crew:
    crews = _crews(settings, given)
    if name not in crews:
        raise ConfigError(
            f"no crew {name!r} in {_folder(settings, given)} or the ready-made ones: "
            f"found {sorted(crews) or 'none'}"
        )
    return Crew.from_yaml(crews[name], router=router)


def _inputs(pairs: list[str]) -> dict[str, str]:
    inputs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--input {pair!r}: expected key=value")
        inputs[key.strip()] = value
    return inputs


@crew_app.command("list")
def list_crews(crews: CrewsOption = None, config: ConfigOption = None) -> None:
    """List the crews of the crews folder and the ready-made ones: process, tasks, agents
    and the inputs they need."""

    async def main(settings: Settings) -> None:
        found = _crews(settings, crews)
        if not found:
            console.print(f"no crews in {escape(str(_folder(settings, crews)))}")
            return
        table = Table("crew", "process", "tasks", "agents", "inputs", "description")
        for name, path in sorted(found.items()):
            crew = Crew.from_yaml(path)
            table.add_row(
                escape(name),
                crew.process.value,
                escape(", ".join(task.name for task in crew.tasks)),
                escape(", ".join(crew.agents)),
                escape(", ".join(crew.inputs)),
                escape(crew.description),
            )
        console.print(table)
        examples = crew_catalog.EXAMPLES  # looked up here, so tests may move it
        ready = sorted(name for name, path in found.items() if path.is_relative_to(examples))
        if ready:
            console.print(
                f"ready-made: {escape(', '.join(ready))} (in {escape(str(examples))}; "
                "a crew of the same name in the crews folder replaces one)",
                highlight=False,
            )

    _run(main, config)


async def follow(stream: Any, quiet: bool, describe: Callable[[Any], str | None] = describe) -> Any:
    """Print a progress line per event of a crew's (or a flow's) stream; its result."""
    async for event in stream.events():
        line = describe(event)
        if line and not quiet:
            errors.print(line, markup=False, highlight=False)
    assert stream.result is not None
    return stream.result


def _report(result: CrewResult, as_json: bool, state_file: Path | None) -> None:
    saved = None
    if result.status == "paused":
        saved = state_file or Path(f"{result.state.crew}-{result.state.run_id}.state.json")
        saved.write_text(result.state.to_string())
    if as_json:
        data = result.to_json()
        data["state_file"] = str(saved) if saved else None
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        table = Table("task", "agent", "status", "attempts", "delegations", "tokens", "cost $", "s")
        for out in result.tasks_output:
            table.add_row(
                escape(out.task), escape(out.agent), out.status, str(out.attempts),
                str(out.delegations), str(out.usage.total_tokens), f"{out.cost:.4f}",
                f"{out.duration:.1f}",
            )  # fmt: skip
        table.add_section()
        table.add_row(
            "crew", "", result.status, "", "", str(result.usage.total_tokens), f"{result.cost:.4f}"
        )
        errors.print(table)
        if result.output:
            console.print(result.output, markup=False, highlight=False)
    if result.error:
        errors.print(f"[bold red]{result.status}:[/] {escape(result.error)}", highlight=False)
    for waiting in result.interruptions:
        what = waiting.output if waiting.kind == "review" else json.dumps(waiting.tool_calls)
        errors.print(
            f"[yellow]waiting for {waiting.kind}[/] of task {escape(waiting.task)}: "
            f"{escape(what[:300])}",
            highlight=False,
        )
    if saved is not None:
        errors.print(
            f"state saved to {escape(str(saved))}: agentrig crew resume {escape(str(saved))} "
            "--approve TASK | --revise TASK FEEDBACK",
            highlight=False,
        )
    if result.status == "failed":
        raise typer.Exit(1)


@crew_app.command("run")
def run_crew(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The crew to run.")],
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An input, `key=value`; repeat.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    state_file: Annotated[
        Path | None, typer.Option(help="Where a paused crew's state goes.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    crews: CrewsOption = None,
    config: ConfigOption = None,
) -> None:
    """Run crew NAME: live progress (task, agent, delegations, tokens, cost), then a table
    per task and the final output. A paused crew's state is saved for `agentrig crew resume`."""

    async def main(settings: Settings) -> CrewResult:
        async with open_router(settings) as (router, _):
            crew = _load(settings, crews, name, router)
            return await follow(crew.kickoff_streamed(_inputs(input or [])), quiet)

    _report(_run(main, config), as_json, state_file)


@crew_app.command("resume")
def resume_crew(
    state_path: Annotated[Path, typer.Argument(metavar="STATE_FILE", help="A saved state.")],
    approve: Annotated[
        list[str] | None, typer.Option("--approve", help="Accept TASK's answer (or tool calls).")
    ] = None,
    revise: Annotated[
        tuple[str, str] | None,
        typer.Option("--revise", metavar="TASK FEEDBACK", help="Send TASK back with FEEDBACK."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    crews: CrewsOption = None,
    config: ConfigOption = None,
) -> None:
    """Resume the paused crew saved in STATE_FILE after approving or revising its tasks;
    finished tasks are not run again. The state file is updated."""

    async def main(settings: Settings) -> CrewResult:
        try:
            state = CrewState.from_string(state_path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {state_path}: {exc.strerror}") from None
        for task in approve or []:
            state.approve(task)
        if revise is not None and revise[0]:
            state.revise(*revise)
        if state.status == "paused" and not (approve or revise):
            raise ConfigError("nothing decided: give --approve TASK or --revise TASK FEEDBACK")
        async with open_router(settings) as (router, _):
            crew = _load(settings, crews, state.crew, router)
            return await follow(crew.resume_streamed(state), quiet)

    result = _run(main, config)
    state_path.write_text(result.state.to_string())
    _report(result, as_json, state_path if result.status == "paused" else None)
