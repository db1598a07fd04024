"""What a Responses API gateway adds in front of an inference server: agentrig and others.

The upstream is nginx serving canned bodies on 127.0.0.1, so that it costs far less per
request than any gateway (its CPU time per request is printed in the direct rows). nginx
cannot branch on the JSON body, so it listens on two ports: on the "plain" port every
endpoint answers with a JSON body, on the "stream" port with a Server-Sent Events body.
Each gateway is started twice, once in front of each port, and sent non-streamed requests
in the first run and ``"stream": true`` requests in the second. Both ports serve:

* ``POST /v1/chat/completions``: a chat completion (or its chunks): what agentrig calls;
* ``POST /v1/responses``: a Responses API response (or its events): what agentic-api and
  LiteLLM call (both forward ``/v1/responses`` to an upstream that has it, as vLLM does);
* ``GET /health``, ``GET /v1/models``: what the gateways probe at start.

Load: ``wrk`` (Debian package ``wrk``), one thread, for ``--duration`` seconds per case
after a warm-up, with 32 connections and then 1 (unloaded latency), all ``POST
/v1/responses`` with a short input. Cases:

(a) straight to the upstream, the floor: its ``/v1/chat/completions`` and ``/v1/responses``;
(b) agentrig in gateway mode (``agentrig serve --upstream --workers N``: uvicorn, N worker
    processes, by default one per core as agentic-api runs a thread per core; SQLite in a
    temporary data directory unless ``--agentrig-database-url``), ``store`` true/false;
    ``--also-one-worker`` adds the rows of one process (``agentrig-1w``);
(c) agentic-api 0.9.0 (PyPI ``agentic-api``, a Rust gateway: ``agentic-server
    --llm-api-base``, SQLite), ``store`` true/false;
(d) the LiteLLM proxy (``litellm[proxy]`` in its own virtualenv, ``--install-litellm``
    makes one; ``--litellm-workers`` workers, 1 by default as in the issue's measurement;
    no master key, a model pointing at the upstream).

Printed per case: requests/s, p50/p99 latency, added p50/p99 (the case's latency minus the
direct upstream's, on the upstream endpoint that gateway calls, same load), CPU time per
request of the gateway's processes (``/proc/<pid>/stat`` utime+stime of its process tree,
before and after), errors; then the ratios against the targets of the issue: agentrig
store=true throughput at least half of agentic-api's and 10x LiteLLM's, added p50 at one
connection under 2 ms, and the CPU time per request against each peer, the ratio that
does not depend on how many processes or cores each one uses. A contender that cannot be
found or started is reported as unavailable and the rest still runs. Every process started
here is stopped on the way out.

Run: ``.venv/bin/python bench/gateway_overhead.py`` (needs ``nginx`` and ``wrk``:
``apt-get install -y nginx-light wrk``; ``make bench`` installs agentic-api;
``--install-litellm`` once for LiteLLM). ``--duration 3`` for a quick look.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

MODEL = "bench-model"
TEXT = "Hello! How can I help you today?"
WORDS = [word + " " for word in TEXT.split(" ")[:-1]] + [TEXT.split(" ")[-1]]
USAGE = {"prompt_tokens": 12, "completion_tokens": len(WORDS), "total_tokens": 12 + len(WORDS)}
# nginx's server-side include of a unique id: gateways that store responses under the
# upstream's ids (agentic-api does) need a new one every time.
UNIQUE = "<!--# echo var='rid' -->"
LITELLM_VENV = Path(tempfile.gettempdir()) / "agentrig-bench-litellm"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
console = Console(width=150)


# --- the canned upstream bodies ---------------------------------------------------------


def _sse(events: list[dict[str, Any]], named: bool) -> str:
    lines = []
    for event in events:
        head = f"event: {event['type']}\n" if named else ""
        lines.append(f"{head}data: {json.dumps(event, separators=(',', ':'))}\n\n")
    return "".join(lines)


def chat_completion() -> str:
    message = {"role": "assistant", "content": TEXT}
    return json.dumps(
        {
            "id": "chatcmpl-" + UNIQUE,
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE,
        }
    )


def chat_chunks() -> str:
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict:
        choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return {
            "id": "chatcmpl-" + UNIQUE,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": MODEL,
            "choices": choices,
            "usage": usage,
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": word}) for word in WORDS]
    chunks += [chunk({}, "stop"), chunk({}, usage=USAGE)]
    body = "".join(f"data: {json.dumps(c, separators=(',', ':'))}\n\n" for c in chunks)
    return body + "data: [DONE]\n\n"


def _response(status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": "resp_" + UNIQUE,
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "model": MODEL,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "max_output_tokens": None,
        "previous_response_id": None,
        "store": False,
        "truncation": "disabled",
        "reasoning": None,
        "usage": {
            "input_tokens": USAGE["prompt_tokens"],
            "output_tokens": USAGE["completion_tokens"],
            "total_tokens": USAGE["total_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        if done
        else None,
    }


def _message(status: str, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
    return {
        "id": "msg_" + UNIQUE,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def responses_response() -> str:
    return json.dumps(_response("completed", [_message("completed", TEXT)]))


def responses_events() -> str:
    part = {"type": "output_text", "text": "", "annotations": []}
    where = {"item_id": "msg_" + UNIQUE, "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response("in_progress", [])},
        {"type": "response.in_progress", "response": _response("in_progress", [])},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _message("in_progress", None),
        },
        {"type": "response.content_part.added", **where, "part": part},
        *(
            {"type": "response.output_text.delta", **where, "delta": w, "logprobs": []}
            for w in WORDS
        ),
        {"type": "response.output_text.done", **where, "text": TEXT, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": {**part, "text": TEXT}},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": _message("completed", TEXT),
        },
        {
            "type": "response.completed",
            "response": _response("completed", [_message("completed", TEXT)]),
        },
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return _sse(events, named=True)


def nginx_config(folder: Path, plain_port: int, stream_port: int) -> str:
    """Two servers answering from files: static files answer GET only, so a POST (405)
    is sent on internally as a GET of the same file (``error_page 405 =200 $uri``)."""
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
    bodies = {
        "plain": (chat_completion(), responses_response()),
        "stream": (chat_chunks(), responses_events()),
    }
    for kind, (chat, responses) in bodies.items():
        root = folder / kind
        (root / "v1" / "chat").mkdir(parents=True)
        (root / "v1" / "chat" / "completions").write_text(chat)
        (root / "v1" / "responses").write_text(responses)
        (root / "v1" / "models").write_text(models)
        (root / "health").write_text("ok")

    def server(port: int, kind: str, media_type: str) -> str:
        return f"""
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {folder / kind};
        default_type {media_type};
        set $rid $request_id;  # once: SSI would compute $request_id at every echo
        ssi on;
        ssi_types application/json text/event-stream;
        error_page 405 =200 $uri;
        location / {{ }}
        location = /v1/models {{ default_type application/json; }}
        location = /health {{ default_type text/plain; }}
    }}"""

    temp = folder / "nginx-temp"
    return f"""
daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "nginx-error.log"} warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    types {{ }}
    access_log off;
    sendfile on;
    tcp_nodelay on;
    open_file_cache max=64 inactive=600s;
    open_file_cache_valid 600s;
    etag off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_buffer_size 64k;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{server(plain_port, "plain", "application/json")}
{server(stream_port, "stream", "text/event-stream")}
}}
"""


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    """A process started here, in its own session; stopped with its group on exit."""

    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)


def _clean_environment() -> dict[str, str]:
    """This environment without agentrig's settings (the gateways get theirs explicitly)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AGENTRIG_")}


@contextlib.contextmanager
def started(
    name: str, argv: list[str], folder: Path, env: dict[str, str] | None = None
) -> Iterator[Process]:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
            env={**_clean_environment(), **(env or {})},
            start_new_session=True,
        )
    process = Process(name, popen, log)
    try:
        yield process
    finally:
        process.stop()


def wait_until(check: Callable[[], bool], process: Process, seconds: float) -> None:
    """Until ``check()`` is true (a start-up error answer is retried until the deadline)."""
    deadline, last = time.monotonic() + seconds, "no answer"
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited ({process.popen.returncode}):\n{process.tail()}"
            )
        try:
            if check():
                return
            last = "a wrong answer"
        except (httpx.HTTPError, RuntimeError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} not ready within {seconds:g} s ({last}):\n{process.tail()}")


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and every live descendant (all their threads)."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(p, 0) for p in tree) / CLOCK_TICKS


# --- load ----------------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {{"requests": %d, "duration_us": %d, "status": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, "p50": %d, "p99": %d}}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Result:
    target: str
    stream: bool
    store: bool | None
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float | None
    floor: Result | None = field(default=None, repr=False)

    @property
    def added_p50(self) -> float | None:
        return None if self.floor is None else self.p50_ms - self.floor.p50_ms

    @property
    def added_p99(self) -> float | None:
        return None if self.floor is None else self.p99_ms - self.floor.p99_ms


def wrk(url: str, body: dict[str, Any], connections: int, seconds: float, folder: Path) -> dict:
    script = folder / "load.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body)))
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    completed = subprocess.run(
        [*argv, "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 120
    )
    line = next((x for x in completed.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
    return json.loads(line[len("RESULT ") :])


def measure(
    target: str,
    url: str,
    body: dict[str, Any],
    connections: int,
    seconds: float,
    folder: Path,
    pid: int | None,
) -> Result:
    before = tree_cpu_seconds(pid) if pid else 0.0
    outcome = wrk(url, body, connections, seconds, folder)
    after = tree_cpu_seconds(pid) if pid else 0.0
    count = outcome["requests"]
    errors = sum(outcome[key] for key in ("status", "connect", "read", "write", "timeout"))
    return Result(
        target=target,
        stream=bool(body.get("stream")),
        store=body.get("store"),
        connections=connections,
        requests_per_s=count / (outcome["duration_us"] / 1e6),
        p50_ms=outcome["p50"] / 1000,
        p99_ms=outcome["p99"] / 1000,
        errors=errors,
        cpu_us_per_request=(after - before) / count * 1e6 if pid and count else None,
    )


def request_body(stream: bool, store: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "input": "Say hello.", "stream": stream}
    if store is not None:
        body["store"] = store
    return body


def answers(url: str, stream: bool, store: bool | None = True) -> bool:
    """Whether ``url`` answers a Responses request with the canned text."""
    reply = httpx.post(url, json=request_body(stream, store), timeout=30)
    if reply.status_code != 200:
        raise RuntimeError(f"{url} answered {reply.status_code}: {reply.text[:500]}")
    if stream:
        return "response.completed" in reply.text and "today?" in reply.text
    return reply.json()["output"][0]["content"][0]["text"] == TEXT


@dataclass
class Bench:
    folder: Path
    seconds: float
    warmup: float
    ports: dict[bool, int]  # stream? -> upstream port
    nginx_pid: int = 0
    results: list[Result] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    floors: dict[tuple[str, bool, int], Result] = field(default_factory=dict)

    def upstream(self, stream: bool) -> str:
        return f"http://127.0.0.1:{self.ports[stream]}"

    def run_direct(self) -> None:
        for path in ("/v1/chat/completions", "/v1/responses"):
            for stream in (False, True):
                url = self.upstream(stream) + path
                body = request_body(stream, None)
                wrk(url, body, 32, 1, self.folder)
                for connections in (32, 1):
                    result = measure(
                        f"upstream {path}",
                        url,
                        body,
                        connections,
                        self.seconds,
                        self.folder,
                        self.nginx_pid,
                    )
                    self.floors[(path, stream, connections)] = result
                    self.results.append(result)

    def run_gateway(
        self,
        name: str,
        calls: str,
        launch: Callable[[bool], contextlib.AbstractContextManager[tuple[str, Process]]],
        stores: tuple[bool | None, ...] = (True, False),
    ) -> None:
        """Start ``name`` in front of each upstream port and put it under load."""
        for stream in (False, True):
            try:
                with launch(stream) as (url, process):
                    wait_until(lambda u=url, s=stream: answers(u, s), process, 180)
                    for store in stores:
                        if not answers(url, stream, store):
                            raise RuntimeError(f"{name} gave a wrong answer with store={store}")
                    wrk(url, request_body(stream, stores[0]), 32, self.warmup, self.folder)
                    for connections in (32, 1):
                        for store in stores:
                            console.print(
                                f"  {name} stream={stream} store={store} c={connections}",
                                style="dim",
                            )
                            result = measure(
                                name,
                                url,
                                request_body(stream, store),
                                connections,
                                self.seconds,
                                self.folder,
                                process.popen.pid,
                            )
                            result.floor = self.floors.get((calls, stream, connections))
                            self.results.append(result)
            except Exception as exc:
                self.unavailable[name] = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]{name} unavailable[/red]: {exc}")
                return

    # --- the contenders ---

    def agentrig(self, database_url: str | None, workers: int) -> Callable:
        @contextlib.contextmanager
        def launch(stream: bool) -> Iterator[tuple[str, Process]]:
            port = free_port()
            data = self.folder / f"agentrig-{workers}w-{'stream' if stream else 'plain'}"
            data.mkdir()
            env = {"AGENTRIG_DATA_DIR": str(data)}
            if database_url:
                env["AGENTRIG_DATABASE_URL"] = database_url
            executable = Path(sys.executable).with_name("agentrig")
            argv = [str(executable), "serve", "--port", str(port), "--workers", str(workers)]
            argv += ["--upstream", self.upstream(stream) + "/v1"]
            with started("agentrig", argv, data, env) as process:
                yield f"http://127.0.0.1:{port}/v1/responses", process

        return launch

    def agentic(self, binary: str) -> Callable:
        @contextlib.contextmanager
        def launch(stream: bool) -> Iterator[tuple[str, Process]]:
            port = free_port()
            data = self.folder / f"agentic-{'stream' if stream else 'plain'}"
            data.mkdir()
            argv = [binary, "--llm-api-base", self.upstream(stream)]
            argv += ["--gateway-host", "127.0.0.1", "--gateway-port", str(port)]
            argv += ["--db-url", f"sqlite://{data / 'agentic.db'}"]
            env = {"RUST_LOG": "warn", "HOME": str(data), "OPENAI_API_KEY": "unused"}
            with started("agentic-api", argv, data, env) as process:
                yield f"http://127.0.0.1:{port}/v1/responses", process

        return launch

    def litellm(self, binary: str, workers: int) -> Callable:
        @contextlib.contextmanager
        def launch(stream: bool) -> Iterator[tuple[str, Process]]:
            port = free_port()
            data = self.folder / f"litellm-{'stream' if stream else 'plain'}"
            data.mkdir()
            config = data / "config.yaml"
            model = {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": self.upstream(stream) + "/v1",
                    "api_key": "unused",
                },
            }
            settings = {"telemetry": False, "set_verbose": False}
            config.write_text(json.dumps({"model_list": [model], "litellm_settings": settings}))
            argv = [binary, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
            argv += ["--num_workers", str(workers)]
            env = {
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
                "LITELLM_LOG": "ERROR",
                "LITELLM_TELEMETRY": "False",
                "DISABLE_SCHEMA_UPDATE": "True",
            }
            with started("litellm", argv, data, env) as process:
                yield f"http://127.0.0.1:{port}/v1/responses", process

        return launch


# --- finding the contenders -----------------------------------------------------------------


def find_agentic(given: str | None) -> str | None:
    if given:
        return given
    beside = Path(sys.executable).with_name("agentic-server")
    return str(beside) if beside.exists() else shutil.which("agentic-server")


def find_litellm(given: str | None, install: bool) -> str | None:
    if given:
        return given
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists() and install:
        console.print(f"installing litellm[proxy] into {LITELLM_VENV}", style="dim")
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "litellm[proxy]"], check=True)
    return str(binary) if binary.exists() else shutil.which("litellm")


# --- report ---------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def report(bench: Bench, agentrig_workers: int, litellm_workers: int) -> None:
    table = Table(title=f"gateway overhead: POST /v1/responses, wrk {bench.seconds:g} s per case")
    columns = ("target", "stream", "store", "conns", "req/s", "p50 ms", "p99 ms")
    columns += ("+p50 ms", "+p99 ms", "CPU µs/req", "errors")
    for column in columns:
        table.add_column(column, justify="left" if column == "target" else "right")
    for r in bench.results:
        table.add_row(
            r.target,
            "yes" if r.stream else "no",
            "" if r.store is None else str(r.store).lower(),
            str(r.connections),
            f"{r.requests_per_s:,.0f}",
            _ms(r.p50_ms),
            _ms(r.p99_ms),
            _ms(r.added_p50),
            _ms(r.added_p99),
            "" if r.cpu_us_per_request is None else f"{r.cpu_us_per_request:,.0f}",
            str(r.errors),
        )
    console.print(table)
    for name, why in bench.unavailable.items():
        console.print(f"[red]unavailable[/red] {name}: {why}")

    def find(target: str, stream: bool, store: bool | None, connections: int) -> Result | None:
        for r in bench.results:
            if (r.target, r.stream, r.store, r.connections) == (target, stream, store, connections):
                return r
        return None

    console.print(
        f"\nratios (agentrig store=true, {agentrig_workers} worker process(es); "
        f"LiteLLM {litellm_workers} worker(s); agentic-api all cores):"
    )
    for stream in (False, True):
        mode = "streamed" if stream else "non-streamed"
        ours = find("agentrig", stream, True, 32)
        if ours is None:
            console.print(f"  {mode}: agentrig did not run")
            continue
        for other, store, target in (("agentic-api", True, 0.5), ("litellm", True, 10.0)):
            theirs = find(other, stream, store, 32)
            if theirs is None:
                console.print(f"  {mode}: {other} did not run, no ratio")
                continue
            ratio = ours.requests_per_s / theirs.requests_per_s
            verdict = "meets" if ratio >= target else "misses"
            console.print(
                f"  {mode}, 32 connections: agentrig / {other} throughput = {ratio:.2f} "
                f"({ours.requests_per_s:,.0f} / {theirs.requests_per_s:,.0f} req/s): "
                f"{verdict} the target of >= {target:g}"
            )
            if ours.cpu_us_per_request and theirs.cpu_us_per_request:
                console.print(
                    f"    CPU per request, {other} / agentrig = "
                    f"{theirs.cpu_us_per_request / ours.cpu_us_per_request:.2f} "
                    f"({theirs.cpu_us_per_request:,.0f} / {ours.cpu_us_per_request:,.0f} µs): "
                    "the ratio that does not depend on processes or cores"
                )
        alone = find("agentrig", stream, True, 1)
        if alone is not None and alone.added_p50 is not None:
            verdict = "meets" if alone.added_p50 < 2 else "misses"
            console.print(
                f"  {mode}, 1 connection: agentrig added p50 = {alone.added_p50:.2f} ms: "
                f"{verdict} the target of < 2 ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per case")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per start")
    parser.add_argument(
        "--only", default="agentrig,agentic-api,litellm", help="comma-separated contenders"
    )
    parser.add_argument("--agentrig-database-url", help="e.g. postgresql://127.0.0.1:5432/bench")
    parser.add_argument(
        "--agentrig-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="agentrig serve --workers (default: the cores, as agentic-api uses them all)",
    )
    parser.add_argument(
        "--also-one-worker",
        action="store_true",
        help="also run agentrig with one worker (the row 'agentrig-1w')",
    )
    parser.add_argument("--litellm-workers", type=int, default=1, help="its --num_workers")
    parser.add_argument("--agentic-bin", help="the agentic-server binary (agentic-api 0.9.0)")
    parser.add_argument("--litellm-bin", help="the litellm CLI of a virtualenv of its own")
    parser.add_argument(
        "--install-litellm", action="store_true", help=f"make {LITELLM_VENV} if missing"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    only = set(args.only.split(","))
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is needed: apt-get install -y nginx-light wrk")

    with tempfile.TemporaryDirectory(prefix="agentrig-gateway-bench-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)  # nginx's workers run as nobody when started by root
        (folder / "nginx-temp").mkdir()
        ports = {False: free_port(), True: free_port()}
        config = folder / "nginx.conf"
        config.write_text(nginx_config(folder, ports[False], ports[True]))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        bench = Bench(folder, args.duration, args.warmup, ports)
        with started("nginx", [nginx, "-c", str(config), "-p", str(folder)], folder) as upstream:
            wait_until(
                lambda: httpx.get(bench.upstream(False) + "/health").status_code == 200,
                upstream,
                10,
            )
            bench.nginx_pid = upstream.popen.pid
            console.print("direct to the upstream (nginx)", style="bold")
            bench.run_direct()
            if "agentrig" in only:
                workers = args.agentrig_workers
                console.print(f"agentrig serve --upstream --workers {workers}", style="bold")
                launch = bench.agentrig(args.agentrig_database_url, workers)
                bench.run_gateway("agentrig", "/v1/chat/completions", launch)
                if args.also_one_worker and workers != 1:
                    console.print("agentrig serve --upstream --workers 1", style="bold")
                    launch = bench.agentrig(args.agentrig_database_url, 1)
                    bench.run_gateway("agentrig-1w", "/v1/chat/completions", launch)
            if "agentic-api" in only:
                binary = find_agentic(args.agentic_bin)
                if binary is None:
                    bench.unavailable["agentic-api"] = (
                        "agentic-server not found: pip install agentic-api==0.9.0"
                    )
                else:
                    console.print(f"agentic-api ({binary})", style="bold")
                    bench.run_gateway("agentic-api", "/v1/responses", bench.agentic(binary))
            if "litellm" in only:
                binary = find_litellm(args.litellm_bin, args.install_litellm)
                if binary is None:
                    bench.unavailable["litellm"] = (
                        f"litellm not found: --install-litellm makes {LITELLM_VENV}"
                    )
                else:
                    console.print(f"LiteLLM proxy ({binary})", style="bold")
                    launch = bench.litellm(binary, args.litellm_workers)
                    bench.run_gateway("litellm", "/v1/responses", launch, (True,))
        report(bench, args.agentrig_workers, args.litellm_workers)
        if args.json:
            rows = [
                {k: v for k, v in r.__dict__.items() if k != "floor"}
                | {"added_p50_ms": r.added_p50, "added_p99_ms": r.added_p99}
                for r in bench.results
            ]
            args.json.write_text(json.dumps({"results": rows, "unavailable": bench.unavailable}))


if __name__ == "__main__":
    main()
