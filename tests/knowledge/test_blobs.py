"""Blob stores: one behaviour suite run on a local directory and on a real S3 API server
(moto in server mode on a free 127.0.0.1 port), then what is particular to each."""

from __future__ import annotations

import calendar
import hmac
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import aioboto3
import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer

from agentrig.config import load_settings
from agentrig.knowledge import blobs
from agentrig.knowledge.blobs import (
    BlobNotFound,
    BlobStore,
    BlobStoreError,
    LocalBlobStore,
    S3BlobStore,
    blob_store,
)

ACCESS_KEY, SECRET_KEY, REGION = "test-access-key", "test-secret-key", "us-east-1"
BAD_KEYS = ["", "/etc/passwd", "../outside", "a/../../outside", "a/./b", "a//b", "a/"]
BAD_KEYS += ["a\x00b", "..\\outside"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server for this module's tests; each test uses buckets of its own."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def make_s3_store(endpoint: str, bucket: str | None = None) -> S3BlobStore:
    return S3BlobStore(
        bucket or f"test-{uuid.uuid4().hex[:12]}",
        endpoint_url=endpoint,
        region=REGION,
        path_style=True,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )


@pytest.fixture
async def s3_store(s3_endpoint: str) -> AsyncIterator[S3BlobStore]:
    store = make_s3_store(s3_endpoint)
    yield store
    await store.aclose()


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        made: BlobStore = LocalBlobStore(tmp_path / "blobs")
    else:
        made = make_s3_store(request.getfixturevalue("s3_endpoint"))
    yield made
    await made.aclose()


@pytest.fixture
async def s3_admin(s3_endpoint: str) -> AsyncIterator[object]:
    """A plain aioboto3 client on the same server, to look behind a store's back."""
    session = aioboto3.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    )
    async with session.client("s3", endpoint_url=s3_endpoint) as client:
        yield client


# --- the behaviour both backends share ---------------------------------------------------


async def test_put_then_get_returns_the_bytes(store: BlobStore):
    assert not await store.exists("acme/doc1/report.txt")
    await store.put("acme/doc1/report.txt", b"quarterly numbers", "text/plain")
    assert await store.get("acme/doc1/report.txt") == b"quarterly numbers"
    assert await store.exists("acme/doc1/report.txt")
    assert not await store.exists("acme/doc1/other.txt")


async def test_put_replaces_what_was_there(store: BlobStore):
    await store.put("acme/doc1/a.txt", b"first version, rather long")
    await store.put("acme/doc1/a.txt", b"second")
    assert await store.get("acme/doc1/a.txt") == b"second"


async def test_delete_says_whether_the_blob_was_there(store: BlobStore):
    await store.put("acme/doc1/a.txt", b"x")
    await store.put("acme/doc1/b.txt", b"y")
    assert await store.delete("acme/doc1/a.txt") is True
    assert not await store.exists("acme/doc1/a.txt")
    assert await store.delete("acme/doc1/a.txt") is False
    assert await store.delete("never/was/there") is False
    assert await store.get("acme/doc1/b.txt") == b"y"
    with pytest.raises(BlobNotFound):
        await store.get("acme/doc1/a.txt")


async def test_a_missing_blob_raises_blob_not_found_naming_the_key(store: BlobStore):
    with pytest.raises(BlobNotFound) as raised:
        await store.get("acme/missing/file.pdf")
    assert isinstance(raised.value, KeyError)
    assert raised.value.key == "acme/missing/file.pdf"
    assert "acme/missing/file.pdf" in str(raised.value)
    with pytest.raises(BlobNotFound) as raised:
        await store.open("acme/missing/file.pdf")  # before the first chunk
    assert raised.value.key == "acme/missing/file.pdf"


async def test_open_streams_a_5_mb_blob_whole_in_several_chunks(store: BlobStore):
    data = os.urandom(5 * 1024 * 1024 + 17)
    await store.put("acme/big/blob.bin", data, "application/octet-stream")
    chunks = [chunk async for chunk in await store.open("acme/big/blob.bin")]
    assert len(chunks) > 1
    assert b"".join(chunks) == data


async def test_an_empty_blob_is_a_blob(store: BlobStore):
    await store.put("acme/empty/file", b"")
    assert await store.exists("acme/empty/file")
    assert await store.get("acme/empty/file") == b""
    assert [chunk async for chunk in await store.open("acme/empty/file")] == []


async def test_keys_with_spaces_and_unicode_are_distinct_blobs(store: BlobStore):
    keys = ["acme/doc 1/Résumé final.pdf", "acme/doc 1/日本語 ファイル.txt", "acme/émoji/🙂+%20.md"]
    for index, key in enumerate(keys):
        await store.put(key, f"content {index}".encode())
    for index, key in enumerate(keys):
        assert await store.get(key) == f"content {index}".encode()
        chunks = [chunk async for chunk in await store.open(key)]
        assert b"".join(chunks) == f"content {index}".encode()
    assert not await store.exists("acme/doc%201/Résumé final.pdf")
    assert await store.delete(keys[1]) is True
    assert [await store.exists(key) for key in keys] == [True, False, True]


async def test_binary_data_comes_back_byte_for_byte(store: BlobStore):
    data = bytes(range(256)) * 64 + b"\r\n\x00\r" + b"\xff\xfe\x00\x00"
    await store.put("acme/bin/all-bytes", data)
    assert await store.get("acme/bin/all-bytes") == data


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_keys_that_are_not_plain_relative_paths_are_refused(store: BlobStore, key: str):
    operations = [
        store.put(key, b"x"),
        store.get(key),
        store.open(key),
        store.delete(key),
        store.exists(key),
        store.presigned_url(key, 60),
    ]
    for operation in operations:
        with pytest.raises(ValueError) as raised:
            await operation
        assert repr(key) in str(raised.value)


# --- local ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_local_keys_never_touch_files_outside_the_root(tmp_path: Path, key: str):
    root = tmp_path / "root" / "blobs"
    root.mkdir(parents=True)
    (tmp_path / "outside").write_bytes(b"precious")
    store = LocalBlobStore(root)
    with pytest.raises(ValueError):
        await store.put(key, b"overwritten")
    with pytest.raises(ValueError):
        await store.delete(key)
    assert (tmp_path / "outside").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["blobs", "outside", "root"]


async def test_local_blobs_are_files_under_the_root_in_new_directories(tmp_path: Path):
    store = LocalBlobStore(tmp_path / "files")
    await store.put("acme/doc1/report.pdf", b"%PDF-1.7", "application/pdf")
    assert (tmp_path / "files" / "acme" / "doc1" / "report.pdf").read_bytes() == b"%PDF-1.7"
    assert await store.presigned_url("acme/doc1/report.pdf", 60) is None


async def test_local_failed_write_leaves_the_old_blob_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = LocalBlobStore(tmp_path)
    await store.put("acme/doc1/a.txt", b"old content")

    def disk_fails(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(blobs.os, "fsync", disk_fails)  # after the bytes, before the rename
    with pytest.raises(OSError, match="Input/output error"):
        await store.put("acme/doc1/a.txt", b"new content that never lands")
    with pytest.raises(OSError):
        await store.put("acme/doc1/b.txt", b"a new blob that never lands")
    monkeypatch.undo()
    assert await store.get("acme/doc1/a.txt") == b"old content"
    assert not await store.exists("acme/doc1/b.txt")
    assert [p.name for p in (tmp_path / "acme" / "doc1").iterdir()] == ["a.txt"]


async def test_local_directories_are_not_blobs(tmp_path: Path):
    store = LocalBlobStore(tmp_path)
    await store.put("acme/doc1/a.txt", b"x")
    assert not await store.exists("acme/doc1")
    assert await store.delete("acme/doc1") is False
    with pytest.raises(BlobNotFound):
        await store.get("acme/doc1")
    with pytest.raises(BlobNotFound):
        await store.open("acme/doc1")
    with pytest.raises(BlobNotFound):
        await store.get("acme/doc1/a.txt/deeper")  # a file in the middle of the path
    assert await store.get("acme/doc1/a.txt") == b"x"


# --- S3 ------------------------------------------------------------------------------------


class PresignCheckingTransport(httpx.AsyncBaseTransport):
    """Forwards a presigned GET to the server only if S3 would accept it: moto serves
    presigned URLs without checking their signature or expiry, so this does that part of
    S3's work (SigV4 query authentication) with the test's credentials and clock."""

    def __init__(self, clock: float | None = None) -> None:
        self.clock = clock
        self.inner = httpx.AsyncHTTPTransport()

    def accepts(self, url: httpx.URL) -> bool:
        query = url.query.decode()
        pairs = [pair for pair in query.split("&") if not pair.startswith("X-Amz-Signature=")]
        params = {k: v[0] for k, v in parse_qs(query).items()}
        signed_at = calendar.timegm(time.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        expires = int(params["X-Amz-Expires"])
        if (self.clock or time.time()) > signed_at + expires:
            return False
        unsigned = str(url.copy_with(query=None)) + "?" + "&".join(pairs)
        request = AWSRequest(method="GET", url=unsigned)
        request.context["timestamp"] = params["X-Amz-Date"]
        auth = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION, expires)
        to_sign = auth.string_to_sign(request, auth.canonical_request(request))
        expected = auth.signature(to_sign, request)
        return hmac.compare_digest(expected, params["X-Amz-Signature"])

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.accepts(request.url):
            return httpx.Response(403, content=b"AccessDenied")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_s3_creates_its_bucket_on_first_use(s3_endpoint: str, s3_admin):
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    names = {b["Name"] for b in (await s3_admin.list_buckets())["Buckets"]}
    assert bucket not in names
    store = make_s3_store(s3_endpoint, bucket)
    try:
        assert not await store.exists("acme/doc1/a.txt")
        names = {b["Name"] for b in (await s3_admin.list_buckets())["Buckets"]}
        assert bucket in names
        await store.put("acme/doc1/a.txt", b"x")
    finally:
        await store.aclose()
    again = make_s3_store(s3_endpoint, bucket)  # an existing bucket is used as it is
    try:
        assert await again.get("acme/doc1/a.txt") == b"x"
    finally:
        await again.aclose()


async def test_s3_keeps_the_content_type(s3_store: S3BlobStore, s3_admin):
    await s3_store.put("acme/doc1/report.pdf", b"%PDF-1.7", "application/pdf")
    head = await s3_admin.head_object(Bucket=s3_store.bucket, Key="acme/doc1/report.pdf")
    assert head["ContentType"] == "application/pdf"


async def test_s3_presigned_url_downloads_the_blob_with_a_plain_get(s3_store: S3BlobStore):
    data = os.urandom(300_000)
    await s3_store.put("acme/doc 1/Résumé.pdf", data, "application/pdf")
    url = await s3_store.presigned_url("acme/doc 1/Résumé.pdf", 120)
    assert url is not None
    async with httpx.AsyncClient() as plain:
        response = await plain.get(url)
    assert response.status_code == 200
    assert response.content == data
    async with httpx.AsyncClient(transport=PresignCheckingTransport()) as checked:
        response = await checked.get(url)
    assert response.status_code == 200
    assert response.content == data


async def test_s3_expired_or_tampered_presigned_urls_do_not_download(s3_store: S3BlobStore):
    await s3_store.put("acme/doc1/a.txt", b"secret")
    await s3_store.put("acme/doc1/b.txt", b"other secret")
    short = await s3_store.presigned_url("acme/doc1/a.txt", 1)
    long = await s3_store.presigned_url("acme/doc1/a.txt", 60)
    assert short is not None and long is not None
    async with httpx.AsyncClient(transport=PresignCheckingTransport(time.time() + 5)) as later:
        assert (await later.get(long)).content == b"secret"
        assert (await later.get(short)).status_code == 403
        other_key = long.replace("/a.txt?", "/b.txt?")
        assert (await later.get(other_key)).status_code == 403
        forged = long[:-4] + ("0000" if not long.endswith("0000") else "1111")
        assert (await later.get(forged)).status_code == 403
    with pytest.raises(ValueError, match="expires"):
        await s3_store.presigned_url("acme/doc1/a.txt", 0)
    with pytest.raises(ValueError, match="expires"):
        await s3_store.presigned_url("acme/doc1/a.txt", 7 * 24 * 3600 + 1)


async def test_s3_errors_name_the_bucket_the_key_and_the_code(s3_store: S3BlobStore, s3_admin):
    await s3_store.put("acme/doc1/a.txt", b"x")
    await s3_store.delete("acme/doc1/a.txt")
    await s3_admin.delete_bucket(Bucket=s3_store.bucket)  # gone behind the store's back
    with pytest.raises(BlobStoreError) as raised:
        await s3_store.put("acme/doc1/a.txt", b"x")
    message = str(raised.value)
    assert repr(s3_store.bucket) in message
    assert "'acme/doc1/a.txt'" in message
    assert "NoSuchBucket" in message


async def test_s3_unreachable_server_error_names_the_bucket_and_key(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries with backoff: fail at once
    store = make_s3_store(f"http://127.0.0.1:{free_port()}", "nowhere")
    try:
        with pytest.raises(BlobStoreError, match="'nowhere'"):
            await store.get("acme/doc1/a.txt")
    finally:
        await store.aclose()


async def test_s3_store_can_be_used_again_after_aclose(s3_store: S3BlobStore):
    await s3_store.put("acme/doc1/a.txt", b"x")
    await s3_store.aclose()
    assert await s3_store.get("acme/doc1/a.txt") == b"x"


# --- blob_store(settings) ------------------------------------------------------------------


async def test_blob_store_defaults_to_files_in_the_data_directory(tmp_path: Path):
    store = blob_store(load_settings(data_dir=tmp_path))
    assert isinstance(store, LocalBlobStore)
    await store.put("acme/doc1/a.txt", b"x")
    assert (tmp_path / "files" / "acme" / "doc1" / "a.txt").read_bytes() == b"x"


async def test_blob_store_uses_the_configured_directory(tmp_path: Path):
    store = blob_store(
        load_settings(data_dir=tmp_path, files={"directory": tmp_path / "elsewhere"})
    )
    await store.put("acme/doc1/a.txt", b"x")
    assert (tmp_path / "elsewhere" / "acme" / "doc1" / "a.txt").read_bytes() == b"x"


def s3_settings(tmp_path: Path, endpoint: str, **extra: object):
    files = {"backend": "s3", "bucket": f"cfg-{uuid.uuid4().hex[:12]}", "endpoint_url": endpoint}
    files |= {"region": REGION, "path_style": True, **extra}
    return load_settings(data_dir=tmp_path, files=files)


async def test_blob_store_s3_reads_keys_from_the_named_variables(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FILES_KEY", "key-from-named-variable")
    monkeypatch.setenv("FILES_SECRET", SECRET_KEY)
    settings = s3_settings(
        tmp_path, s3_endpoint, access_key_env="FILES_KEY", secret_key_env="FILES_SECRET"
    )
    store = blob_store(settings)
    try:
        assert isinstance(store, S3BlobStore)
        assert store.bucket == settings.files.bucket
        await store.put("acme/doc1/a.txt", b"over s3")
        assert await store.get("acme/doc1/a.txt") == b"over s3"
        url = await store.presigned_url("acme/doc1/a.txt", 60)
        assert "X-Amz-Credential=key-from-named-variable%2F" in str(url)
    finally:
        await store.aclose()


async def test_blob_store_s3_without_named_variables_uses_boto_s_chain(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-from-boto-chain")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    store = blob_store(s3_settings(tmp_path, s3_endpoint))
    try:
        url = await store.presigned_url("acme/doc1/a.txt", 60)
        assert "X-Amz-Credential=key-from-boto-chain%2F" in str(url)
    finally:
        await store.aclose()
