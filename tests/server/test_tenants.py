"""API keys and tenant isolation on a live server with authentication on, on SQLite and
PostgreSQL: two keys are created in the server's database before it starts; every read and
delete route is then tried with the other tenant's key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from agentrig.store import Database
from agentrig.store.api_keys import ApiKeyStore
from agentrig.testing.fake_openai_server import Reply
from tests.server.conftest import serve


@dataclass
class Tenants:
    v1: str
    url: str
    fake: object
    a: httpx.Client
    b: httpx.Client
    tenant_a: str
    tenant_b: str


async def _create_keys(database_url: str) -> list[tuple[str, str]]:
    database = Database(database_url)
    try:
        await database.upgrade()
        keys = ApiKeyStore(database)
        created = [await keys.create("alice"), await keys.create("bob")]
        return [(key, record.tenant) for key, record in created]
    finally:
        await database.aclose()


@pytest.fixture
def tenants(tmp_path, database_url, fake_server) -> Iterator[Tenants]:
    live, _, _ = serve(tmp_path, database_url, fake_server)
    (key_a, tenant_a), (key_b, tenant_b) = asyncio.run(_create_keys(database_url))
    assert tenant_a != tenant_b
    with live:
        v1 = live.url + "/v1"
        with (
            httpx.Client(base_url=v1, headers={"authorization": f"Bearer {key_a}"}) as a,
            httpx.Client(base_url=v1, headers={"authorization": f"Bearer {key_b}"}) as b,
        ):
            yield Tenants(v1, live.url, fake_server, a, b, tenant_a, tenant_b)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.request.url, response.text)
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_requests_without_a_valid_key_are_401(tenants):
    routes = [
        ("POST", "/responses", {"model": "default", "input": "hi"}),
        ("GET", "/responses/resp_x", None),
        ("POST", "/conversations", {}),
        ("GET", "/conversations/conv_x/items", None),
        ("POST", "/chat/completions", {"model": "default", "messages": []}),
        ("GET", "/models", None),
    ]
    for method, path, body in routes:
        url = tenants.v1 + path
        assert_error(httpx.request(method, url, json=body), 401, "missing_api_key")
        for header in ("Bearer sk-agentrig-wrong", "Bearer", "Basic YWxpY2U6c2VjcmV0"):
            response = httpx.request(method, url, json=body, headers={"authorization": header})
            assert_error(response, 401)
        wrong = {"authorization": "Bearer sk-agentrig-not-a-key"}
        assert_error(httpx.request(method, url, json=body, headers=wrong), 401, "invalid_api_key")
    assert tenants.fake.requests == []  # nothing reached a model
    assert httpx.get(tenants.url + "/health").status_code == 200  # liveness needs no key
    assert tenants.a.get("/models").status_code == 200


def test_another_tenants_objects_answer_404(tenants):
    a, b = tenants.a, tenants.b
    tenants.fake.script(Reply(text="Stored for A."), Reply(text="In A's conversation."))
    response = a.post("/responses", json={"model": "default", "input": "secret of A"})
    assert response.status_code == 200, response.text
    response_id = response.json()["id"]
    conversation = a.post(
        "/conversations",
        json={
            "metadata": {"owner": "A"},
            "items": [{"type": "message", "role": "user", "content": "A's first words"}],
        },
    ).json()
    conversation_id = conversation["id"]
    turn = a.post(
        "/responses", json={"model": "default", "input": "go on", "conversation": conversation_id}
    )
    assert turn.status_code == 200, turn.text
    items = a.get(f"/conversations/{conversation_id}/items", params={"order": "asc"}).json()
    item_id = items["data"][0]["id"]
    assert len(items["data"]) == 3
    requests_so_far = len(tenants.fake.requests)

    message = {"type": "message", "role": "user", "content": "B's words"}
    tried = [
        ("GET", f"/responses/{response_id}", None),
        ("GET", f"/responses/{response_id}/input_items", None),
        ("POST", f"/responses/{response_id}/cancel", None),
        ("DELETE", f"/responses/{response_id}", None),
        ("GET", f"/conversations/{conversation_id}", None),
        ("POST", f"/conversations/{conversation_id}", {"metadata": {"owner": "B"}}),
        ("GET", f"/conversations/{conversation_id}/items", None),
        ("POST", f"/conversations/{conversation_id}/items", {"items": [message]}),
        ("GET", f"/conversations/{conversation_id}/items/{item_id}", None),
        ("DELETE", f"/conversations/{conversation_id}/items/{item_id}", None),
        ("DELETE", f"/conversations/{conversation_id}", None),
    ]
    for method, path, body in tried:
        error = assert_error(b.request(method, path, json=body), 404, "not_found")
        assert tenants.tenant_a not in error["message"]
    error = assert_error(
        b.post(
            "/responses",
            json={"model": "default", "input": "x", "previous_response_id": response_id},
        ),
        400,
        "previous_response_not_found",
    )
    assert error["param"] == "previous_response_id"
    error = assert_error(
        b.post(
            "/responses", json={"model": "default", "input": "x", "conversation": conversation_id}
        ),
        404,
        "not_found",
    )
    assert error["param"] == "conversation"
    assert len(tenants.fake.requests) == requests_so_far  # B got nothing of A's to a model

    # A still has everything, unchanged
    stored = a.get(f"/responses/{response_id}")
    assert stored.status_code == 200 and stored.json()["output"][0]["content"][0]["text"] == (
        "Stored for A."
    )
    inputs = a.get(f"/responses/{response_id}/input_items").json()["data"]
    assert [item["content"][0]["text"] for item in inputs] == ["secret of A"]
    assert a.get(f"/conversations/{conversation_id}").json()["metadata"] == {"owner": "A"}
    again = a.get(f"/conversations/{conversation_id}/items", params={"order": "asc"}).json()
    assert again["data"] == items["data"]
    assert a.get(f"/conversations/{conversation_id}/items/{item_id}").status_code == 200

    # B's own objects are B's alone, and A can then delete A's
    tenants.fake.script(Reply(text="B's answer."))
    own = b.post("/responses", json={"model": "default", "input": "B's question"}).json()
    assert b.get(f"/responses/{own['id']}").status_code == 200
    assert_error(a.get(f"/responses/{own['id']}"), 404, "not_found")
    assert a.delete(f"/conversations/{conversation_id}/items/{item_id}").status_code == 200
    assert a.delete(f"/conversations/{conversation_id}").status_code == 200
    assert a.delete(f"/responses/{response_id}").status_code == 200
    assert_error(a.get(f"/responses/{response_id}"), 404, "not_found")


def test_another_tenants_background_response_cannot_be_cancelled(tenants):
    from agentrig.testing.fake_openai_server import Hang

    tenants.fake.script(Hang(1.5, then=Reply(text="finished for A")))
    queued = tenants.a.post(
        "/responses", json={"model": "default", "input": "slow", "background": True}
    ).json()
    assert queued["status"] in ("queued", "in_progress")
    assert_error(tenants.b.post(f"/responses/{queued['id']}/cancel"), 404, "not_found")
    assert_error(tenants.b.get(f"/responses/{queued['id']}"), 404, "not_found")
    cancelled = tenants.a.post(f"/responses/{queued['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
