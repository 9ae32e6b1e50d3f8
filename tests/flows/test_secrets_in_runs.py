"""Secrets in real runs: an LLM node and an HTTP node use vault secrets on a real worker, and
the values are then nowhere (every table of every schema, events, the live stream, the
worker's log, API answers); outputs that would echo a secret are refused; someone running
another person's flow cannot choose where that person's credentials go."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tenants.roles import WorkspaceRole
from tests.factories import OrgFixture, make_api_key
from tests.flows.test_flows_api import base, create_flow, wait_run

LLM_CANARY = "sk-canary-LLM-4f1e9a7c2b8d6e3f"
BANK_CANARY = "tok-canary-BANK-9c3b7e1a5d2f8e6a"


class _Bank(BaseHTTPRequestHandler):
    """A local API that records the headers it gets; /echo answers with them."""

    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).seen.append(headers)
        body = {"balance": 42}
        if self.path.startswith("/echo"):
            body = {"you_sent": headers.get("authorization", "")}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bank() -> Iterator[str]:
    _Bank.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _flow(bank_url: str, path: str = "/balance") -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            {"id": "q", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
            {
                "id": "ask",
                "type": "llm_chat",
                "config": {"provider": "fake", "model": "fake-echo", "api_key_secret": "llm-key"},
            },
            {
                "id": "call",
                "type": "http_request",
                "config": {
                    "url": bank_url + path,
                    "timeout_seconds": 5,
                    "secret_headers": {
                        "Authorization": {"secret": "workspace:bank", "prefix": "Token "}
                    },
                },
            },
            {"id": "answer", "type": "output", "config": {"name": "answer"}},
            {"id": "balance", "type": "output", "config": {"name": "balance"}},
        ],
        "edges": [
            {"from": "q.q", "to": "ask.prompt"},
            {"from": "ask.text", "to": "answer.value"},
            {"from": "call.body", "to": "balance.value"},
        ],
    }


def _store_secrets(client: Any, org: OrgFixture) -> None:
    personal = client.post(
        f"/api/orgs/{org.org.slug}/secrets",
        {"name": "llm-key", "value": LLM_CANARY},
        content_type="application/json",
    )
    shared = client.post(
        f"{base(org)}/secrets",
        {"name": "bank", "value": BANK_CANARY},
        content_type="application/json",
    )
    assert (personal.status_code, shared.status_code) == (201, 201)


def _allow(client: Any, org: OrgFixture, bank_url: str) -> None:
    port = bank_url.rsplit(":", 1)[1]
    response = client.put(
        f"{base(org)}/network",
        {"http_allow": [f"127.0.0.1:{port}"]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content


def _everything_in_the_database(url: str) -> str:
    """Every row of every table of every schema, as text (bytea as hex)."""
    parts = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{schema}"."{table}" AS t').fetchall()
            parts.extend(row[0] for row in rows)
    return "\n".join(parts)


@pytest.mark.django_db(transaction=True)
def test_a_canary_secret_used_by_a_run_appears_nowhere(  # noqa: PLR0917 (fixtures)
    session_worker_paused: str,
    fake_llm: Any,
    bank: str,
    org: OrgFixture,
    client_for: Any,
    web_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.engine.harness import Worker

    log_file = tmp_path / "worker.log"
    monkeypatch.setenv("FIREFLOW_TEST_WORKER_LOG", str(log_file))
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    client = client_for(org.owner)
    _store_secrets(client, org)
    _allow(client, org, bank)
    flow_id = create_flow(client, org, _flow(bank))
    worker = Worker(session_worker_paused, f"canary-{org.org.slug}", platform=True)
    answers: list[str] = []
    try:
        start = client.post(
            f"{base(org)}/flows/{flow_id}/runs",
            {"inputs": {"q": "What is my balance?"}},
            content_type="application/json",
        )
        answers.append(start.content.decode())
        run = start.json()
        done = wait_run(client, org, run["id"])
        _key, raw = make_api_key(org.owner, org.org, role="owner", name="canary")
        with httpx.stream(
            "GET",
            f"{web_server}{base(org)}/runs/{run['id']}/stream",
            headers={"Authorization": f"Bearer {raw}"},
            timeout=30,
        ) as response:
            answers.append("".join(response.iter_text()))
    finally:
        worker.stop()
    assert done["status"] == "completed", done["error"]
    assert done["outputs"]["balance"] == {"balance": 42}
    # The secrets did their work: the provider and the bank got them.
    assert any(r.headers.get("authorization") == f"Bearer {LLM_CANARY}" for r in fake_llm.requests)
    assert _Bank.seen[-1]["authorization"] == f"Token {BANK_CANARY}"

    for path in (
        f"/runs/{run['id']}",
        f"/runs/{run['id']}/events?limit=1000",
        f"/runs/{run['id']}/usage",
        "/runs",
        "/secrets",
        f"/flows/{flow_id}",
    ):
        answers.append(client.get(f"{base(org)}{path}").content.decode())
    personal = client.get(f"/api/orgs/{org.org.slug}/secrets")
    answers.append(personal.content.decode())
    [llm_key] = personal.json()
    assert llm_key["last_used_at"] is not None
    uses = client.get(f"/api/orgs/{org.org.slug}/secrets/{llm_key['id']}/uses")
    answers.append(uses.content.decode())
    assert [(u["run_id"], u["node_id"], u["caller_email"]) for u in uses.json()] == [
        (run["id"], "ask", org.owner.email)
    ]
    answers.append(client.get(f"/api/orgs/{org.org.slug}/audit").content.decode())
    haystacks = {
        "database": _everything_in_the_database(session_worker_paused),
        "answers": "\n".join(answers),
        "worker log": log_file.read_text() if log_file.exists() else "",
    }
    assert haystacks["worker log"], "the worker's log was not captured"
    assert "secret.used" in haystacks["database"]  # each use is audited ...
    for canary in (LLM_CANARY, BANK_CANARY):
        for where, text in haystacks.items():
            assert canary not in text, f"{canary} found in the {where}"
            assert canary[8:] not in text, f"part of {canary} found in the {where}"


@pytest.mark.django_db(transaction=True)
def test_an_output_that_would_echo_a_secret_is_refused(
    engine_worker: str, fake_llm: Any, bank: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    _store_secrets(client, org)
    _allow(client, org, bank)
    flow_id = create_flow(client, org, _flow(bank, path="/echo"))
    run = client.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hi"}},
        content_type="application/json",
    ).json()
    done = wait_run(client, org, run["id"])
    assert done["status"] == "failed"
    assert "refused: an output of node 'call' would carry a secret's value" in done["error"]
    assert _Bank.seen[-1]["authorization"] == f"Token {BANK_CANARY}"  # it was sent ...
    events = client.get(f"{base(org)}/runs/{run['id']}/events?limit=1000").content.decode()
    for text in (json.dumps(done), events):  # ... and never came back out
        assert BANK_CANARY not in text


@pytest.mark.django_db(transaction=True)
def test_someone_running_the_owners_flow_cannot_choose_where_its_secrets_go(
    engine_worker: str, fake_llm: Any, bank: str, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    _store_secrets(owner, org)
    _allow(owner, org, bank)
    document = _flow(bank)
    document["nodes"][0]["config"]["fields"].append({"name": "where", "type": "text"})
    document["edges"].append({"from": "q.where", "to": "call.url"})
    flow_id = create_flow(owner, org, document)
    editor_user = org.add_member("member")
    org.grant(editor_user, WorkspaceRole.EDITOR)
    editor = client_for(editor_user)
    seen_before = len(_Bank.seen)
    run = editor.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hi", "where": f"{bank}/steal"}},
        content_type="application/json",
    ).json()
    done = wait_run(editor, org, run["id"])
    assert done["status"] == "failed"
    assert "comes from the run's data" in done["error"]
    assert len(_Bank.seen) == seen_before, "the request was sent"
    # The owner's own run of the same flow may send it where its input says.
    mine = owner.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hi", "where": f"{bank}/balance"}},
        content_type="application/json",
    ).json()
    assert wait_run(owner, org, mine["id"])["status"] == "completed"


@pytest.mark.django_db(transaction=True)
def test_a_secret_nobody_may_use_is_named_in_the_error(
    engine_worker: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    """The caller's own personal secret is not the flow owner's: a run of someone else's flow
    does not find it."""
    owner = client_for(org.owner)
    document = _flow("http://127.0.0.1:9")
    document["nodes"] = [n for n in document["nodes"] if n["id"] not in ("call", "balance")]
    document["edges"] = [e for e in document["edges"] if "call" not in e["from"]]
    flow_id = create_flow(owner, org, document)
    editor_user = org.add_member("member")
    org.grant(editor_user, WorkspaceRole.EDITOR)
    editor = client_for(editor_user)
    mine = editor.post(
        f"/api/orgs/{org.org.slug}/secrets",
        {"name": "llm-key", "value": "sk-the-editors-own"},
        content_type="application/json",
    )
    assert mine.status_code == 201
    run = editor.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hi"}},
        content_type="application/json",
    ).json()
    done = wait_run(editor, org, run["id"])
    assert done["status"] == "failed"
    assert "no secret named 'llm-key' in the flow owner's vault" in done["error"]


@pytest.mark.django_db(transaction=True)
def test_an_owner_limits_a_secret_to_some_flows(
    engine_worker: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    document = _flow("http://127.0.0.1:9")
    document["nodes"] = [n for n in document["nodes"] if n["id"] not in ("call", "balance")]
    document["edges"] = [e for e in document["edges"] if "call" not in e["from"]]
    allowed_flow = create_flow(owner, org, document)
    other_flow = create_flow(owner, org, {**document, "nodes": [*document["nodes"]]})
    created = owner.post(
        f"/api/orgs/{org.org.slug}/secrets",
        {"name": "llm-key", "value": LLM_CANARY, "allowed_flows": [allowed_flow]},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["allowed_flows"] == [allowed_flow]

    def run(flow_id: str) -> dict[str, Any]:
        started = owner.post(
            f"{base(org)}/flows/{flow_id}/runs",
            {"inputs": {"q": "hi"}},
            content_type="application/json",
        ).json()
        return wait_run(owner, org, started["id"])

    assert run(allowed_flow)["status"] == "completed"
    refused = run(other_flow)
    assert refused["status"] == "failed"
    assert "limited by its owner to other flows" in refused["error"]
    # Allowing every flow again (an empty list) lets it run.
    patched = owner.patch(
        f"/api/orgs/{org.org.slug}/secrets/{created.json()['id']}",
        {"allowed_flows": []},
        content_type="application/json",
    )
    assert patched.status_code == 200, patched.content
    assert run(other_flow)["status"] == "completed"
    bad = owner.patch(
        f"/api/orgs/{org.org.slug}/secrets/{created.json()['id']}",
        {"allowed_flows": ["00000000-0000-4000-8000-000000000000"]},
        content_type="application/json",
    )
    assert bad.status_code == 422
    assert "allowed_flows.0" in bad.json()["fields"]


@pytest.mark.django_db(transaction=True)
def test_a_node_that_leaks_a_secret_into_its_events_or_error_is_scrubbed(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    _store_secrets(client, org)
    document = {
        "schema": 1,
        "nodes": [
            {"id": "leak", "type": "test_leaky", "config": {"secret": "workspace:bank"}},
            {"id": "out", "type": "output", "config": {"name": "value"}},
        ],
        "edges": [{"from": "leak.value", "to": "out.value"}],
    }
    flow_id = create_flow(client, org, document)
    run = client.post(
        f"{base(org)}/flows/{flow_id}/runs", {"inputs": {}}, content_type="application/json"
    ).json()
    done = wait_run(client, org, run["id"])
    assert done["status"] == "failed"
    assert "the bank refused key [secret]" in done["error"]
    events = client.get(f"{base(org)}/runs/{run['id']}/events?limit=1000").json()
    [chunk] = [e["payload"]["text"] for e in events if e["type"] == "STREAM_CHUNK"]
    assert chunk == "the key is [secret]!"
    everything = json.dumps(done) + json.dumps(events) + _everything_in_the_database(engine_worker)
    assert BANK_CANARY not in everything
