"""Provider adapters, each on its vendor's official SDK, created from configuration.

SDKs are imported only when a provider of that kind is first used, so that a user who
installed ``agentrig`` without the ``anthropic`` or ``gemini`` extra never needs them.
"""

from __future__ import annotations

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


def create_client(name: str, config: ProviderConfig, model: str) -> LLMClient:
    """A chat client for ``model`` on the provider ``name`` configured by ``config``."""
    _require_key(name, config, model)
    common = {"provider": name, "options": config.options}
    remote = {"api_key": config.api_key, "base_url": config.base_url}
    vendor_model = _vendor_model(config, model)
    try:
        if config.kind == "openai":
            from agentrig.llm.providers.openai_chat import OpenAIChatClient

            return OpenAIChatClient(vendor_model, **common, **remote)
        if config.kind == "anthropic":
            from agentrig.llm.providers.anthropic_messages import AnthropicClient

            return AnthropicClient(vendor_model, **common, **remote)
        if config.kind == "gemini":
            from agentrig.llm.providers.gemini import GeminiClient

            return GeminiClient(vendor_model, **common, **remote)
        from agentrig.llm.providers.local import LocalChatClient

        return LocalChatClient(vendor_model, **common)
    except ImportError as exc:
        raise _missing(config.kind, exc) from exc


def create_embedder(name: str, config: ProviderConfig, model: str) -> EmbeddingBackend:
    """An embedding backend for ``model`` on the provider ``name``."""
    _require_key(name, config, model)
    common = {"provider": name, "options": config.options}
    remote = {"api_key": config.api_key, "base_url": config.base_url}
    vendor_model = _vendor_model(config, model)
    try:
        if config.kind == "openai":
            from agentrig.llm.providers.openai_chat import OpenAIEmbedder

            return OpenAIEmbedder(vendor_model, **common, **remote)
        if config.kind == "gemini":
            from agentrig.llm.providers.gemini import GeminiEmbedder

            return GeminiEmbedder(vendor_model, **common, **remote)
        if config.kind == "local":
            from agentrig.llm.providers.local_embeddings import LocalEmbedder

            return LocalEmbedder(vendor_model, **common)
    except ImportError as exc:
        raise _missing(config.kind, exc) from exc
    raise ConfigError(f"provider {name!r} of kind {config.kind!r} has no embeddings")


def _vendor_model(config: ProviderConfig, model: str) -> str:
    """The name the vendor knows ``model`` by (a configured alias may rename it)."""
    entry = config.models.get(model)
    return entry.name if entry is not None and entry.name else model
