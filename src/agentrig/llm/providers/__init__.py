"""Provider adapters, each on its vendor's official SDK, created from configuration.

SDKs are imported only when a provider of that kind is first used, so that a user who
installed ``agentrig`` without the ``anthropic`` or ``gemini`` extra never needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from agentrig.config import ProviderConfig
from agentrig.errors import AuthenticationFailed, ConfigError
from agentrig.llm.types import EmbeddingBackend, LLMClient

_EXTRAS = {"anthropic": "anthropic", "gemini": "gemini", "local": "local"}


def _missing(kind: str, exc: ImportError) -> ConfigError:
    return ConfigError(
        f"provider kind {kind!r} needs a package that is not installed ({exc.name}): "
        f"pip install 'agentrig[{_EXTRAS.get(kind, kind)}]'"
    )


def _require_key(name: str, config: ProviderConfig, model: str) -> None:
    if config.api_key_env and not config.api_key:
        raise AuthenticationFailed(
            f"the environment variable {config.api_key_env} holding the API key is not set",
            provider=name,
            model=model,
        )


# kind -> (module, chat client class, embedder class or None)
_ADAPTERS = {
    "openai": ("openai_chat", "OpenAIChatClient", "OpenAIEmbedder"),
    "anthropic": ("anthropic_messages", "AnthropicClient", None),
    "gemini": ("gemini", "GeminiClient", "GeminiEmbedder"),
    "local": ("local", "LocalChatClient", None),
}
_LOCAL_EMBEDDER = ("local_embeddings", "LocalEmbedder")


def create_client(name: str, config: ProviderConfig, model: str) -> LLMClient:
    """A chat client for ``model`` on the provider ``name`` configured by ``config``."""
    module, chat, _ = _ADAPTERS[config.kind]
    return _create(name, config, model, module, chat)


def create_embedder(name: str, config: ProviderConfig, model: str) -> EmbeddingBackend:
    """An embedding backend for ``model`` on the provider ``name``."""
    module, _, embedder = _ADAPTERS[config.kind]
    if config.kind == "local":
        module, embedder = _LOCAL_EMBEDDER
    if embedder is None:
        raise ConfigError(f"provider {name!r} of kind {config.kind!r} has no embeddings")
    return _create(name, config, model, module, embedder)


def _create(name: str, config: ProviderConfig, model: str, module: str, class_name: str) -> Any:
    _require_key(name, config, model)
    try:
        adapter = getattr(importlib.import_module(f"agentrig.llm.providers.{module}"), class_name)
    except ImportError as exc:
        raise _missing(config.kind, exc) from exc
    arguments: dict[str, Any] = {"provider": name, "options": config.options}
    if config.kind != "local":
        arguments.update(api_key=config.api_key, base_url=config.base_url)
    return adapter(_vendor_model(config, model), **arguments)


def _vendor_model(config: ProviderConfig, model: str) -> str:
    """The name the vendor knows ``model`` by (a configured alias may rename it)."""
    entry = config.models.get(model)
    return entry.name if entry is not None and entry.name else model
