"""``CrewCatalog``: the crews of a folder, as the server and the job workers serve them.

The folder is read once (``find_crews``); a crew is built from its YAML when first asked
for, with the catalog's router, and kept. A crew whose tools include the knowledge search
searches one tenant's knowledge bases, so crews are kept per (name, tenant): one tenant's
crew never searches another's documents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentrig.crews.crew import Crew
from agentrig.crews.loader import find_crews
from agentrig.errors import AgentrigError

EXAMPLES = Path(__file__).parent / "examples"  # the ready-made crews and flows


class UnknownCrew(AgentrigError, LookupError):
    """No crew of that name in the catalog's folder."""


class CrewCatalog:
    """The crews of ``folder`` by name (with ``examples``, also the ready-made ones, which
    a crew of the folder with the same name replaces); ``tools`` are user tools their YAML
    may name and ``knowledge`` backs the ``knowledge_search`` tool."""

    def __init__(
        self,
        folder: str | Path,
        *,
        router: Any = None,
        knowledge: Any = None,
        tools: Any = (),
        output_types: Any = (),
        examples: bool = False,
    ) -> None:
        self.folder = Path(folder)
        self.router = router
        self.knowledge = knowledge
        self.tools = tools
        self.output_types = output_types
        self.paths: dict[str, Path] = {
            **(find_crews(EXAMPLES) if examples else {}),
            **find_crews(self.folder),
        }
        self._built: dict[tuple[str, str], Crew] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.paths

    def __len__(self) -> int:
        return len(self.paths)

    def names(self) -> list[str]:
        return sorted(self.paths)

    def get(self, name: str, tenant: str = "default") -> Crew:
        """The crew ``name`` for ``tenant``; :class:`UnknownCrew` names the crews there are.
        A YAML error is a ``ConfigError`` naming the file, the line and the key."""
        crew = self._built.get((name, tenant))
        if crew is not None:
            return crew
        path = self.paths.get(name)
        if path is None:
            raise UnknownCrew(
                f"no crew named {name!r} in {self.folder}; served crews: {self.names()}"
            )
        crew = Crew.from_yaml(
            path,
            router=self.router,
            tools=self.tools,
            output_types=self.output_types,
            knowledge=self.knowledge,
            tenant=tenant,
        )
        self._built[(name, tenant)] = crew
        return crew

    def describe(self, name: str) -> dict[str, Any]:
        """What ``GET /api/v1/crews`` shows of a crew: process, tasks, agents, inputs."""
        crew = self.get(name)
        return {
            "name": name,
            "object": "crew",
            "description": crew.description,
            "process": crew.process.value,
            "tasks": [task.name for task in crew.tasks],
            "agents": list(crew.agents),
            "inputs": crew.inputs,
        }
