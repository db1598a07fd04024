import sys

import pytest

from agentrig.config import ProviderConfig
from agentrig.errors import ConfigError
from agentrig.llm.providers import create_client, create_embedder
from agentrig.llm.providers.anthropic_messages import AnthropicClient
from agentrig.llm.providers.local import LocalChatClient
from agentrig.llm.providers.local_embeddings import LocalEmbedder
from agentrig.llm.providers.openai_chat import OpenAIChatClient, OpenAIEmbedder


def test_each_kind_gets_its_adapter_with_the_vendor_model_name(monkeypatch):
    monkeypatch.setenv("KEY", "secret")
    config = ProviderConfig(kind="openai", api_key_env="KEY", models={"small": {"name": "gpt-x"}})
    client = create_client("oa", config, "small")
    assert isinstance(client, OpenAIChatClient)
    assert (client.provider, client.model) == ("oa", "gpt-x")
    assert isinstance(create_embedder("oa", config, "emb"), OpenAIEmbedder)
    anthropic = create_client("claude", ProviderConfig(kind="anthropic", api_key_env="KEY"), "m")
    assert isinstance(anthropic, AnthropicClient)
    assert isinstance(
        create_client("local", ProviderConfig(kind="local"), "smollm2"), LocalChatClient
    )
    local = ProviderConfig(kind="local")
    assert isinstance(create_embedder("local", local, "all-minilm-l6-v2"), LocalEmbedder)


def test_a_kind_without_embeddings_says_so(monkeypatch):
    monkeypatch.setenv("KEY", "secret")
    with pytest.raises(ConfigError, match="'claude' of kind 'anthropic' has no embeddings"):
        create_embedder("claude", ProviderConfig(kind="anthropic", api_key_env="KEY"), "m")


def test_a_missing_sdk_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.genai", None)
    monkeypatch.delitem(sys.modules, "agentrig.llm.providers.gemini", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'agentrig\[gemini\]'"):
        create_client("g", ProviderConfig(kind="gemini"), "gemini-2.5-flash")
