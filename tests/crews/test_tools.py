"""Tools named in a crew's YAML beyond the registered ones: the knowledge search of one
tenant's knowledge base, and MCP servers the crew file declares, connected for each kickoff
(the fixture server of tests/tools over stdio)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from agentrig import ModelRouter
from agentrig.crews import Crew
from agentrig.crews.catalog import CrewCatalog, UnknownCrew
from agentrig.errors import ConfigError
from agentrig.testing import ScriptedModel, text, tool_call

from .helpers import sent, tool_outputs

FIXTURE_SCRIPT = Path(__file__).parents[1] / "tools" / "mcp_server_fixture.py"
MANUAL = b"""# Lumen E3 manual

## Charging

A full charge of the Lumen E3 takes about 4 hours at a wall socket.
"""
TASKS = """answer:
  description: "{question}"
  expected_output: A short answer with its source.
  agent: support
"""


def crew_folder(tmp_path: Path, tools: list[str], crew: str = "name: support\n") -> Path:
    """A crew of one agent (model ``scripted/support``) listing ``tools``; the ``- tools``
    items start on line 7 of agents.yaml."""
    folder = tmp_path / "support"
    folder.mkdir(exist_ok=True)
    (folder / "crew.yaml").write_text(crew)
    listed = "".join(f"    - {tool}\n" for tool in tools)
    (folder / "agents.yaml").write_text(
        "support:\n  role: Support agent\n  goal: answer from the manuals\n"
        f"  backstory: Knows where to look.\n  llm: scripted/support\n  tools:\n{listed}"
    )
    (folder / "tasks.yaml").write_text(TASKS)
    return folder


def child_processes() -> set[int]:
    """This process's children (Linux /proc), to see a stdio server's process end."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return children


def scripted(*turns) -> tuple[ModelRouter, ScriptedModel]:
    router, model = ModelRouter(), ScriptedModel(turns)
    router.register("scripted/support", model)
    return router, model


def fixture_server(**options) -> str:
    """A crew file declaring the fixture MCP server as ``fixture``."""
    server = {"command": sys.executable, "args": [str(FIXTURE_SCRIPT)], **options}
    return f"name: support\nmcp_servers:\n  fixture: {json.dumps(server)}\n"


@pytest.fixture
async def manuals(knowledge):
    """The knowledge service with the E3 manual in tenant t1's knowledge base ``manuals``."""
    document = await knowledge.add_document("t1", MANUAL, "e3-manual.md", kb="manuals")
    report = await knowledge.index("t1", document.id)
    assert report.status == "indexed", report
    return knowledge


async def test_an_agent_searches_a_knowledge_base_named_in_yaml(tmp_path, manuals):
    folder = crew_folder(tmp_path, ["knowledge_search(manuals)", "knowledge_search"])
    router, model = scripted(
        [
            tool_call("knowledge_search_manuals", query="charging time"),
            tool_call("knowledge_search", query="charging time"),
        ],
        text("About 4 hours [1]."),
    )
    crew = Crew.from_yaml(folder, router=router, knowledge=manuals, tenant="t1")
    result = await crew.kickoff({"question": "How long does charging take?"})
    assert result.status == "completed" and result.output == "About 4 hours [1]."
    tools = model.requests[0].tools
    assert [spec.name for spec in tools] == ["knowledge_search_manuals", "knowledge_search"]
    assert "'manuals'" in tools[0].description and "'default'" in tools[1].description
    found, default = tool_outputs(model.requests[1])
    assert found.startswith("[1] e3-manual.md (Lumen E3 manual > Charging)\n")
    assert "takes about 4 hours" in found  # the chunk's text, to cite
    assert default == "No results in the knowledge base 'default' for 'charging time'."


async def test_a_served_crew_searches_the_tenant_it_is_built_for(tmp_path, manuals):
    crew_folder(tmp_path, ["knowledge_search(manuals)"])
    router, model = scripted(
        tool_call("knowledge_search_manuals", query="charging"),
        text("4 hours"),
        tool_call("knowledge_search_manuals", query="charging"),
        text("?"),
    )
    catalog = CrewCatalog(tmp_path, router=router, knowledge=manuals)
    assert catalog.names() == ["support"] and catalog.get("support", "t1") is catalog.get(
        "support", "t1"
    )
    await catalog.get("support", "t1").kickoff({"question": "How long?"})
    await catalog.get("support", "t2").kickoff({"question": "How long?"})
    (own,), (other,) = tool_outputs(model.requests[1]), tool_outputs(model.requests[3])
    assert "takes about 4 hours" in own and other.startswith("No results")
    with pytest.raises(UnknownCrew, match=r"no crew named 'nosuch'.*\['support'\]"):
        catalog.get("nosuch")


async def test_the_knowledge_search_sees_only_its_tenants_documents(tmp_path, manuals):
    folder = crew_folder(tmp_path, ["knowledge_search(manuals)"])
    router, model = scripted(tool_call("knowledge_search_manuals", query="charging"), text("?"))
    crew = Crew.from_yaml(folder, router=router, knowledge=manuals, tenant="t2")
    await crew.kickoff({"question": "How long does charging take?"})
    [output] = tool_outputs(model.requests[1])
    assert output == "No results in the knowledge base 'manuals' for 'charging'."


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        (["knowledge_search(Manuals)"],
         r"agents.yaml:7: support.tools.0: invalid knowledge base name 'Manuals'"),
        (["knowledge_search()"], r"agents.yaml:7: support.tools.0: unknown tool"),
    ],
)  # fmt: skip
def test_knowledge_search_errors_name_the_line(tmp_path, knowledge, tools, message):
    given = knowledge if "Manuals" in tools[0] else None
    with pytest.raises(ConfigError, match=message):
        Crew.from_yaml(crew_folder(tmp_path, tools), knowledge=given)


async def test_without_knowledge_the_crew_loads_and_the_search_has_nothing_to_search(tmp_path):
    folder = crew_folder(tmp_path, ["calculator", "knowledge_search(manuals)"])
    router, model = scripted(tool_call("knowledge_search_manuals", query="charging"), text("?"))
    crew = Crew.from_yaml(folder, router=router)  # listed and shown with no knowledge service
    result = await crew.kickoff({"question": "How long does charging take?"})
    assert result.status == "completed"
    tools = model.requests[0].tools
    assert [spec.name for spec in tools] == ["calculator", "knowledge_search_manuals"]
    assert "'manuals'" in tools[1].description
    assert tool_outputs(model.requests[1]) == [
        "No knowledge base is connected, so 'manuals' has no documents to search: answer "
        "from what you know."
    ]


async def test_an_agent_calls_an_mcp_server_the_crew_connects_for_the_kickoff(tmp_path):
    folder = crew_folder(tmp_path, ["calculator", "mcp:fixture"], fixture_server())
    router, model = scripted(tool_call("add", a=2, b=3), text("5"))
    crew = Crew.from_yaml(folder, router=router)
    [server] = crew.mcp_servers
    assert server.name == "fixture" and not server.connected
    assert crew.agents["support"].mcp_servers == (server,)
    before = child_processes()
    result = await crew.kickoff({"question": "2 + 3?"})
    assert result.status == "completed" and result.output == "5"
    assert "add" in [spec.name for spec in model.requests[0].tools]
    assert tool_outputs(model.requests[1]) == ["5"]
    assert not server.connected and child_processes() == before  # closed after the kickoff


class PidAsker:
    """Asks the MCP tool ``pid`` (after ``slow`` when the task says "slow"), then answers
    what it returned, in any number of runs."""

    async def complete(self, request):
        outputs = tool_outputs(request)
        if not outputs and "slow" in sent(request):
            turn = tool_call("slow", seconds=0.5)
        elif not outputs or outputs == ["done"]:
            turn = tool_call("pid")
        else:
            turn = text(outputs[-1])
        return await ScriptedModel([turn]).complete(request)


async def test_concurrent_kickoffs_share_one_connection_and_the_callers_stays_open(tmp_path):
    folder = crew_folder(tmp_path, ["mcp:fixture"], fixture_server(allowed_tools=["pid", "slow"]))
    router = ModelRouter()
    router.register("scripted/support", PidAsker())
    crew = Crew.from_yaml(folder, router=router)
    [server] = crew.mcp_servers
    results = await crew.kickoff_for_each([{"question": "slow"}, {"question": "fast"}])
    assert [result.status for result in results] == ["completed", "completed"]
    # the fast kickoff ended first and left the connection to the slow one: one process
    assert results[0].output == results[1].output and results[0].output.isdigit()
    assert not server.connected
    async with server:
        pid = (await server.call_tool("pid", {})).content[0].text
        await asyncio.gather(crew.kickoff({"question": "c"}), crew.kickoff({"question": "d"}))
        assert server.connected  # the caller's connection is the caller's to close
        assert (await server.call_tool("pid", {})).content[0].text == pid
    assert not server.connected


def test_mcp_server_options_and_transports(tmp_path):
    crew_file = fixture_server(needs_approval=["add"], allowed_tools=["add"]) + (
        '  remote: {url: "http://127.0.0.1:9/mcp", headers: {Authorization: Bearer x}, '
        "timeout: null}\n"
    )
    folder = crew_folder(tmp_path, ["mcp:fixture", "mcp:remote"], crew_file)
    fixture, remote = Crew.from_yaml(folder).mcp_servers
    assert fixture.needs_approval == {"add"} and fixture.allowed_tools == ["add"]
    assert fixture.timeout == 60 and fixture.params.args == [str(FIXTURE_SCRIPT)]
    assert remote.name == "remote" and remote.url == "http://127.0.0.1:9/mcp"
    assert remote.headers == {"Authorization": "Bearer x"} and remote.timeout is None


@pytest.mark.parametrize(
    ("tools", "servers", "message"),
    [
        (["calculator", "mcp:files"], None,
         r"agents.yaml:8: support.tools.1: unknown MCP server 'files'; the crew file's "
         r"mcp_servers declares \['fixture'\]"),
        (["mcp:files"], "name: support\n",
         r"agents.yaml:7: support.tools.0: unknown MCP server 'files'.* declares none"),
        (["calculator"], "mcp_servers:\n  both:\n    command: x\n    url: http://h/mcp\n",
         r"crew.yaml:2: mcp_servers.both: Value error, give either command"),
        (["calculator"], "mcp_servers:\n  web:\n    url: http://h/mcp\n    args: [a]\n",
         r"crew.yaml:2: mcp_servers.web: Value error, args do not go with url"),
        (["calculator"], "mcp_servers:\n  web:\n    url: http://h/mcp\n    retries: 2\n",
         r"crew.yaml:4: mcp_servers.web.retries: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_mcp_errors_name_the_file_the_line_and_the_key(tmp_path, tools, servers, message):
    folder = crew_folder(tmp_path, tools, servers or fixture_server())
    with pytest.raises(ConfigError, match=message):
        Crew.from_yaml(folder)


def test_an_mcp_server_goes_to_agents_not_tasks(tmp_path):
    folder = crew_folder(tmp_path, ["mcp:fixture"], fixture_server())
    (folder / "tasks.yaml").write_text(TASKS + "  tools: [mcp:fixture]\n")
    with pytest.raises(ConfigError, match=r"tasks.yaml:5: answer.tools.0: mcp:fixture is an MCP"):
        Crew.from_yaml(folder)
