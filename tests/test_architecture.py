"""The layering rules of DEVELOPERS.md, checked on the source: inner layers never import
outer ones, and only agentrig/llm/ may import a provider SDK."""

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
    "jobs": SHARED | {"llm", "store", "sessions", "tools", "agents", "knowledge", "rag", "jobs"},
    "server": SHARED
    | {"llm", "store", "sessions", "tools", "agents", "knowledge", "rag", "jobs", "server"},
}


def layer_of(module: str) -> str:
    """``agentrig.llm.router`` -> ``llm``; the shared modules -> ``shared``."""
    part = module.split(".")[1] if "." in module else ""
    if part in SHARED or part in ("", "__init__"):
        return "shared"
    return part


def imports(source: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source)):
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


def test_every_module_stays_small():
    sizes = {module: source.count("\n") for module, source in package_modules()}
    assert {module: lines for module, lines in sizes.items() if lines > 500} == {}
