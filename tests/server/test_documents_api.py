"""/api/v1/documents against a live server: uploads indexed by the in-process job queue
(the real parser, the local embedder, embedded Qdrant), search with sources, download,
re-index, delete, bad input, and tenant isolation."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

import agentrig
from agentrig.store import Database
from agentrig.store.api_keys import ApiKeyStore
from tests.server.conftest import serve

SAMPLES = Path(agentrig.__file__).parent / "samples" / "kb"


def wait_indexed(client: httpx.Client, document_id: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        document = client.get(f"/api/v1/documents/{document_id}").json()
        if document["status"] in ("indexed", "failed"):
            return document
        assert time.monotonic() < deadline, document
        time.sleep(0.1)


def upload(client: httpx.Client, path: Path, **form) -> httpx.Response:
    files = {"file": (path.name, path.read_bytes())}
    return client.post("/api/v1/documents", files=files, data=form)


@pytest.fixture
def live(tmp_path, fake_server):
    server, settings, _ = serve(tmp_path, f"sqlite:///{tmp_path / 'docs.db'}", fake_server)
    with server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client, settings


def test_upload_index_search_download_reindex_delete(live):
    client, _ = live
    ids = {}
    for path in sorted(SAMPLES.iterdir()):
        created = upload(client, path, kb="lumen", metadata=json.dumps({"source": "samples"}))
        assert created.status_code == 202, created.text
        body = created.json()
        assert body["status"] == "pending" and body["job_id"].startswith("job_")
        ids[path.name] = body["id"]
    for name, document_id in ids.items():
        document = wait_indexed(client, document_id)
        assert document["status"] == "indexed" and document["chunk_count"] >= 1, document
        assert document["filename"] == name and document["metadata"] == {"source": "samples"}
    listed = client.get("/api/v1/documents", params={"kb": "lumen"}).json()["data"]
    assert {d["id"] for d in listed} == set(ids.values())
    found = client.get(
        "/api/v1/documents/search",
        params={"q": "how long does a full battery charge take from empty", "kb": "lumen"},
    ).json()["data"]
    assert found[0]["document_id"] == ids["lumen-e3-manual.md"]
    assert found[0]["filename"] == "lumen-e3-manual.md" and "4 hours" in found[0]["text"]
    assert found[0]["heading"].endswith("Battery and charging")
    fuzzy = client.get("/api/v1/documents/search", params={"q": "battery", "mode": "fuzzy"})
    assert fuzzy.status_code == 400 and fuzzy.json()["error"]["param"] == "query.mode", fuzzy.text
    download = client.get(f"/api/v1/documents/{ids['spare-parts.csv']}/download")
    assert download.status_code == 200
    assert download.content == (SAMPLES / "spare-parts.csv").read_bytes()
    assert "spare-parts.csv" in download.headers["content-disposition"]
    again = client.post(f"/api/v1/documents/{ids['returns-faq.txt']}/index")
    assert again.status_code == 202 and again.json()["status"] == "pending"
    assert wait_indexed(client, ids["returns-faq.txt"])["status"] == "indexed"
    gone = client.delete(f"/api/v1/documents/{ids['returns-faq.txt']}")
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert client.get(f"/api/v1/documents/{ids['returns-faq.txt']}").status_code == 404
    hits = client.get(
        "/api/v1/documents/search", params={"q": "return a bike within 30 days", "kb": "lumen"}
    ).json()["data"]
    assert ids["returns-faq.txt"] not in {hit["document_id"] for hit in hits}


def test_bad_uploads_are_clear_errors_and_bad_files_fail_with_a_reason(live, tmp_path):
    client, _ = live
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"PK\x03\x04 not really a docx")
    created = upload(client, broken)
    assert created.status_code == 202
    failed = wait_indexed(client, created.json()["id"])
    assert failed["status"] == "failed" and "DOCX" in failed["reason"]
    sample = SAMPLES / "returns-faq.txt"
    bad_kb = upload(client, sample, kb="Not a valid name!")
    assert bad_kb.status_code == 400 and bad_kb.json()["error"]["param"] == "kb"
    bad_meta = upload(client, sample, metadata="[1, 2]")
    assert bad_meta.status_code == 400 and bad_meta.json()["error"]["param"] == "metadata"
    no_file = client.post("/api/v1/documents", data={"kb": "x"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    empty_query = client.get("/api/v1/documents/search", params={"q": ""})
    assert empty_query.status_code == 400
    assert client.get("/api/v1/documents/doc_missing").status_code == 404
    assert client.delete("/api/v1/documents/doc_missing").status_code == 404
    assert client.post("/api/v1/documents/doc_missing/index").status_code == 404
    listed = client.get("/api/v1/documents").json()["data"]
    assert [d["filename"] for d in listed] == ["broken.docx"]  # the refused uploads kept nothing


def test_oversized_uploads_are_413(tmp_path, fake_server):
    server, settings, _ = serve(tmp_path, f"sqlite:///{tmp_path / 'docs.db'}", fake_server)
    settings.knowledge.max_file_mb = 0.001  # about 1 KB
    with server, httpx.Client(base_url=server.url, timeout=60) as client:
        too_big = client.post("/api/v1/documents", files={"file": ("big.txt", b"x" * 5000)})
        fits = client.post("/api/v1/documents", files={"file": ("small.txt", b"x" * 500)})
        listed = client.get("/api/v1/documents").json()["data"]
    assert too_big.status_code == 413 and "0.001 MB" in too_big.json()["error"]["message"]
    assert fits.status_code == 202 and [d["filename"] for d in listed] == ["small.txt"]


def test_another_tenants_documents_are_invisible(tmp_path, fake_server):
    url = f"sqlite:///{tmp_path / 'docs.db'}"
    server, _, _ = serve(tmp_path, url, fake_server)

    async def keys():
        database = Database(url)
        await database.upgrade()
        try:
            store = ApiKeyStore(database)
            return [(await store.create("a"))[0], (await store.create("b"))[0]]
        finally:
            await database.aclose()

    key_a, key_b = asyncio.run(keys())
    with server:
        a = httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {key_a}"}, timeout=60
        )
        b = httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {key_b}"}, timeout=60
        )
        with a, b:
            created = upload(a, SAMPLES / "warranty-policy.md").json()
            assert wait_indexed(a, created["id"])["status"] == "indexed"
            document_id = created["id"]
            for method, path in (
                ("GET", f"/api/v1/documents/{document_id}"),
                ("GET", f"/api/v1/documents/{document_id}/download"),
                ("POST", f"/api/v1/documents/{document_id}/index"),
                ("DELETE", f"/api/v1/documents/{document_id}"),
            ):
                assert b.request(method, path).status_code == 404, (method, path)
            assert b.get("/api/v1/documents").json()["data"] == []
            search = {"q": "frame warranty years"}
            assert b.get("/api/v1/documents/search", params=search).json()["data"] == []
            assert a.get("/api/v1/documents/search", params=search).json()["data"]
            assert httpx.get(f"{server.url}/api/v1/documents").status_code == 401
