"""Blob storage for uploaded documents: a local directory or an S3-compatible bucket.

Keys are relative paths such as ``"tenant/doc_id/report.pdf"``, checked the same way on
both backends so that a key that works on a laptop works on S3 too. Local writes are
atomic (a temporary file renamed over the target), so a crash never leaves half a blob.
The S3 backend (AWS, MinIO, RustFS) needs ``pip install 'agentrig[s3]'``; ``aioboto3``
is imported only when an :class:`S3BlobStore` is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from agentrig.config import Settings
from agentrig.errors import AgentrigError, ConfigError

CHUNK_SIZE = 1024 * 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the SigV4 limit
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)  # a directory is no blob


class BlobNotFound(AgentrigError, KeyError):
    """No blob is stored under ``key``."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no blob {self.key!r}"


class BlobStoreError(AgentrigError):
    """The storage service refused or failed an operation; says on which bucket and key."""


@runtime_checkable
class BlobStore(Protocol):
    """Where uploaded documents' bytes live. Every method takes a key like ``"t/d/f.pdf"``."""

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    async def get(self, key: str) -> bytes:
        """The whole blob; :class:`BlobNotFound` if there is none."""

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The blob's chunks, for large downloads. Raises :class:`BlobNotFound` here, before
        the first chunk, so a server can answer 404 instead of a broken stream."""

    async def delete(self, key: str) -> bool:
        """Remove the blob; False if it was not there."""

    async def exists(self, key: str) -> bool: ...

    async def presigned_url(self, key: str, expires: int) -> str | None:
        """A URL that downloads the blob for ``expires`` seconds, or None if the backend has
        none (the server then streams the blob itself)."""

    async def aclose(self) -> None: ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a relative path that stays inside the store, else ValueError."""
    parts = key.split("/")
    if not key or "\x00" in key or "\\" in key or any(p in ("", ".", "..") for p in parts):
        raise ValueError(
            f"invalid blob key {key!r}: expected a relative path like 'tenant/doc/file' "
            "without empty, '.' or '..' segments, backslashes or NUL"
        )
    return key


class _Chunks:
    """The chunks of one open blob; closes it when exhausted or on :meth:`aclose`."""

    def __init__(self, read: Callable[[int], Awaitable[bytes]], close: Callable[[], Any]) -> None:
        self._read = read
        self._close = close

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._read(CHUNK_SIZE)
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._close()


class LocalBlobStore:
    """Blobs as files under ``root``. ``content_type`` is not kept: the server infers it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        await asyncio.to_thread(_write_atomically, self._path(key), data)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except _MISSING:
            raise BlobNotFound(key) from None

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except _MISSING:
            raise BlobNotFound(key) from None
        return _Chunks(lambda size: asyncio.to_thread(file.read, size), file.close)

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except _MISSING:
            return False
        return True

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def presigned_url(self, key: str, expires: int) -> str | None:
        check_key(key)
        return None

    async def aclose(self) -> None:
        pass


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a hidden temporary file next to ``path``, flush it to disk, rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".blob-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class S3BlobStore:
    """Blobs as objects in an S3-compatible ``bucket``, which is created on first use.

    One client is opened on first use and kept until :meth:`aclose`. Without ``access_key``
    and ``secret_key``, boto's credential chain applies (environment, profile, role)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool = False,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        try:
            import aioboto3
            from botocore.config import Config
        except ImportError as exc:
            raise ConfigError(
                "S3BlobStore needs the aioboto3 package: pip install 'agentrig[s3]'"
            ) from exc
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = aioboto3.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "auto"},
            # checksums only where S3 requires them: older MinIO and others reject the rest
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    async def _s3(self, key: str) -> Any:
        """Check ``key``, then return the client, opened (and the bucket made) on first use."""
        check_key(key)
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    client = await stack.enter_async_context(
                        self._session.client(
                            "s3", endpoint_url=self.endpoint_url, config=self._config
                        )
                    )
                    try:
                        await self._create_bucket(client)
                    except BaseException:
                        await stack.aclose()
                        raise
                    self._client, self._stack = client, stack
        return self._client

    async def _create_bucket(self, client: Any) -> None:
        """Create the bucket unless it exists, so that a fresh MinIO works out of the box."""
        from botocore.exceptions import ClientError

        with self._errors(None):
            try:
                await client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _code(exc) in ("403", "AccessDenied", "Forbidden"):
                    return  # credentials for objects but not buckets: it exists
                if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
            options: dict[str, Any] = {}
            if self.region and self.region != "us-east-1":
                options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                await client.create_bucket(Bucket=self.bucket, **options)
            except ClientError as exc:  # another process created it first
                if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    @contextlib.contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        """Turn botocore's errors into BlobNotFound or a BlobStoreError naming bucket and key."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            if key is not None and code in ("NoSuchKey", "404", "NotFound"):
                raise BlobNotFound(key) from None
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            raise BlobStoreError(
                f"s3 bucket {self.bucket!r}, key {key!r}: {code}: {message}"
            ) from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"s3 bucket {self.bucket!r}, key {key!r}: {exc}") from exc

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        client = await self._s3(key)
        with self._errors(key):
            await client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)

    async def get(self, key: str) -> bytes:
        client = await self._s3(key)
        with self._errors(key):
            response = await client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                return await body.read()

    async def open(self, key: str) -> AsyncIterator[bytes]:
        client = await self._s3(key)
        with self._errors(key):
            response = await client.get_object(Bucket=self.bucket, Key=key)
        body = response["Body"]
        return _Chunks(body.read, body.close)

    async def delete(self, key: str) -> bool:
        # DeleteObject succeeds whether or not the key exists: ask first
        if not await self.exists(key):
            return False
        client = await self._s3(key)
        with self._errors(key):
            await client.delete_object(Bucket=self.bucket, Key=key)
        return True

    async def exists(self, key: str) -> bool:
        client = await self._s3(key)
        try:
            with self._errors(key):
                await client.head_object(Bucket=self.bucket, Key=key)
        except BlobNotFound:
            return False
        return True

    async def presigned_url(self, key: str, expires: int) -> str | None:
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires = {expires}: expected 1 to {MAX_PRESIGN_SECONDS} seconds")
        client = await self._s3(key)
        with self._errors(key):
            return await client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


def _code(exc: Any) -> str:
    """A botocore ClientError's S3 error code: ``NoSuchKey``, ``404`` (HEAD has no body)..."""
    return str(exc.response.get("Error", {}).get("Code", "?"))


def blob_store(settings: Settings) -> BlobStore:
    """The store ``settings.files`` configures; S3 keys come from the variables it names."""
    files = settings.files
    if files.backend == "local":
        return LocalBlobStore(settings.files_directory)
    assert files.bucket is not None  # FilesSettings checks it for the s3 backend
    return S3BlobStore(
        files.bucket,
        endpoint_url=files.endpoint_url,
        region=files.region,
        path_style=files.path_style,
        access_key=os.environ.get(files.access_key_env) if files.access_key_env else None,
        secret_key=os.environ.get(files.secret_key_env) if files.secret_key_env else None,
    )
