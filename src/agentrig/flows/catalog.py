"""``FlowCatalog``: the flows of the crews folder, as the CLI, the server and workers run them.

A flow's crews come from the :class:`~agentrig.crews.catalog.CrewCatalog` of the same
folder, built for the tenant the flow is built for (a knowledge search in a flow searches
that tenant's documents only), so flows are kept per (name, tenant) like crews.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentrig.crews.catalog import EXAMPLES, CrewCatalog
from agentrig.errors import AgentrigError
from agentrig.flows.flow import Flow
from agentrig.flows.loader import find_flows, load_flow


class UnknownFlow(AgentrigError, LookupError):
    """No flow of that name in the catalog's folder."""


class FlowCatalog:
    """The flows of ``crews.folder`` (and the ready-made ones, with ``examples``) by name;
    ``functions`` and ``output_types`` (else the crews' types) resolve the names their YAML
    uses, the crews' tools their agents' tools; runs are stored in ``database_url`` (else
    the configured database)."""

    def __init__(
        self,
        crews: CrewCatalog,
        *,
        functions: Any = None,
        output_types: Any = None,
        database_url: str | None = None,
        examples: bool = False,
    ) -> None:
        self.crews = crews
        self.functions = functions
        self.output_types = crews.output_types if output_types is None else output_types
        self.database_url = database_url
        self.paths: dict[str, Path] = {
            **(find_flows(EXAMPLES) if examples else {}),
            **find_flows(crews.folder),
        }
        self._built: dict[tuple[str, str], Flow] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.paths

    def __len__(self) -> int:
        return len(self.paths)

    def names(self) -> list[str]:
        return sorted(self.paths)

    def get(self, name: str, tenant: str = "default") -> Flow:
        """The flow ``name`` for ``tenant``; :class:`UnknownFlow` names the flows there are.
        A YAML error is a ``ConfigError`` naming the file, the line and the key."""
        flow = self._built.get((name, tenant))
        if flow is not None:
            return flow
        path = self.paths.get(name)
        if path is None:
            raise UnknownFlow(
                f"no flow named {name!r} in {self.crews.folder}; flows: {self.names()}"
            )
        flow = load_flow(
            path,
            crews=lambda crew: self.crews.get(crew, tenant),
            functions=self.functions,
            output_types=self.output_types,
            tools=self.crews.tools,
            knowledge=self.crews.knowledge,
            tenant=tenant,
            router=self.crews.router,
            database_url=self.database_url,
        )
        self._built[(name, tenant)] = flow
        return flow

    def describe(self, name: str) -> dict[str, Any]:
        """What ``GET /api/v1/flows`` shows of a flow: states, transitions, inputs, graph."""
        flow = self.get(name)
        return {
            "name": name,
            "object": "flow",
            "description": flow.description,
            "states": [
                {"name": s.name, "kind": s.kind, "initial": s.initial, "final": s.final}
                for s in flow.graph.states.values()
            ],
            "transitions": [
                {
                    "from": t.source,
                    "to": t.target,
                    "condition": t.condition.label,
                    "priority": t.priority,
                }
                for t in flow.graph.transitions
            ],
            "inputs": flow.inputs,
            "mermaid": flow.mermaid(),
        }
