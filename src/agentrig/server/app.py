"""The FastAPI application: what ``agentrig serve`` runs.

``create_app(settings)`` wires the server's parts at start-up (lifespan): the database
(migrated), the response, conversation and API-key stores, a model router whose usage
rows go to the database, the agents of ``server.agents_file`` (served as model
``agent:<name>``), the crews of ``server.crews_dir`` (model ``crew:<name>`` and
``/api/v1/crews``) and the flows beside them (model ``flow:<name>`` and
``/api/v1/flows``), and in gateway mode an HTTP client for the upstream server.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI

from agentrig.agents import Agent, AgentRunner
from agentrig.config import ProviderConfig, Settings
from agentrig.crews.catalog import CrewCatalog
from agentrig.flows.catalog import FlowCatalog
from agentrig.jobs.crew_runs import CrewRuns
from agentrig.jobs.flow_runs import FlowRuns
from agentrig.jobs.handlers import job_handlers
from agentrig.jobs.queue import JobQueue, LocalJobQueue
from agentrig.jobs.redis import RedisJobQueue
from agentrig.knowledge.service import Knowledge
from agentrig.llm.router import ModelRouter
from agentrig.rag.chat import KnowledgeChat
from agentrig.server.background import BackgroundResponses
from agentrig.server.errors import install_error_handlers
from agentrig.store import Database, SQLUsageLedger
from agentrig.store.api_keys import ApiKeyStore
from agentrig.store.crew_runs import CrewRunStore
from agentrig.store.flow_runs import FlowRunStore
from agentrig.store.jobs import JobStore
from agentrig.store.responses import ResponseStore

if TYPE_CHECKING:
    from agentrig.server.response_jobs import ResponseServing

UPSTREAM_PROVIDER = "upstream"
log = logging.getLogger(__name__)


@dataclass
class ServerState:
    """Everything a request handler needs, built once at start-up."""

    settings: Settings
    database: Database
    responses: ResponseStore
    keys: ApiKeyStore
    router: ModelRouter
    agents: Mapping[str, Agent]
    auth_enabled: bool
    background: BackgroundResponses
    jobs: JobQueue
    crews: CrewCatalog
    crew_runs: CrewRuns
    flows: FlowCatalog
    flow_runs: FlowRuns
    knowledge: Knowledge | None = None  # None: embedded Qdrant with several workers
    chat: KnowledgeChat | None = None
    upstream: httpx.AsyncClient | None = None
    metrics: Any = None


def served_agents(settings: Settings) -> Mapping[str, Agent]:
    """The agents of ``server.agents_file``, by name."""
    if settings.server.agents_file is None:
        return {}
    return AgentRunner.from_yaml(settings.server.agents_file).agents


def _router(settings: Settings, database: Database) -> ModelRouter:
    llm = settings.llm
    if settings.server.upstream:
        llm = llm.model_copy(deep=True)
        llm.providers[UPSTREAM_PROVIDER] = ProviderConfig(
            kind="openai", base_url=settings.server.upstream.rstrip("/")
        )
    return ModelRouter(llm, ledger=SQLUsageLedger(database))


def _knowledge(settings: Settings, database: Database, router: ModelRouter) -> Knowledge | None:
    if settings.server.workers > 1 and not settings.knowledge.qdrant_url:
        log.warning(
            "knowledge bases are off: embedded Qdrant serves one process; set "
            "knowledge.qdrant_url to use them with %d workers",
            settings.server.workers,
        )
        return None
    return Knowledge.open(settings, database, router)


def served_crews(
    settings: Settings, router: ModelRouter, knowledge: Knowledge | None
) -> CrewCatalog:
    """The crews of ``server.crews_dir`` (none if the folder does not exist)."""
    return CrewCatalog(settings.server.crews_dir, router=router, knowledge=knowledge)


def served_runs(
    settings: Settings,
    database: Database,
    router: ModelRouter,
    knowledge: Knowledge | None,
    responses: ResponseStore,
) -> ResponseServing:
    """The crews of ``server.crews_dir`` and the flows beside them, their runs kept in
    ``database``: what the server and ``agentrig worker`` run crew and flow jobs with."""
    from agentrig.server.response_jobs import ResponseServing

    crews = served_crews(settings, router, knowledge)
    flows = FlowCatalog(crews, database_url=settings.effective_database_url)
    crew_runs = CrewRuns(crews, CrewRunStore(database))
    flow_runs = FlowRuns(flows, FlowRunStore(database))
    return ResponseServing(responses, crews, crew_runs, flows, flow_runs)


def _jobs(
    settings: Settings, database: Database, chat: KnowledgeChat | None, serving: ResponseServing
) -> JobQueue:
    store = JobStore(database)
    if settings.jobs.backend == "redis":
        return RedisJobQueue(store, settings.jobs)
    handlers = serving.handlers() | ({} if chat is None else job_handlers(chat))
    return LocalJobQueue(store, handlers, settings.jobs)


async def open_state(settings: Settings) -> ServerState:
    database = await Database.open(settings)
    keys = ApiKeyStore(database)
    upstream = None
    if settings.server.upstream:
        upstream = httpx.AsyncClient(
            base_url=settings.server.upstream.rstrip("/"), timeout=httpx.Timeout(600.0)
        )
    responses = ResponseStore(database)
    router = _router(settings, database)
    knowledge = _knowledge(settings, database, router)
    agents = served_agents(settings)
    chat = None if knowledge is None else KnowledgeChat.open(knowledge, agents)
    serving = served_runs(settings, database, router, knowledge, responses)
    jobs = _jobs(settings, database, chat, serving)
    serving.crew_runs.queue = serving.flow_runs.queue = jobs
    await jobs.start()
    return ServerState(
        settings=settings,
        database=database,
        responses=responses,
        background=BackgroundResponses(responses),
        jobs=jobs,
        crews=serving.crews,
        crew_runs=serving.crew_runs,
        flows=serving.flows,
        flow_runs=serving.flow_runs,
        knowledge=knowledge,
        chat=chat,
        keys=keys,
        router=router,
        agents=agents,
        auth_enabled=await keys.count() > 0,
        upstream=upstream,
    )


async def close_state(state: ServerState) -> None:
    await state.background.aclose()
    await state.jobs.aclose()
    if state.knowledge is not None:
        await state.knowledge.aclose()
    await state.responses.aclose()
    await state.router.aclose()
    if state.upstream is not None:
        await state.upstream.aclose()
    await state.database.aclose()


SETTINGS_VARIABLE = "AGENTRIG_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of a worker process of ``agentrig serve --workers N``: the settings that the
    command resolved come as JSON in ``$AGENTRIG_SERVE_SETTINGS``."""
    return create_app(Settings.model_validate_json(os.environ[SETTINGS_VARIABLE]))


def create_app(settings: Settings) -> FastAPI:
    """The agentrig server for ``settings``."""
    from agentrig.server import (
        chat,
        conversations,
        crews,
        documents,
        flows,
        gateway,
        health,
        knowledge_chat,
        responses,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.server = await open_state(settings)
        app.state.server.metrics = app.state.metrics
        try:
            yield
        finally:
            await close_state(app.state.server)

    app = FastAPI(
        title="agentrig",
        version=metadata.version("agentrig"),
        description="OpenAI-compatible Responses and Conversations APIs for agentrig agents.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    health.install_metrics(app)
    app.include_router(health.router)
    app.include_router(responses.router)
    app.include_router(conversations.router)
    app.include_router(documents.router)
    app.include_router(knowledge_chat.router)
    app.include_router(crews.router)
    app.include_router(flows.router)
    if settings.server.upstream:
        # Gateway mode: only /v1/responses and /v1/conversations are agentrig's; every
        # other /v1/* request, chat completions and models included, goes upstream.
        app.include_router(gateway.router)
    else:
        app.include_router(chat.router)
        app.include_router(health.models_router)
    return app
