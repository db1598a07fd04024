"""The knowledge commands: ``agentrig ingest``, ``agentrig search``, ``agentrig eval
retrieval`` and ``agentrig worker`` (registered on the main app by :mod:`agentrig.cli`).

``ingest`` and ``search`` work on the configured data directory in this process (with
embedded Qdrant, not while a server holds it: use the server's upload API then).
``eval retrieval`` ingests a BEIR corpus into a temporary data directory unless
``--data-dir`` is given, so an evaluation never touches your knowledge bases.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from agentrig.cli import ConfigOption, _run, app, console
from agentrig.config import Settings
from agentrig.knowledge.edge import EdgeVectorStore
from agentrig.knowledge.migrate import Migrated, legacy_collections, migrate
from agentrig.knowledge.qdrant import QdrantVectorStore
from agentrig.knowledge.retrieval import MODES
from agentrig.knowledge.service import Knowledge
from agentrig.knowledge.vectors import VectorStore
from agentrig.llm.router import ModelRouter
from agentrig.store import Database, SQLUsageLedger

LOCAL_TENANT = "default"  # the tenant of a server without API keys
eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
knowledge_app = typer.Typer(help="The vector store's upkeep.", no_args_is_help=True)


@asynccontextmanager
async def open_knowledge(settings: Settings) -> AsyncIterator[Knowledge]:
    await migrate_on_start(settings)
    database = await Database.open(settings)
    router = ModelRouter.from_settings(settings, ledger=SQLUsageLedger(database))
    knowledge = Knowledge.open(settings, database, router)
    try:
        yield knowledge
    finally:
        await knowledge.aclose()
        await router.aclose()
        await database.aclose()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH", help="Files or folders to ingest.")
    ],
    kb: Annotated[str | None, typer.Option(help="Knowledge base (default: default).")] = None,
    config: ConfigOption = None,
) -> None:
    """Store, parse, chunk, embed and index documents.

    A file already indexed in the knowledge base under the same name and content is left
    as it is; one whose content changed replaces the old document."""
    files = sorted({p for path in paths for p in ([path] if path.is_file() else path.rglob("*"))})
    files = [path for path in files if path.is_file() and not path.name.startswith(".")]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise typer.BadParameter(f"no such file or folder: {', '.join(missing)}")

    async def main(settings: Settings) -> None:
        failed = unchanged = 0
        async with open_knowledge(settings) as knowledge:
            with _progress() as progress:
                task = progress.add_task("indexing", total=len(files))
                for path in files:
                    progress.update(task, description=escape(path.name[:40]))
                    outcome = await _ingest_file(knowledge, path, kb)
                    if outcome == "unchanged":
                        unchanged += 1
                    elif outcome is not None:
                        failed += 1
                        progress.console.print(f"[red]failed[/] {escape(f'{path}: {outcome}')}")
                    progress.advance(task)
        indexed = len(files) - failed - unchanged
        console.print(f"{indexed} indexed, {unchanged} unchanged, {failed} failed")
        if failed:
            raise typer.Exit(1)

    _run(main, config)


async def _ingest_file(knowledge: Knowledge, path: Path, kb: str | None) -> str | None:
    """Index ``path``: ``None`` when indexed, ``"unchanged"``, or the reason it failed."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    kb = kb or knowledge.settings.knowledge.default_kb
    earlier = [
        document
        for document in await knowledge.documents.list(LOCAL_TENANT, kb=kb, limit=100_000)
        if document.filename == path.name
    ]
    if any(d.sha256 == digest and d.status == "indexed" for d in earlier):
        return "unchanged"
    document = await knowledge.add_document(LOCAL_TENANT, data, path.name, kb=kb)
    report = await knowledge.index(LOCAL_TENANT, document.id)
    if report.status != "indexed":
        return report.reason or "failed"
    for old in earlier:  # the new content replaces the old
        await knowledge.delete_document(LOCAL_TENANT, old.id)
    return None


@app.command()
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.")],
    kb: Annotated[str | None, typer.Option(help="Knowledge base (default: default).")] = None,
    top_k: Annotated[int, typer.Option(min=1, max=100, help="How many hits.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keywords.")] = "hybrid",
    config: ConfigOption = None,
) -> None:
    """Search a knowledge base; prints each hit with its source."""

    async def main(settings: Settings) -> None:
        async with open_knowledge(settings) as knowledge:
            hits = await knowledge.retriever.search(
                query,
                tenant=LOCAL_TENANT,
                kb=kb,
                top_k=top_k,
                mode=mode,  # type: ignore[arg-type]
            )
        table = Table("score", "source", "text")
        for hit in hits:
            where = hit.metadata.get("filename") or hit.document_id
            where += f" p.{hit.page}" if hit.page else ""
            where += f" ({hit.heading})" if hit.heading else ""
            text = " ".join(hit.text.split())[:160]
            table.add_row(f"{hit.score:.3f}", escape(where), escape(text))
        console.print(table if hits else "no hits")

    _run(main, config)


@app.command()
def chat(
    message: Annotated[
        str, typer.Argument(metavar="MESSAGE", help="What to ask the knowledge base.")
    ],
    kb: Annotated[str | None, typer.Option(help="Knowledge base (default: default).")] = None,
    conversation: Annotated[str | None, typer.Option(help="Continue this conversation id.")] = None,
    config: ConfigOption = None,
) -> None:
    """Ask a knowledge base; prints the answer and its sources."""
    from agentrig.rag.chat import KnowledgeChat

    async def main(settings: Settings) -> None:
        async with open_knowledge(settings) as knowledge:
            chat = KnowledgeChat.open(knowledge, {})
            answer = await chat.answer(LOCAL_TENANT, message, conversation_id=conversation, kb=kb)
        console.print(answer.response or "(no answer)", markup=False, highlight=False)
        console.print(f"\n[dim]conversation {answer.conversation_id}[/]")
        for source in answer.sources:
            where = source["filename"] + (f", page {source['page']}" if source["page"] else "")
            where += f" ({source['heading']})" if source["heading"] else ""
            console.print(f"[{source['number']}] {where}", markup=False, highlight=False)

    _run(main, config)


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[Path, typer.Option(help="A BEIR folder: corpus, queries, qrels.")],
    modes: Annotated[str, typer.Option(help="Comma-separated modes.")] = ",".join(MODES),
    split: Annotated[
        str, typer.Option(help="The qrels to score: qrels/SPLIT.tsv (tune on train).")
    ] = "test",
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the index here (default: a temporary folder).")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON.")] = None,
    config: ConfigOption = None,
) -> None:
    """nDCG@10, recall@10 and search latency of dense, keyword and hybrid retrieval on a
    BEIR dataset, and the size of the index."""
    from agentrig.knowledge.evaluation import TENANT, Dataset, evaluate, ingest_corpus

    chosen = [mode.strip() for mode in modes.split(",") if mode.strip()]
    if unknown := [mode for mode in chosen if mode not in MODES]:
        raise typer.BadParameter(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    try:
        data = Dataset.load(dataset, split)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None

    async def main(settings: Settings) -> None:
        folder = data_dir or Path(tempfile.mkdtemp(prefix="agentrig-eval-"))
        settings = settings.model_copy(update={"data_dir": folder, "database_url": None})
        settings.knowledge = settings.knowledge.model_copy(
            update={"qdrant_path": None, "vectors_path": None}
        )
        settings.files = settings.files.model_copy(update={"backend": "local", "directory": None})
        async with open_knowledge(settings) as knowledge:
            with _progress() as progress:
                task = progress.add_task("ingesting", total=len(data.corpus))
                documents = await ingest_corpus(
                    knowledge, data, "eval", progress=lambda n: progress.advance(task, n)
                )
            scores = await evaluate(knowledge, data, "eval", documents, modes=chosen)  # type: ignore[arg-type]
            chunks = await knowledge.vectors.count("eval", TENANT)
        table = Table(
            "mode", "nDCG@10", "recall@10", "queries", "p50 ms", "p95 ms", "seconds",
            title=f"{escape(dataset.name)}, split {escape(split)}",
        )  # fmt: skip
        for score in scores:
            table.add_row(
                score.mode,
                f"{score.ndcg_at_10:.3f}",
                f"{score.recall_at_10:.3f}",
                str(score.queries),
                f"{score.p50_ms:.1f}",
                f"{score.p95_ms:.1f}",
                f"{score.seconds:.1f}",
            )
        console.print(table)
        size = _index_size(settings)
        where = f", {size / 1e6:.1f} MB on disk" if size is not None else ""
        console.print(f"index: {chunks} chunks of {len(documents)} documents{where}")
        if json_out is not None:
            rows = [{**score.__dict__, "split": split} for score in scores]
            json_out.write_text(json.dumps(rows, indent=2))

    _run(main, config)


def _index_size(settings: Settings) -> int | None:
    """Bytes of the embedded vector store's files; None with a Qdrant server."""
    if settings.knowledge.qdrant_url:
        return None
    folder = settings.vectors_path
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


app.add_typer(eval_app, name="eval")


async def migrate_on_start(settings: Settings) -> None:
    """Before a command opens the embedded store: move the knowledge bases an earlier
    agentrig kept in qdrant-client's local mode, with a progress bar (once)."""
    if settings.knowledge.qdrant_url or not legacy_collections(settings.qdrant_path):
        return
    console.print(f"moving the knowledge bases at {settings.qdrant_path} to the vector engine")
    await _migrate(settings)


async def _migrate(settings: Settings) -> Migrated:
    if settings.knowledge.qdrant_url:
        store: VectorStore = QdrantVectorStore.from_settings(settings)
    else:
        store = EdgeVectorStore.from_settings(settings, check_legacy=False)
    with _progress() as progress:
        tasks: dict[str, TaskID] = {}

        def report(kb: str, done: int, total: int) -> None:
            if kb not in tasks:
                tasks[kb] = progress.add_task(escape(kb), total=total)
            progress.update(tasks[kb], completed=done)

        try:
            moved = await migrate(settings.qdrant_path, store, progress=report)
        finally:
            await store.aclose()
    for kb, count in moved.counts.items():
        console.print(f"{escape(kb)}: {count} chunks moved")
    if moved.kept_at is not None:
        console.print(f"the old store is kept at {moved.kept_at}: delete it when satisfied")
    return moved


@knowledge_app.command("migrate")
def migrate_command(config: ConfigOption = None) -> None:
    """Move the knowledge bases of an earlier agentrig's embedded store (qdrant-client's
    local mode, at `knowledge.qdrant_path`) into the configured vector store."""

    async def main(settings: Settings) -> None:
        if not legacy_collections(settings.qdrant_path):
            console.print(f"nothing to migrate: no knowledge bases at {settings.qdrant_path}")
            return
        await _migrate(settings)

    _run(main, config)


app.add_typer(knowledge_app, name="knowledge")


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop once the queue is empty.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run background jobs from Redis (`[jobs] backend = "redis"`): document indexing,
    asynchronous chat (with the agents of `server.agents_file`), crew and flow runs and
    background crew and flow responses (the crews of `server.crews_dir`, the flows beside
    them)."""
    from agentrig.errors import ConfigError
    from agentrig.jobs.handlers import job_handlers
    from agentrig.jobs.redis import run_worker
    from agentrig.rag.chat import KnowledgeChat
    from agentrig.server.app import served_agents, served_runs
    from agentrig.store.jobs import JobStore
    from agentrig.store.responses import ResponseStore

    async def main(settings: Settings) -> None:
        if settings.jobs.backend != "redis":
            raise ConfigError(
                'agentrig worker runs the jobs of [jobs] backend = "redis"; with the local '
                "backend the server runs its jobs itself"
            )
        await migrate_on_start(settings)
        database = await Database.open(settings)
        router = ModelRouter.from_settings(settings, ledger=SQLUsageLedger(database))
        knowledge = Knowledge.open(settings, database, router)

        async def make_handlers():
            responses = ResponseStore(database)

            async def close() -> None:
                await knowledge.aclose()
                await responses.aclose()
                await router.aclose()
                await database.aclose()

            chat = KnowledgeChat.open(knowledge, served_agents(settings))
            serving = served_runs(settings, database, router, knowledge, responses)
            return job_handlers(chat) | serving.handlers(), close

        console.print(f"agentrig worker on {settings.jobs.redis_url}")
        await run_worker(JobStore(database), settings.jobs, make_handlers, burst=burst)

    _run(main, config)
