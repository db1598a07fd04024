"""``/api/v1/documents``: upload documents to knowledge bases, follow their indexing,
download, re-index, delete, and search them.

An upload stores the file and a ``pending`` document, then enqueues an
``index_document`` job and answers at once (202): the document's ``status`` moves
through ``parsing``, ``chunking``, ``embedding`` to ``indexed``, or ``failed`` with a
``reason``. Every route is scoped to the API key's tenant.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse

from agentrig.jobs.handlers import INDEX_DOCUMENT
from agentrig.knowledge.blobs import BlobNotFound
from agentrig.knowledge.retrieval import Mode
from agentrig.knowledge.vectors import collection_name
from agentrig.rag.chat import source_json
from agentrig.server.auth import tenant_of
from agentrig.server.errors import APIError, not_found
from agentrig.server.openapi import PathId, errors

router = APIRouter(prefix="/api/v1/documents", tags=["knowledge"])


def _knowledge(request: Request) -> Any:
    state = request.app.state.server
    if state.knowledge is None:
        raise APIError(503, "the knowledge service is not available", type="server_error")
    return state


@router.post("", status_code=202, responses=errors(400, 401, 413))
async def upload_document(
    request: Request,
    file: Annotated[UploadFile, File(description="The document (PDF, DOCX, …).")],
    kb: Annotated[str | None, Form(description="Knowledge base (default: default).")] = None,
    metadata: Annotated[str | None, Form(description="A JSON object kept with the chunks.")] = None,
    tenant: str = Depends(tenant_of),
) -> JSONResponse:
    state = _knowledge(request)
    limit = int(state.settings.knowledge.max_file_mb * 1024 * 1024)
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise APIError(
            413,
            f"file: over the limit of {state.settings.knowledge.max_file_mb:g} MB",
            param="file",
        )
    extra: dict[str, Any] = {}
    if metadata:
        try:
            extra = json.loads(metadata)
        except ValueError:
            raise APIError(400, "metadata: not valid JSON", param="metadata") from None
        if not isinstance(extra, dict):
            raise APIError(400, "metadata: must be a JSON object", param="metadata")
    try:
        document = await state.knowledge.add_document(
            tenant,
            data,
            file.filename or "upload",
            kb=kb,
            content_type=file.content_type,
            metadata=extra,
        )
    except ValueError as exc:  # an invalid knowledge base name
        raise APIError(400, str(exc), param="kb") from None
    job = await state.jobs.enqueue(INDEX_DOCUMENT, tenant, {"document_id": document.id})
    return JSONResponse(document.to_json() | {"job_id": job.id}, status_code=202)


@router.get("", responses=errors(401))
async def list_documents(
    request: Request,
    kb: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=1_000_000_000),
    tenant: str = Depends(tenant_of),
) -> JSONResponse:
    state = _knowledge(request)
    if kb is not None:
        try:
            collection_name(kb)
        except ValueError as exc:
            raise APIError(400, str(exc), param="kb") from None
    found = await state.knowledge.documents.list(tenant, kb=kb, limit=limit, offset=offset)
    return JSONResponse({"object": "list", "data": [d.to_json() for d in found]})


@router.get("/search", responses=errors(400, 401))
async def search_documents(
    request: Request,
    q: Annotated[str, Query(min_length=1, description="What to look for.")],
    kb: str | None = None,
    top_k: int = Query(default=5, ge=1, le=100),
    mode: Mode = "hybrid",
    tenant: str = Depends(tenant_of),
) -> JSONResponse:
    state = _knowledge(request)
    try:
        hits = await state.knowledge.retriever.search(
            q, tenant=tenant, kb=kb, top_k=top_k, mode=mode
        )
    except ValueError as exc:
        raise APIError(400, str(exc), param="kb" if "knowledge base" in str(exc) else "q") from None
    return JSONResponse({"object": "list", "data": [source_json(hit) for hit in hits]})


@router.get("/{document_id}", responses=errors(401, 404))
async def get_document(
    document_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    document = await _knowledge(request).knowledge.documents.get(tenant, document_id)
    if document is None:
        raise not_found("document", document_id)
    return JSONResponse(document.to_json())


@router.post("/{document_id}/index", status_code=202, responses=errors(401, 404))
async def reindex_document(
    document_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    state = _knowledge(request)
    documents = state.knowledge.documents
    if not await documents.set_status(tenant, document_id, "pending"):
        raise not_found("document", document_id)
    # Read before enqueueing: a worker may start at once, and the answer is what was asked.
    document = await documents.get(tenant, document_id)
    if document is None:  # deleted meanwhile
        raise not_found("document", document_id)
    job = await state.jobs.enqueue(INDEX_DOCUMENT, tenant, {"document_id": document_id})
    return JSONResponse(document.to_json() | {"job_id": job.id}, status_code=202)


@router.delete("/{document_id}", responses=errors(401, 404))
async def delete_document(
    document_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    deleted = await _knowledge(request).knowledge.delete_document(tenant, document_id)
    if deleted is None:
        raise not_found("document", document_id)
    return JSONResponse({"id": document_id, "object": "document.deleted", "deleted": True})


@router.get("/{document_id}/download", response_model=None, responses=errors(401, 404))
async def download_document(
    document_id: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> RedirectResponse | StreamingResponse:
    """A redirect to a presigned URL (S3), or the file itself (local storage)."""
    state = _knowledge(request)
    document = await state.knowledge.documents.get(tenant, document_id)
    if document is None:
        raise not_found("document", document_id)
    blobs = state.knowledge.blobs
    url = await blobs.presigned_url(document.blob_key, state.settings.files.presign_seconds)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    try:
        chunks = await blobs.open(document.blob_key)
    except BlobNotFound:
        raise not_found("file of document", document_id) from None
    disposition = f"attachment; filename*=UTF-8''{quote(document.filename, safe='')}"
    return StreamingResponse(
        chunks,
        media_type=document.content_type or "application/octet-stream",
        headers={"content-disposition": disposition, "content-length": str(document.size_bytes)},
    )
