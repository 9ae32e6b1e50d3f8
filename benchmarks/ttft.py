"""Time to first token through the platform against calling the provider directly, in one run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/ttft.py

Creates a scratch database on that server (dropped at the end), starts the fake LLM provider
(a real HTTP server speaking OpenAI's wire format, BENCH_LATENCY_MS before the first token,
then BENCH_TOKENS_PER_S), one `fireflow worker` process and daphne, as `make up` does, and
saves the flow input -> llm_chat (provider fake) -> output. Then, for BENCH_RUNS rounds
(default 50, after BENCH_WARMUP = 3 uncounted ones), interleaved in a rotating order, one
request at a time:

(a) platform: POST .../flows/{id}/runs (API key), then the run's WebSocket (session cookie,
    `?after=0` so nothing is missed), timed from sending the POST to the first
    TEXT_MESSAGE_CONTENT frame;
(b) direct: the official `openai` SDK (stream=True, one long-lived client) against the same
    provider, timed from the call to the first content delta;
(c) direct with a new SDK and HTTP client per call (for reference: what the llm_chat node
    saves by sharing one HTTP client per worker, engine/llm/_providers.py `_http`).

Prints p50/p95 of each, of the platform-added TTFT (a - b per paired round, and
p95(a) - p95(b)) against the target, of the start request alone, and where the platform's
time goes per run, from timestamps of the stages (the database's clock and this process's
must be the same machine's: run it next to PostgreSQL)."""

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

import httpx  # noqa: E402
import openai  # noqa: E402
import psycopg  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.typing import Origin  # noqa: E402

from engine.llm import FakeLLMServer  # noqa: E402
from engine.llm._fake import FakeRequest  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "50"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
LATENCY_S = float(os.environ.get("BENCH_LATENCY_MS", "20")) / 1000
TOKENS_PER_S = float(os.environ.get("BENCH_TOKENS_PER_S", "50"))
TARGET_ADDED_P95_MS = 30.0
MODEL = "fake-echo"
PROMPT = "Say something short about durable workflows"
FLOW: dict[str, Any] = {
    "schema": 1,
    "nodes": [
        {"id": "q", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
        {"id": "llm", "type": "llm_chat", "config": {"provider": "fake", "model": MODEL}},
        {"id": "answer", "type": "output", "config": {"name": "answer", "type": "text"}},
    ],
    "edges": [{"from": "q.q", "to": "llm.prompt"}, {"from": "llm.text", "to": "answer.value"}],
}
PYTHONPATH = os.pathsep.join([str(ROOT / "platform"), str(ROOT)])


class TimedFakeLLM(FakeLLMServer):
    """The fake provider, noting when each completion request arrives (this process's
    clock), so a run's time can be split at the provider."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[float] = []  # time.time() of each POST, in arrival order

    def start(self) -> "TimedFakeLLM":
        super().start()
        # The SDK may close a stream's connection before reading the chunked terminator that
        # follows `[DONE]`; the server then sees a reset. Harmless, and not worth a traceback.
        if self._httpd is not None:
            self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        return self

    def _record(self, request: FakeRequest) -> None:
        super()._record(request)
        if request.method == "POST":
            self.arrivals.append(time.time())


# --- processes ------------------------------------------------------------------------------


def scratch_database() -> tuple[str, str]:
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ff_bench_ttft_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server, urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


@contextmanager
def child(command: list[str], env: dict[str, str], ready_line: str | None) -> Iterator[None]:
    """A subprocess, up once it printed `ready_line` (if given); its output is drained so
    the pipe never fills; stopped (SIGTERM, then SIGKILL) on the way out, whatever happened."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while ready_line is not None and (not seen or ready_line not in seen[-1]):
            text = process.stdout.readline()
            if (not text and process.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command[1:5])} did not start:\n{''.join(seen)}")
            seen.append(text)
        threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
        yield
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=20)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):  # stuck, or a second Ctrl-C
            process.kill()
            process.wait()


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # up, and warm (the first request loads the app)
        try:
            if httpx.get(f"{url}/api/health", timeout=5, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("daphne did not come up")


# --- tenant -----------------------------------------------------------------------------------


@dataclass
class Tenant:
    base: str  # /api/orgs/{slug}/workspaces/{id}
    ws_path: str  # /ws/orgs/{slug}/workspaces/{id}/runs/
    api_key: str
    session_cookie: str  # name=value


def setup_tenant(url: str) -> Tenant:
    """Migrate the scratch database and create an organisation with its owner, an API key
    (for the API) and a logged-in session (the WebSocket takes the browser's session only),
    through the platform's services, in this process."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fireflow.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    from tenants import services
    from tenants.context import Actor, OrgContext
    from tenants.models import Membership, Workspace
    from tenants.roles import OrgRole

    logging.getLogger("dbos").setLevel(logging.WARNING)  # its migrations log every step
    call_command("migrate", "--no-input", verbosity=0)
    call_command("createcachetable", verbosity=0)
    owner = services.user_create(
        email="bench@example.com", name="Bench", password="bench-password-1234", verified=True
    )
    org = services.organization_create(name="Bench", slug="bench", owner=owner)
    workspace = Workspace.objects.get(org=org, name=services.DEFAULT_WORKSPACE_NAME)
    ctx = OrgContext(
        org=org,
        actor=Actor(user=owner),
        membership=Membership.objects.get(org=org, user=owner),
        role=OrgRole.OWNER,
    )
    _, raw_key = services.api_key_create(ctx=ctx, name="bench", role="owner")
    client = Client()
    client.force_login(owner)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    connections.close_all()  # the database is dropped at the end
    return Tenant(
        base=f"/api/orgs/{org.slug}/workspaces/{workspace.id}",
        ws_path=f"/ws/orgs/{org.slug}/workspaces/{workspace.id}/runs/",
        api_key=raw_key,
        session_cookie=cookie,
    )


# --- measuring ------------------------------------------------------------------------------


@dataclass
class PlatformRound:
    run_id: str
    ttft: float  # POST sent -> first token frame (s)
    start_request: float  # POST sent -> response (s)
    socket_open: float  # response -> WebSocket accepted (s)
    sent_at: float  # time.time() when the POST was sent
    first_token_at: float  # time.time() of the first token frame


class Platform:
    def __init__(self, web: str, tenant: Tenant, flow_id: str) -> None:
        self.web = web
        self.tenant = tenant
        self.runs_url = f"{web}{tenant.base}/flows/{flow_id}/runs"
        self.ws_base = web.replace("http://", "ws://") + tenant.ws_path
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {tenant.api_key}"}, timeout=30, trust_env=False
        )

    async def round(self) -> PlatformRound:
        async with asyncio.timeout(60):
            wall = time.time()
            started = time.perf_counter()
            response = await self.http.post(self.runs_url, json={"inputs": {"q": PROMPT}})
            answered = time.perf_counter()
            if response.status_code != 201:
                raise RuntimeError(f"start refused: {response.status_code} {response.text}")
            run_id = response.json()["id"]
            first: float | None = None
            async with connect(
                f"{self.ws_base}{run_id}/?after=0",
                origin=Origin(self.web),
                additional_headers={"Cookie": self.tenant.session_cookie},
                proxy=None,
            ) as stream:
                opened = time.perf_counter()
                async for raw in stream:
                    event = json.loads(raw)["event"]
                    kind = event["type"]
                    if first is None and kind == "TEXT_MESSAGE_CONTENT" and event.get("delta"):
                        first = time.perf_counter()
                    if kind == "RUN_ERROR":
                        raise RuntimeError(f"run {run_id} failed: {event}")
            if first is None:
                raise RuntimeError(f"run {run_id} streamed no token")
        return PlatformRound(
            run_id=run_id,
            ttft=first - started,
            start_request=answered - started,
            socket_open=opened - answered,
            sent_at=wall,
            first_token_at=wall + (first - started),
        )


async def first_delta(client: openai.AsyncOpenAI, started: float | None = None) -> float:
    """Seconds from the call (or `started`) to the first content delta; the stream is read
    to its end."""
    started = time.perf_counter() if started is None else started
    first: float | None = None
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=1024,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if first is None and any(choice.delta.content for choice in chunk.choices):
            first = time.perf_counter()
    if first is None:
        raise RuntimeError("the provider streamed no content")
    return first - started


@dataclass
class Stages:
    """One run's time split at the points the platform records (s)."""

    web: float  # POST sent -> the run's row and queue entry inserted (transaction start)
    queue_wait: float  # inserted -> claimed by the worker (the commit, then queue polling)
    worker_to_provider: float  # claimed -> completion request at the provider
    provider: float  # the provider's own time to its first token
    event_write: float  # first token -> its event row written (the sink's batching)
    delivery: float  # event row written -> frame received on the WebSocket


STAGE_NAMES = {
    "web": "POST sent -> run inserted (web request, auth, checks)",
    "queue_wait": "run inserted -> claimed by the worker (commit, polling)",
    "worker_to_provider": "claimed -> request at the provider (workflow, step, SDK)",
    "provider": "provider's own latency before the first token",
    "event_write": "first token -> its event row written (event batching)",
    "delivery": "event row -> frame on the WebSocket (NOTIFY, read, send)",
}


def stages(url: str, sample: PlatformRound, provider_arrival: float) -> Stages:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT ws.created_at / 1000.0, ws.started_at_epoch_ms / 1000.0, "
            "  (SELECT extract(epoch FROM min(e.created_at)) FROM fireflow.run_event e "
            "   WHERE e.run_id = ws.workflow_uuid AND e.type = 'STREAM_CHUNK') "
            "FROM dbos.workflow_status ws WHERE ws.workflow_uuid = %s",
            (sample.run_id,),
        ).fetchone()
    if row is None or None in row:
        raise RuntimeError(f"no stage timestamps for run {sample.run_id}: {row}")
    queued, claimed, chunk_written = (float(v) for v in row)
    first_token = provider_arrival + LATENCY_S
    return Stages(
        web=queued - sample.sent_at,
        queue_wait=claimed - queued,
        worker_to_provider=provider_arrival - claimed,
        provider=LATENCY_S,
        event_write=chunk_written - first_token,
        delivery=sample.first_token_at - chunk_written,
    )


def pct(samples: list[float], q: float) -> float:
    """The q-th percentile (nearest rank), in ms."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def line(name: str, samples: list[float]) -> None:
    print(f"  {name:58s} {pct(samples, 0.5):8.1f} {pct(samples, 0.95):8.1f}")


@dataclass
class Samples:
    platform: list[PlatformRound] = field(default_factory=list)
    stages: list[Stages] = field(default_factory=list)
    direct: list[float] = field(default_factory=list)
    direct_fresh: list[float] = field(default_factory=list)


async def measure(url: str, web: str, tenant: Tenant, flow_id: str, fake: TimedFakeLLM) -> Samples:
    platform = Platform(web, tenant, flow_id)
    reused = openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key="bench", max_retries=0)
    samples = Samples()

    async def platform_round(keep: bool) -> None:
        before = len(fake.arrivals)
        sample = await platform.round()
        if keep:
            samples.platform.append(sample)
            samples.stages.append(stages(url, sample, fake.arrivals[before]))

    async def direct_round(keep: bool) -> None:
        seconds = await first_delta(reused)
        if keep:
            samples.direct.append(seconds)

    async def fresh_round(keep: bool) -> None:
        started = time.perf_counter()  # making the client is part of it (an SSL context)
        async with openai.AsyncOpenAI(
            base_url=f"{fake.url}/v1", api_key="bench", max_retries=0
        ) as client:
            seconds = await first_delta(client, started)
        if keep:
            samples.direct_fresh.append(seconds)

    systems: list[Callable[[bool], Coroutine[Any, Any, None]]] = [
        platform_round,
        direct_round,
        fresh_round,
    ]
    try:
        for _ in range(WARMUP):
            for make in systems:
                await make(False)
        for i in range(RUNS):
            for make in systems[i % 3 :] + systems[: i % 3]:  # rotate who goes first
                await make(True)
    finally:
        await platform.http.aclose()
        await reused.close()
    return samples


def report(samples: Samples) -> None:
    ttft = [s.ttft for s in samples.platform]
    direct = samples.direct
    added = [a - b for a, b in zip(ttft, direct, strict=True)]
    added_p95 = pct(ttft, 0.95) - pct(direct, 0.95)
    verdict = "met" if added_p95 <= TARGET_ADDED_P95_MS else "NOT met"
    print(
        f"\nTime to first token over {RUNS} interleaved rounds (provider: "
        f"{LATENCY_S * 1000:.0f} ms before the first token, {TOKENS_PER_S:.0f} tokens/s) (ms):"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  ({os.cpu_count()} CPUs, load average {load} at the end)")
    print(f"  {'':58s} {'p50':>8s} {'p95':>8s}")
    line("(a) platform: POST /runs -> first token on the WebSocket", ttft)
    line("(b) direct: openai SDK, one client -> first delta", direct)
    line("    direct, new HTTP client per call (the node shares one)", samples.direct_fresh)
    line("platform-added, per paired round (a - b)", added)
    print(
        f"  {'platform-added, p95(a) - p95(b)':58s} {'':8s} {added_p95:8.1f}"
        f"   target <= {TARGET_ADDED_P95_MS:.0f} ms: {verdict}"
    )
    print(f"  {'ratio p50(a) / p50(b)':58s} {pct(ttft, 0.5) / pct(direct, 0.5):8.2f}")
    print("\nThe start request and the socket (ms):")
    line("POST /runs -> 201 response", [s.start_request for s in samples.platform])
    opening = [s.socket_open for s in samples.platform]
    line("201 -> WebSocket accepted (meanwhile the worker runs)", opening)
    print("\nWhere a platform run's time to first token goes (ms; the stages add up to (a)):")
    for name, title in STAGE_NAMES.items():
        line(title, [getattr(s, name) for s in samples.stages])


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: processes, then the database


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    server, url = scratch_database()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "FIREFLOW_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": PYTHONPATH,
    }
    try:
        with ExitStack() as stack:
            fake = TimedFakeLLM(latency_s=LATENCY_S, tokens_per_s=TOKENS_PER_S)
            stack.enter_context(fake)
            env["FIREFLOW_FAKE_LLM_URL"] = fake.url
            tenant = setup_tenant(url)
            executor = f"bench-ttft-{uuid.uuid4().hex[:6]}"
            stack.enter_context(
                child(
                    [sys.executable, "-m", "fireflow.cli", "worker", "--executor-id", executor],
                    env,
                    f"worker {executor} ready",
                )
            )
            port = free_port()
            web = f"http://127.0.0.1:{port}"
            daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            stack.enter_context(child([*daphne, "fireflow.asgi:application"], env, None))
            wait_healthy(web)
            response = httpx.post(
                f"{web}{tenant.base}/flows",
                json={"name": "TTFT", "document": FLOW},
                headers={"Authorization": f"Bearer {tenant.api_key}"},
                timeout=30,
                trust_env=False,
            )
            if response.status_code != 201:
                raise RuntimeError(f"could not save the flow: {response.text}")
            report(asyncio.run(measure(url, web, tenant, response.json()["id"], fake)))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
