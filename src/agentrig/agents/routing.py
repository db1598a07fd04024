"""The router runs use when none is given: the configured one (agentrig.toml), built once.

A floor of its own so that the loop, which resolves an agent's model, and the runner, which
lets callers replace the default, both stand on it instead of importing each other.
"""

from __future__ import annotations

from agentrig.llm.router import ModelRouter

_default_router: ModelRouter | None = None


def default_router() -> ModelRouter:
    """The configured router, built from ``load_settings()`` on first use."""
    global _default_router
    if _default_router is None:
        from agentrig.config import load_settings

        _default_router = ModelRouter.from_settings(load_settings())
    return _default_router


def set_default_router(router: ModelRouter | None) -> None:
    """Replace the default router (``None``: build it from the settings again)."""
    global _default_router
    _default_router = router
