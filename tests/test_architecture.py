"""The layering rules of DEVELOPERS.md, checked on the source: inner layers never import
outer ones, only agentrig/llm/ may import a provider SDK, the agent runtime stands on floors
(its data below its behaviour, no import circles) and crews use the runtime only through
``agentrig.agents``' public names."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src" / "agentrig"
PROVIDER_SDKS = ("openai", "anthropic", "google.genai", "llama_cpp")
SHARED = {"config", "items", "errors", "usage"}
ALLOWED = {
    "shared": SHARED,
    "llm": SHARED | {"llm"},
    "store": SHARED | {"store"},
    "sessions": SHARED | {"store", "sessions"},
    "tools": SHARED | {"llm", "store", "tools", "agents"},
    "agents": SHARED | {"llm", "store", "sessions", "tools", "agents"},
    "knowledge": SHARED | {"llm", "store", "knowledge"},
    "rag": SHARED | {"llm", "store", "sessions", "tools", "agents", "knowledge", "rag"},
    "testing": SHARED | {"llm", "store", "sessions", "tools", "agents", "testing"},
    "crews": SHARED | {"llm", "store", "sessions", "tools", "agents", "knowledge", "rag", "crews"},
    "flows": SHARED
    | {"llm", "store", "sessions", "tools", "agents", "knowledge", "rag", "crews", "flows"},
    "jobs": SHARED
    | {"llm", "store", "sessions", "tools", "agents", "knowledge", "rag", "crews", "flows"}
    | {"jobs"},
    "server": SHARED
    | {"llm", "store", "sessions", "tools", "agents", "knowledge", "rag", "crews", "flows"}
    | {"jobs", "server"},
}
# The agent runtime's floors, lowest first: a module imports only from its own floor's type
# hints or from floors below it, and its run-time imports form no circle.
RUNTIME_FLOORS = [
    {"routing", "events", "context", "guardrails", "agent", "state", "result"},  # data
    {"streaming"},
    {"loop"},
    {"runner"},
    {"agent_runner"},
]


def layer_of(module: str) -> str:
    """``agentrig.llm.router`` -> ``llm``; the shared modules -> ``shared``."""
    part = module.split(".")[1] if "." in module else ""
    if part in SHARED or part in ("", "__init__"):
        return "shared"
    return part


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of the nodes inside ``if TYPE_CHECKING:`` blocks (hints, never run)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside |= {id(child) for statement in node.body for child in ast.walk(statement)}
    return inside


def imports(source: str, *, runtime_only: bool = False) -> list[str]:
    names = []
    tree = ast.parse(source)
    hints = _type_checking_nodes(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def violations(module: str, source: str) -> list[str]:
    found = []
    layer = layer_of(module)
    for name in imports(source):
        if layer != "llm" and any(
            name == sdk or name.startswith(sdk + ".") for sdk in PROVIDER_SDKS
        ):
            found.append(f"{module} imports the provider SDK {name}")
        if name.startswith("agentrig.") and layer in ALLOWED and module != "agentrig.__init__":
            target = layer_of(name)
            allowed = ALLOWED[layer] | ({"shared"} if layer != "shared" else set())
            if target not in allowed and not (layer == "shared" and target in SHARED | {"shared"}):
                found.append(f"{module} ({layer}) imports {name} ({target})")
    return found


def package_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(relative.parts), path.read_text()


def test_no_layer_imports_an_outer_one_and_sdks_stay_in_llm():
    problems = [
        problem for module, source in package_modules() for problem in violations(module, source)
    ]
    assert problems == []


def test_the_checker_catches_violations():
    assert violations("agentrig.agents.loop", "import openai") == [
        "agentrig.agents.loop imports the provider SDK openai"
    ]
    assert violations("agentrig.store.db", "from google.genai import types")
    assert violations("agentrig.llm.router", "from agentrig.store import Database") == [
        "agentrig.llm.router (llm) imports agentrig.store (store)"
    ]
    assert violations("agentrig.items", "from agentrig.llm.types import ModelRequest")
    assert violations("agentrig.server.app", "from agentrig.cli import app")
    assert violations("agentrig.llm.providers.gemini", "from google import genai") == []
    assert violations("agentrig.agents.run", "from agentrig.llm.router import ModelRouter") == []


def runtime_graph(*, runtime_only: bool) -> dict[str, set[str]]:
    """agents/ module -> the agents/ modules it imports (short names, ``__init__`` left out)."""
    graph = {}
    for path in sorted((PACKAGE / "agents").glob("*.py")):
        if path.stem != "__init__":
            names = imports(path.read_text(), runtime_only=runtime_only)
            graph[path.stem] = {
                name.split(".")[2] for name in names if name.startswith("agentrig.agents.")
            }
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle found by a depth-first walk (each reported once per entry)."""
    found, done = [], set()

    def walk(module: str, path: list[str]) -> None:
        if module in path:
            found.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            walk(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        walk(module, [])
    return found


def floor_violations(graph: dict[str, set[str]]) -> list[str]:
    floor = {name: level for level, names in enumerate(RUNTIME_FLOORS) for name in names}
    return [
        f"agents.{module} (floor {floor.get(module)}) imports agents.{target} (floor "
        f"{floor.get(target)})"
        for module, targets in graph.items()
        for target in sorted(targets)
        if module not in floor or target not in floor or floor[target] > floor[module]
    ]


def test_the_agent_runtime_stands_on_floors_without_circles():
    assert floor_violations(runtime_graph(runtime_only=False)) == []
    assert circles(runtime_graph(runtime_only=True)) == []


def test_the_floor_checks_catch_circles_and_upward_imports():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    assert floor_violations({"agent": {"runner"}}) == [
        "agents.agent (floor 0) imports agents.runner (floor 3)"
    ]
    hinted = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import agentrig.agents.x\n"
    assert imports(hinted) == ["typing", "agentrig.agents.x"]
    assert imports(hinted, runtime_only=True) == ["typing"]
    local = "def f():\n    from agentrig.agents.runner import run_nested\n"
    assert imports(local, runtime_only=True) == ["agentrig.agents.runner"]


def crews_violations(module: str, source: str) -> list[str]:
    """Crews and flows reach the runtime only through ``agentrig.agents``; nothing below
    crews imports them."""
    layer = layer_of(module)
    found = []
    for name in imports(source):
        if layer in ("crews", "flows") and name.startswith("agentrig.agents."):
            found.append(f"{module} imports {name}: use agentrig.agents' public names")
        below = layer not in ("crews", "flows", "jobs", "server", "shared") and layer in ALLOWED
        if below and (name == "agentrig.crews" or name.startswith("agentrig.crews.")):
            found.append(f"{module} ({layer}) imports {name}")
    return found


def test_crews_use_the_runtime_only_through_its_public_names():
    problems = [
        problem
        for module, source in package_modules()
        for problem in crews_violations(module, source)
    ]
    assert problems == []
    assert crews_violations("agentrig.crews.crew", "from agentrig.agents.loop import infer")
    assert crews_violations("agentrig.crews.crew", "from agentrig.agents import Runner") == []
    assert crews_violations("agentrig.agents.agent", "from agentrig.crews import Crew")
    assert crews_violations("agentrig.server.app", "from agentrig.crews import Crew") == []


def test_every_module_stays_small():
    sizes = {module: source.count("\n") for module, source in package_modules()}
    assert {module: lines for module, lines in sizes.items() if lines > 500} == {}
