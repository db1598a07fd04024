"""One settings object, read from ``agentrig.toml`` and ``AGENTRIG_*`` environment variables.

Precedence, highest first: keyword arguments to :func:`load_settings`, environment
variables (``AGENTRIG_LLM__ATTEMPT_TIMEOUT=30``; nested keys joined by ``__``), the TOML
file (``AGENTRIG_CONFIG`` or ``./agentrig.toml``), then the embedded defaults: a data
directory, SQLite in it, and the local CPU models. A production component is switched on
by giving its URL or key. ``agentrig.example.toml`` documents every key.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agentrig.errors import ConfigError

ProviderKind = Literal["openai", "anthropic", "gemini", "local"]

LOCAL_CHAT_MODEL = "smollm2"
LOCAL_EMBED_MODEL = "all-minilm-l6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    """Per-model options. Prices are USD per million tokens and override genai-prices."""

    input_price: Decimal | None = Field(default=None, ge=0)
    output_price: Decimal | None = Field(default=None, ge=0)
    cached_input_price: Decimal | None = Field(default=None, ge=0)
    name: str | None = None  # the vendor's model name, when the key is an alias


class ProviderConfig(_Section):
    """One provider: a vendor API (or a compatible server) and the models it serves."""

    kind: ProviderKind
    base_url: str | None = None
    api_key_env: str | None = None
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class BudgetConfig(_Section):
    """A role's spending limits in USD; either may be left out."""

    monthly_usd: Decimal | None = Field(default=None, gt=0)
    weekly_usd: Decimal | None = Field(default=None, gt=0)


def _default_providers() -> dict[str, ProviderConfig]:
    return {
        "local": ProviderConfig(
            kind="local",
            models={
                LOCAL_CHAT_MODEL: ModelConfig(input_price=Decimal(0), output_price=Decimal(0)),
                LOCAL_EMBED_MODEL: ModelConfig(input_price=Decimal(0), output_price=Decimal(0)),
            },
        )
    }


def _default_roles() -> dict[str, list[str]]:
    return {
        "default": [f"local/{LOCAL_CHAT_MODEL}"],
        "fast": [f"local/{LOCAL_CHAT_MODEL}"],
        "embed": [f"local/{LOCAL_EMBED_MODEL}"],
    }


class LLMSettings(_Section):
    """The ``[llm]`` section: providers, roles (ordered fallback chains), budgets, retries."""

    providers: dict[str, ProviderConfig] = Field(default_factory=_default_providers)
    roles: dict[str, list[str]] = Field(default_factory=_default_roles)
    budgets: dict[str, BudgetConfig] = Field(default_factory=dict)
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_initial: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=8.0, ge=0)
    attempt_timeout: float = Field(default=120.0, gt=0)
    cooldown_seconds: float = Field(default=30.0, ge=0)
    cheap_threshold: float = Field(default=0.8, gt=0, le=1)
    budget_refresh_seconds: float = Field(default=5.0, gt=0)

    @field_validator("providers", mode="after")
    @classmethod
    def _with_builtin_providers(cls, value: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        return {**_default_providers(), **value}

    @field_validator("roles", mode="after")
    @classmethod
    def _with_builtin_roles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {**_default_roles(), **value}

    @model_validator(mode="after")
    def _chains_name_known_providers(self) -> LLMSettings:
        for role, chain in self.roles.items():
            if not chain:
                raise ValueError(f"roles.{role} is empty: expected at least one 'provider/model'")
            for index, entry in enumerate(chain):
                provider, sep, model = entry.partition("/")
                if not sep or not model:
                    raise ValueError(
                        f"roles.{role}[{index}] = {entry!r}: expected 'provider/model'"
                    )
                if provider not in self.providers:
                    raise ValueError(
                        f"roles.{role}[{index}] = {entry!r}: unknown provider {provider!r}, "
                        f"expected one of {sorted(self.providers)}"
                    )
        for role in self.budgets:
            if role not in self.roles:
                raise ValueError(
                    f"budgets.{role}: no such role, expected one of {sorted(self.roles)}"
                )
        return self


class ServerSettings(_Section):
    """The ``[server]`` section: where ``agentrig serve`` listens and what it serves."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    agents_file: Path | None = None  # YAML of the agents served as model "agent:<name>"
    crews_dir: Path = Path("crews")  # one folder per crew (CrewAI layout): agentrig crew
    upstream: str | None = None  # gateway mode: an OpenAI-compatible server's base URL
    insecure: bool = False  # allow binding beyond 127.0.0.1 without API keys
    workers: int = Field(default=1, ge=1, le=64)  # server processes sharing the port


class FilesSettings(_Section):
    """The ``[files]`` section: where uploaded documents are kept.

    ``backend = "local"`` keeps them under ``directory`` (default ``data_dir/files``);
    ``"s3"`` in ``bucket`` of an S3-compatible service (AWS, MinIO, RustFS), credentials
    from the variables named by ``access_key_env`` / ``secret_key_env`` (else boto's own
    chain: environment, profile, instance role)."""

    backend: Literal["local", "s3"] = "local"
    directory: Path | None = None
    bucket: str | None = None
    endpoint_url: str | None = None  # None: AWS
    region: str | None = None
    path_style: bool = False  # MinIO and RustFS want path-style addressing
    access_key_env: str | None = None
    secret_key_env: str | None = None
    presign_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> FilesSettings:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("bucket: the s3 backend needs a bucket")
        return self


class KnowledgeSettings(_Section):
    """The ``[knowledge]`` section: ingestion, the vector store and retrieval.

    Vectors live in Qdrant: its engine embedded under ``vectors_path`` (default
    ``data_dir/vectors``) unless ``qdrant_url`` names a server (``qdrant_api_key_env`` its
    key's variable). ``qdrant_path`` (default ``data_dir/qdrant``) is where agentrig kept
    embedded vectors before, read by ``agentrig knowledge migrate``. The embedded engine
    rebuilds its index in the background after ``optimize_after`` new chunks and searches
    its HNSW graphs ``hnsw_ef`` wide."""

    chunk_size: int = Field(default=1000, ge=16, le=100_000)  # tokens
    chunk_overlap: int = Field(default=200, ge=0)
    max_file_mb: float = Field(default=50, gt=0)
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    vectors_path: Path | None = None
    optimize_after: int = Field(default=20_000, ge=100)
    hnsw_ef: int = Field(default=128, ge=8, le=4096)
    qdrant_path: Path | None = None
    qdrant_url: str | None = None
    qdrant_api_key_env: str | None = None
    default_kb: str = "default"
    top_k: int = Field(default=5, ge=1, le=200)
    # hybrid search: how the two rankings are fused (knowledge/fusion.py), chosen on BEIR
    # SciFact's train queries with bench/tune_retrieval.py; rrf_k is used by "rrf" only
    fusion: Literal["rrf", "convex", "dbsf"] = "convex"
    dense_weight: float = Field(default=0.45, ge=0, allow_inf_nan=False)
    keyword_weight: float = Field(default=0.55, ge=0, allow_inf_nan=False)
    rrf_k: int = Field(default=60, ge=1)
    fusion_candidates: int = Field(default=100, ge=1, le=10_000)  # per ranking, at least
    min_score: float | None = None  # similarity threshold on dense scores
    prompts_file: Path | None = None  # Jinja2 prompts of the knowledge chat (see rag/prompts.toml)
    chat_model: str = "default"  # the role or provider/model the knowledge chat answers with

    @model_validator(mode="after")
    def _overlap_below_size(self) -> KnowledgeSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )
        return self

    @model_validator(mode="after")
    def _a_ranking_counts(self) -> KnowledgeSettings:
        if self.dense_weight == 0 and self.keyword_weight == 0:
            raise ValueError(
                "dense_weight and keyword_weight are both 0: hybrid search would rank "
                "nothing; give at least one of them a positive weight"
            )
        return self


class JobsSettings(_Section):
    """The ``[jobs]`` section: background work (document indexing, asynchronous chat).

    ``backend = "local"``: asyncio workers inside the server over job rows in the
    database; ``"redis"``: arq on ``redis_url``, run by ``agentrig worker`` processes."""

    backend: Literal["local", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    concurrency: int = Field(default=2, ge=1, le=256)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_delay_seconds: float = Field(default=1.0, ge=0)
    lease_seconds: float = Field(default=60.0, gt=0)  # a silent worker's job is taken over


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "agentrig"


_toml_path: ContextVar[Path | None] = ContextVar("agentrig_toml_path", default=None)


class Settings(BaseSettings):
    """Everything agentrig reads from its configuration."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTRIG_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    llm: LLMSettings = Field(default_factory=LLMSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_toml_path.get())
        return (init_settings, env_settings, toml)

    @property
    def files_directory(self) -> Path:
        return self.files.directory or self.data_dir / "files"

    @property
    def qdrant_path(self) -> Path:
        return self.knowledge.qdrant_path or self.data_dir / "qdrant"

    @property
    def vectors_path(self) -> Path:
        return self.knowledge.vectors_path or self.data_dir / "vectors"

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy async URL: ``database_url`` if set, else SQLite in ``data_dir``."""
        if self.database_url:
            return async_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.data_dir / 'agentrig.db'}"


def async_database_url(url: str) -> str:
    """Pick the async driver for a plain ``postgresql://`` or ``sqlite://`` URL."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def config_path(path: str | Path | None = None) -> Path | None:
    """The TOML file to read: ``path``, else ``$AGENTRIG_CONFIG``, else ``./agentrig.toml``."""
    if path is not None:
        return Path(path)
    if env := os.environ.get("AGENTRIG_CONFIG"):
        return Path(env)
    default = Path("agentrig.toml")
    return default if default.exists() else None


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the settings; raise :class:`ConfigError` naming every bad key and value."""
    toml = config_path(path)
    if toml is not None and not toml.is_file():
        raise ConfigError(f"configuration file {str(toml)!r} does not exist")
    token = _toml_path.set(toml)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, toml)) from None
    except ValueError as exc:  # TOML syntax errors
        raise ConfigError(f"cannot read {toml}: {exc}") from None
    finally:
        _toml_path.reset(token)


def _describe(exc: ValidationError, toml: Path | None) -> str:
    where = f" (from {toml} and AGENTRIG_* variables)" if toml else " (from AGENTRIG_* variables)"
    lines = [f"invalid configuration{where}:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "value_error":
            # our own validators name the sub-key, the value and what is expected
            lines.append(f"  {key}.{message}" if key else f"  {message}")
        else:
            lines.append(f"  {key} = {error.get('input')!r}: {message}")
    return "\n".join(lines)
