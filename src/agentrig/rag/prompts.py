"""The knowledge chat's prompts: Jinja2 templates in a TOML file that users can override.

The defaults are ``prompts.toml`` beside this module; ``[knowledge] prompts_file`` names
a file whose keys replace them one by one. Templates are compiled once, with
``StrictUndefined`` so that a misspelt variable is an error, not an empty string.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError

from agentrig.errors import ConfigError

DEFAULTS = Path(__file__).with_name("prompts.toml")
NAMES = ("instructions", "search_tool", "search_result")


class Prompts:
    """The compiled templates; ``render(name, **variables)`` gives the text."""

    def __init__(self, templates: dict[str, str], source: str = "prompts") -> None:
        environment = Environment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self.templates: dict[str, Template] = {}
        for name in NAMES:
            if name not in templates:
                raise ConfigError(f"{source}: the prompt {name!r} is missing")
            try:
                self.templates[name] = environment.from_string(templates[name].strip())
            except TemplateSyntaxError as exc:
                raise ConfigError(
                    f"{source}: prompt {name!r}, line {exc.lineno}: {exc.message}"
                ) from None

    @classmethod
    def load(cls, path: Path | None = None) -> Prompts:
        """The defaults, with the keys of ``path`` (if given) in their place."""
        templates = _read(DEFAULTS)
        if path is not None:
            unknown = set(own := _read(path)) - set(NAMES)
            if unknown:
                raise ConfigError(
                    f"{path}: unknown prompt(s) {sorted(unknown)}; known: {list(NAMES)}"
                )
            templates |= own
        return cls(templates, str(path or DEFAULTS))

    def render(self, name: str, **variables: Any) -> str:
        return self.templates[name].render(**variables).strip()


def _read(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"prompts file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    bad = [key for key, value in data.items() if not isinstance(value, str)]
    if bad:
        raise ConfigError(f"{path}: prompts must be strings, not {bad}")
    return data
