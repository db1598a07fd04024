"""schemathesis against the live server's ``/openapi.json``, on SQLite and PostgreSQL.

For every operation, requests generated from the document (valid ones, and invalid ones: wrong
types, missing fields, bad query values) must never get a 5xx, and every answer must be
what the document says: a documented status code and content type, a body matching the
documented schema. Operations on an object are also tried on real ones (a stored response, a
conversation and one of its items), and generated Responses and Chat bodies sometimes name a
model the server has, so that the model path runs too (the fake upstream answers "ok").
"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agentrig.testing.fake_openai_server import Reply
from tests.server.conftest import serve

EXAMPLES = 20  # per operation and generation mode; each round of real ids adds as many
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, unshrunk
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
MODELS = st.sampled_from([None, None, "default", "fake/m", "agent:maths", "nosuchmodel"])


def real_objects(served) -> dict[str, str]:
    """A stored response and a conversation with an item, for the path parameters."""
    served.fake.script(Reply(text="stored"))
    response = httpx.post(f"{served.v1}/responses", json={"model": "default", "input": "x"})
    conversation = httpx.post(
        f"{served.v1}/conversations",
        json={"items": [{"type": "message", "role": "user", "content": "hello"}]},
    ).json()
    items = httpx.get(f"{served.v1}/conversations/{conversation['id']}/items").json()
    return {
        "response_id": response.json()["id"],
        "conversation_id": conversation["id"],
        "item_id": items["data"][0]["id"],
    }


def exercise(served, operation, mode: GenerationMode, path_parameters=None) -> int:
    """Send ``EXAMPLES`` generated requests to one operation; return how many were sent."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
    sent = []

    @SETTINGS
    @given(case=strategy, model=MODELS)
    def run(case, model) -> None:
        if model is not None and isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = model  # sometimes a model the server has
        response = case.call(base_url=served.url, timeout=15)
        case.validate_response(response, checks=CHECKS)
        sent.append(response.status_code)

    run()
    return len(sent)


def test_no_generated_request_gets_a_5xx_and_every_answer_is_documented(served):
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    sent = 0
    for operation in operations:
        sent += exercise(served, operation, GenerationMode.POSITIVE)
        if {"parameters", "requestBody"} & operation.definition.raw.keys():  # something to break
            sent += exercise(served, operation, GenerationMode.NEGATIVE)
        names = set(re.findall(r"{(\w+)}", operation.path))
        if names:  # again on objects that exist, made afresh as DELETEs remove them
            real = {name: value for name, value in real_objects(served).items() if name in names}
            sent += exercise(served, operation, GenerationMode.POSITIVE, real)
    assert sent >= len(operations) * EXAMPLES  # hypothesis may stop early on small spaces
    assert httpx.get(f"{served.url}/health").status_code == 200


ISSUE_ROUTES = {
    ("POST", "/v1/responses"),
    ("GET", "/v1/responses/{response_id}"),
    ("DELETE", "/v1/responses/{response_id}"),
    ("GET", "/v1/responses/{response_id}/input_items"),
    ("POST", "/v1/responses/{response_id}/cancel"),
    ("POST", "/v1/conversations"),
    ("GET", "/v1/conversations/{conversation_id}"),
    ("POST", "/v1/conversations/{conversation_id}"),
    ("DELETE", "/v1/conversations/{conversation_id}"),
    ("POST", "/v1/conversations/{conversation_id}/items"),
    ("GET", "/v1/conversations/{conversation_id}/items"),
    ("GET", "/v1/conversations/{conversation_id}/items/{item_id}"),
    ("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
}
KNOWLEDGE_ROUTES = {
    ("POST", "/api/v1/documents"),
    ("GET", "/api/v1/documents"),
    ("GET", "/api/v1/documents/search"),
    ("GET", "/api/v1/documents/{document_id}"),
    ("DELETE", "/api/v1/documents/{document_id}"),
    ("POST", "/api/v1/documents/{document_id}/index"),
    ("GET", "/api/v1/documents/{document_id}/download"),
    ("POST", "/api/v1/chat"),
    ("POST", "/api/v1/chat/async"),
    ("GET", "/api/v1/chat/jobs/{job_id}"),
    ("POST", "/api/v1/chat/stream"),
}
CREW_ROUTES = {
    ("GET", "/api/v1/crews"),
    ("POST", "/api/v1/crews/{name}/kickoff"),
    ("GET", "/api/v1/crews/runs"),
    ("GET", "/api/v1/crews/runs/{run_id}"),
    ("POST", "/api/v1/crews/runs/{run_id}/approve"),
    ("POST", "/api/v1/crews/runs/{run_id}/revise"),
}
FLOW_ROUTES = {
    ("GET", "/api/v1/flows"),
    ("GET", "/api/v1/flows/{name}"),
    ("POST", "/api/v1/flows/{name}/runs"),
    ("GET", "/api/v1/flows/runs"),
    ("GET", "/api/v1/flows/runs/{run_id}"),
    ("POST", "/api/v1/flows/runs/{run_id}/approve"),
    ("POST", "/api/v1/flows/runs/{run_id}/revise"),
    ("POST", "/api/v1/flows/runs/{run_id}/reply"),
}


def test_openapi_lists_every_route_of_the_issue(tmp_path, fake_server):
    live, _, _ = serve(tmp_path, f"sqlite:///{tmp_path / 'doc.db'}", fake_server)
    with live:
        document = httpx.get(f"{live.url}/openapi.json").json()
    paths = document["paths"]
    listed = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert listed == ISSUE_ROUTES | KNOWLEDGE_ROUTES | CREW_ROUTES | FLOW_ROUTES
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # errors are 400s in OpenAI's envelope
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for method, path in ISSUE_ROUTES:
        operation = paths[path][method.lower()]
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        if path.startswith("/v1/"):
            assert operation["security"] == [{"ApiKey": []}]
            for status in ("401", "4XX"):
                error = responses[status]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path)
        ok = responses["200"]["content"]
        assert ok, (method, path)
    create = paths["/v1/responses"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/CreateResponseRequest"}
    assert "model" in schemas["CreateResponseRequest"]["required"]
    answers = create["responses"]["200"]["content"]
    assert answers["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResponseResource"
    }
    event = answers["text/event-stream"]["itemSchema"]["properties"]["data"]["contentSchema"]
    kinds = {kind for branch in event["oneOf"] for kind in branch["properties"]["type"]["enum"]}
    assert {"response.created", "response.output_text.delta", "response.completed"} <= kinds
    resource = schemas["ResponseResource"]
    assert set(resource["required"]) == set(resource["properties"])  # every field, always
    assert paths["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"]
    assert set(paths["/ready"]["get"]["responses"]) == {"200", "503"}


def test_what_schemathesis_found_answers_4xx(served):
    """Requests that once got a 500 (kept here, as generation may not find them again)."""
    served.fake.script(Reply(text="stored"))
    stored = httpx.post(f"{served.v1}/responses", json={"model": "default", "input": "x"}).json()
    conversation = httpx.post(f"{served.v1}/conversations", json={}).json()["id"]
    message = {"type": "message", "role": "user", "content": "x"}
    function = {"type": "function", "name": "f"}
    found = [
        # an unknown pagination cursor
        ("GET", f"/responses/{stored['id']}/input_items?after=msg_unknown", None, 400),
        ("GET", f"/conversations/{conversation}/items?after=msg_unknown", None, 400),
        # empty ids were taken for none, then failed when the response was stored
        ("POST", "/responses", {"model": "default", "conversation": {"id": ""}}, 404),
        ("POST", "/responses", {"model": "default", "previous_response_id": ""}, 400),
        # unhashable values where a name or a type was expected
        ("POST", "/responses", {"model": "default", "tools": [{**function, "name": {}}]}, 400),
        (
            "POST",
            "/responses",
            {"model": "m", "tools": [function], "tool_choice": {"type": "function", "name": []}},
            400,
        ),
        ("POST", "/responses", {"model": "default", "input": [{"type": ["message"]}]}, 400),
        ("POST", "/responses", {"model": "default", "input": [{**message, "content": [{}]}]}, 400),
        ("POST", "/conversations", {"items": [{"type": {"a": 1}}]}, 400),
        # a NUL in an id, or an id longer than the store's columns (PostgreSQL refused them)
        ("GET", "/responses/resp_%00", None, 400),
        ("GET", f"/conversations/{conversation}/items?after=%00", None, 400),
        ("GET", "/../api/v1/crews/runs?crew=a%00b", None, 400),
        ("GET", "/../api/v1/flows/runs?flow=a%00b", None, 400),
        ("GET", "/../api/v1/flows/runs?status=a%00b", None, 400),
        ("POST", "/responses", {"model": "default", "previous_response_id": "resp_\x00"}, 400),
        ("POST", "/responses", {"model": "default", "input": [{**message, "id": "\x00"}]}, 400),
        (
            "POST",
            f"/conversations/{conversation}/items",
            {"items": [{**message, "id": "m" * 201}]},
            400,
        ),
        # chat bodies read as dicts without checking their shape
        (
            "POST",
            "/chat/completions",
            {"model": "default", "messages": [{**message, "content": [{"type": {}}]}]},
            400,
        ),
        (
            "POST",
            "/chat/completions",
            {
                "model": "default",
                "messages": [message],
                "tools": [{"type": "function", "function": {}}],
            },
            400,
        ),
        (
            "POST",
            "/chat/completions",
            {
                "model": "default",
                "messages": [{"role": "assistant", "tool_calls": [{"function": "f"}]}],
            },
            400,
        ),
        ("POST", "/responses", {"model": "default", "stream": True, "background": True}, 400),
    ]
    for method, path, body, status in found:
        response = httpx.request(method, served.v1 + path, json=body, timeout=15)
        assert response.status_code == status, (method, path, body, response.text)
        assert response.json()["error"]["message"]
    assert len(served.fake.requests) == 1  # none of them reached the model
