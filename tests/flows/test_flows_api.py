"""Flows and runs through the API: save validated versions, run them on a real worker,
read status, outputs and the event stream, idempotent starts, cancel and fork."""

import os
import time
from typing import Any

import pytest
from django.test import Client

from flows.models import Flow, FlowVersion, Run
from tenants.roles import OrgRole, WorkspaceRole
from tests.engine.harness import chain, ledger
from tests.factories import OrgFixture

GREETING = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "name", "type": "text"}]}},
        {"id": "greet", "type": "template", "config": {"template": "Hello {{ name }}!"}},
        {"id": "out", "type": "output", "config": {"name": "greeting"}},
    ],
    "edges": [{"from": "inp.name", "to": "greet.name"}, {"from": "greet.text", "to": "out.value"}],
}


def base(org: OrgFixture) -> str:
    return f"/api/orgs/{org.org.slug}/workspaces/{org.workspace.id}"


def create_flow(client: Client, org: OrgFixture, document: dict[str, Any] = GREETING) -> str:
    response = client.post(
        f"{base(org)}/flows",
        {"name": "Greeter", "document": document},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def wait_run(client: Client, org: OrgFixture, run_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"{base(org)}/runs/{run_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


@pytest.mark.django_db
def test_node_types_catalogue(org: OrgFixture, client_for: Any) -> None:
    body = client_for(org.owner).get("/api/node-types").json()
    types = {t["type"]: t for t in body["node_types"]}
    assert types["template"]["config_schema"]["required"] == ["template"]
    assert "text" in body["port_compatibility"]["number"]
    assert "FLOW_COMPLETED" in body["event_types"]
    assert "STREAM_CHUNK" in body["event_types"]
    mini = next(m for m in body["models"] if m["model"] == "gpt-4o-mini")
    assert (mini["provider"], mini["input_per_million"]) == ("openai", 0.15)
    assert "anthropic" in types["llm_chat"]["config_schema"]["properties"]["provider"]["enum"]
    assert Client().get("/api/node-types").status_code == 401


@pytest.mark.django_db
def test_invalid_flow_is_refused_and_the_last_good_version_stays(
    org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org)
    good = Flow.objects.get(id=flow_id).current_version
    assert good is not None
    broken = {**GREETING, "nodes": [*GREETING["nodes"][:2], {"id": "out", "type": "outptu"}]}
    response = client.post(
        f"{base(org)}/flows/{flow_id}/versions",
        {"document": broken},
        content_type="application/json",
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_flow"
    assert "Did you mean 'output'?" in body["fields"]["nodes.out"]
    assert Flow.objects.get(id=flow_id).current_version == good
    assert FlowVersion.objects.filter(flow_id=flow_id).count() == 1

    # Validation on its own answers with every issue.
    checked = client.post(
        f"{base(org)}/flows/validate", {"document": broken}, content_type="application/json"
    ).json()
    assert checked["valid"] is False
    assert {i["code"] for i in checked["issues"]} >= {"unknown_node_type"}


@pytest.mark.django_db
def test_validation_gives_each_nodes_ports_as_its_config_makes_them(
    org: OrgFixture, client_for: Any
) -> None:
    """The builder draws handles from these: it never re-implements the engine's rules
    (a template's variables, an input node's fields)."""
    document = {
        **GREETING,
        "nodes": [
            {
                "id": "inp",
                "type": "input",
                "config": {
                    "fields": [{"name": "name", "type": "text"}, {"name": "n", "type": "number"}]
                },
            },
            {
                "id": "greet",
                "type": "template",
                "config": {
                    "template": "{% for x in items %}{{ x.title }}{% endfor %} {{ name|upper }}"
                },
            },
            {"id": "bad", "type": "template", "config": {}},
            GREETING["nodes"][2],
        ],
    }
    checked = (
        client_for(org.owner)
        .post(
            f"{base(org)}/flows/validate", {"document": document}, content_type="application/json"
        )
        .json()
    )
    ports = checked["ports"]
    assert [(p["name"], p["type"]) for p in ports["inp"]["outputs"]] == [
        ("name", "text"),
        ("n", "number"),
    ]
    assert sorted(p["name"] for p in ports["greet"]["inputs"]) == ["items", "name"]
    assert [p["name"] for p in ports["greet"]["outputs"]] == ["text"]
    assert "bad" not in ports  # an invalid config has no ports to draw
    assert any(i["node"] == "bad" and i["code"] == "invalid_config" for i in checked["issues"])


@pytest.mark.django_db
def test_versions_are_content_addressed_and_chained(org: OrgFixture, client_for: Any) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org)
    first = Flow.objects.get(id=flow_id).current_version
    assert first is not None
    changed = {
        **GREETING,
        "nodes": [
            GREETING["nodes"][0],
            {"id": "greet", "type": "template", "config": {"template": "Hi {{ name }}"}},
            GREETING["nodes"][2],
        ],
    }
    saved = client.post(
        f"{base(org)}/flows/{flow_id}/versions",
        {"document": changed, "message": "shorter", "parent": first.hash},
        content_type="application/json",
    )
    assert saved.status_code == 201, saved.content
    second = saved.json()
    assert second["parent"] == first.hash
    assert len(second["hash"]) == 64
    # Someone saving on top of the old version is told, not silently overwritten.
    stale = client.post(
        f"{base(org)}/flows/{flow_id}/versions",
        {"document": GREETING, "parent": first.hash},
        content_type="application/json",
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_parent"
    listed = client.get(f"{base(org)}/flows/{flow_id}/versions").json()["results"]
    assert [v["hash"] for v in listed] == [second["hash"], first.hash]
    old = client.get(f"{base(org)}/flows/{flow_id}/versions/{first.hash}").json()
    assert old["document"]["nodes"][1]["config"]["template"] == "Hello {{ name }}!"


@pytest.mark.django_db(transaction=True)
def test_run_completes_with_outputs_and_an_ordered_event_stream(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org)
    started = client.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"name": "Ada"}},
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    run = started.json()
    assert run["status"] in ("queued", "running", "completed")
    assert run["caller_email"] == org.owner.email
    assert run["flow_owner_email"] == org.owner.email
    done = wait_run(client, org, run["id"])
    assert done["status"] == "completed"
    assert done["outputs"] == {"greeting": "Hello Ada!"}
    assert done["nodes"]["greet"]["status"] == "completed"
    events = client.get(f"{base(org)}/runs/{run['id']}/events").json()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "FLOW_STARTED"
    assert events[-1]["type"] == "FLOW_COMPLETED"
    assert {
        "type": "PORT_VALUE_CHANGED",
        "node": "greet",
        "port": "text",
        "payload": {"value": "Hello Ada!"},
    }.items() <= {**next(e for e in events if e["node"] == "greet" and e["port"] == "text")}.items()
    later = client.get(f"{base(org)}/runs/{run['id']}/events?after=3").json()
    assert [e["seq"] for e in later] == list(range(4, len(events) + 1))
    listed = client.get(f"{base(org)}/runs?flow_id={flow_id}").json()["results"]
    assert [(r["id"], r["status"]) for r in listed] == [(run["id"], "completed")]


@pytest.mark.django_db(transaction=True)
def test_start_is_idempotent_and_inputs_are_checked(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org)
    url = f"{base(org)}/flows/{flow_id}/runs"
    first = client.post(
        url,
        {"inputs": {"name": "x"}},
        content_type="application/json",
        headers={"Idempotency-Key": "order-42"},
    )
    again = client.post(
        url,
        {"inputs": {"name": "x"}},
        content_type="application/json",
        headers={"Idempotency-Key": "order-42"},
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Run.objects.count() == 1
    bad = client.post(url, {"inputs": {"nmae": "x"}}, content_type="application/json")
    assert bad.status_code == 422
    assert "input 'name' (text) is required" in bad.json()["detail"]
    assert "inputs.nmae" in bad.json()["fields"]
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_viewers_read_editors_run(engine_worker: str, org: OrgFixture, client_for: Any) -> None:
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org)
    viewer, editor = org.add_member(OrgRole.MEMBER), org.add_member(OrgRole.MEMBER)
    org.grant(viewer, WorkspaceRole.VIEWER)
    org.grant(editor, WorkspaceRole.EDITOR)
    as_viewer, as_editor = client_for(viewer), client_for(editor)
    assert as_viewer.get(f"{base(org)}/flows/{flow_id}").status_code == 200
    refused = as_viewer.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"name": "v"}},
        content_type="application/json",
    )
    assert refused.status_code == 403
    assert (
        as_viewer.post(
            f"{base(org)}/flows/{flow_id}/versions",
            {"document": GREETING},
            content_type="application/json",
        ).status_code
        == 403
    )
    ran = as_editor.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"name": "e"}},
        content_type="application/json",
    )
    assert ran.status_code == 201
    done = wait_run(as_viewer, org, ran.json()["id"])
    assert done["caller_email"] == editor.email
    assert done["flow_owner_email"] == org.owner.email


@pytest.mark.django_db(transaction=True)
def test_cancel_and_fork_from_a_node(engine_worker: str, org: OrgFixture, client_for: Any) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org, chain(("a", 0), ("b", 0), ("c", 0)))
    run = client.post(
        f"{base(org)}/flows/{flow_id}/runs", {"inputs": {"x": "f"}}, content_type="application/json"
    ).json()
    done = wait_run(client, org, run["id"])
    assert done["outputs"] == {"result": "f-a-b-c"}
    forked = client.post(
        f"{base(org)}/runs/{run['id']}/fork", {"node": "b"}, content_type="application/json"
    )
    assert forked.status_code == 201, forked.content
    fork = forked.json()
    assert fork["forked_from_id"] == run["id"]
    refork = wait_run(client, org, fork["id"])
    assert refork["outputs"] == {"result": "f-a-b-c"}
    ran_again = [node for node, phase in ledger(engine_worker, fork["id"]) if phase == "start"]
    assert ran_again == ["b", "c"]  # a was reused from the original run

    slow_flow = create_flow(
        client,
        org,
        chain(
            ("slow", 30),
        ),
    )
    slow = client.post(
        f"{base(org)}/flows/{slow_flow}/runs",
        {"inputs": {"x": "s"}},
        content_type="application/json",
    ).json()
    deadline = time.monotonic() + 20
    while ("slow", "start") not in ledger(engine_worker, slow["id"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.post(f"{base(org)}/runs/{slow['id']}/cancel").status_code == 202
    cancelled = wait_run(client, org, slow["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"] == "The run was cancelled."


@pytest.mark.django_db(transaction=True)
def test_http_node_reaches_a_local_service_only_once_the_workspace_allows_it(
    engine_worker: str, org: OrgFixture, client_for: Any, live_server: Any
) -> None:
    port = live_server.url.rsplit(":", 1)[1]
    document = {
        "schema": 1,
        "nodes": [
            {
                "id": "ping",
                "type": "http_request",
                "config": {"url": f"{live_server.url}/api/health", "timeout_seconds": 5},
            },
            {"id": "out", "type": "output", "config": {"name": "health"}},
        ],
        "edges": [{"from": "ping.body", "to": "out.value"}],
    }
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org, document)
    refused = owner.post(f"{base(org)}/flows/{flow_id}/runs", {}, content_type="application/json")
    done = wait_run(owner, org, refused.json()["id"])
    assert done["status"] == "failed"
    assert "127.0.0.1, a loopback address" in done["error"]

    editor = org.add_member(OrgRole.MEMBER)
    org.grant(editor, WorkspaceRole.EDITOR)
    network = f"{base(org)}/network"
    assert (
        client_for(editor)
        .put(network, {"http_allow": [f"127.0.0.1:{port}"]}, content_type="application/json")
        .status_code
        == 403
    )
    bad = owner.put(network, {"http_allow": ["http://127.0.0.1/"]}, content_type="application/json")
    assert bad.status_code == 422
    saved = owner.put(
        network, {"http_allow": [f"127.0.0.1:{port}"]}, content_type="application/json"
    )
    assert saved.json() == {"http_allow": [f"127.0.0.1:{port}"]}
    assert client_for(editor).get(network).json() == {"http_allow": [f"127.0.0.1:{port}"]}

    allowed = owner.post(f"{base(org)}/flows/{flow_id}/runs", {}, content_type="application/json")
    done = wait_run(owner, org, allowed.json()["id"])
    assert done["status"] == "completed", done["error"]
    assert done["outputs"] == {"health": {"status": "ok", "database": "ok"}}


@pytest.mark.django_db(transaction=True)
def test_execute_flow_calls_a_pinned_flow_of_the_workspace(
    engine_worker: str, org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    child_id = create_flow(client, org)  # GREETING: name -> greeting
    parent = {
        "schema": 1,
        "nodes": [
            {"id": "args", "type": "constant", "config": {"value": {"name": "Bo"}, "type": "json"}},
            {"id": "call", "type": "execute_flow", "config": {"flow_id": child_id}},
            {"id": "out", "type": "output", "config": {"name": "child"}},
        ],
        "edges": [
            {"from": "args.value", "to": "call.inputs"},
            {"from": "call.outputs", "to": "out.value"},
        ],
    }
    parent_id = create_flow(client, org, parent)
    run = client.post(f"{base(org)}/flows/{parent_id}/runs", {}, content_type="application/json")
    assert run.status_code == 201, run.content
    done = wait_run(client, org, run.json()["id"])
    assert done["outputs"] == {"child": {"greeting": "Hello Bo!"}}

    # A flow of another organisation cannot be called, whatever its id.
    foreign = create_flow(client_for(other_org.owner), other_org)
    parent["nodes"][1]["config"]["flow_id"] = foreign
    calls_foreign = create_flow(client, org, parent)
    refused = client.post(
        f"{base(org)}/flows/{calls_foreign}/runs", {}, content_type="application/json"
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "unknown_flow"
    assert "nodes.call" in refused.json()["fields"]


@pytest.mark.django_db(transaction=True)
def test_the_demo_flows_run(
    engine_worker: str, client_for: Any, live_server: Any, settings: Any
) -> None:
    from django.core.management import call_command

    from tenants.models import Membership, Organization, Workspace

    settings.PUBLIC_URL = live_server.url  # the health check calls this server
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    org = Organization.objects.get(slug="demo")
    owner = Membership.objects.get(org=org, role="owner").user
    workspace = Workspace.objects.get(org=org)
    client = client_for(owner)
    prefix = f"/api/orgs/demo/workspaces/{workspace.id}"
    flows = client.get(f"{prefix}/flows").json()["results"]
    outputs = {}
    for flow in flows:
        run = client.post(
            f"{prefix}/flows/{flow['id']}/runs", {}, content_type="application/json"
        ).json()
        deadline = time.monotonic() + 30
        while (done := client.get(f"{prefix}/runs/{run['id']}").json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert done["status"] == "completed", (flow["name"], done["error"])
        outputs[flow["name"]] = done["outputs"]
    ask = outputs.pop("Ask the model (LLM, streamed)")
    assert ask["answer"] == "Echo: What does a durable workflow engine do?"
    assert ask["usage"]["provider"] == "fake"
    assert ask["usage"]["cost_usd"] > 0
    assert outputs == {
        "Order report (fan-out and merge)": {
            "summary": "Big orders: A-1, A-3. Revenue: 775. Countries: DE, FR."
        },
        "Platform health check (HTTP node)": {"platform": {"status": "ok", "database": "ok"}},
    }


@pytest.mark.django_db
def test_the_network_allow_list_refuses_what_the_installation_does_not_allow(
    org: OrgFixture, client_for: Any
) -> None:
    response = client_for(org.owner).put(
        f"{base(org)}/network",
        {"http_allow": ["10.0.0.0/8", "169.254.169.254", "0.0.0.0/0"]},
        content_type="application/json",
    )
    assert response.status_code == 422
    fields = response.json()["fields"]
    assert set(fields) == {"http_allow.1", "http_allow.2"}
    assert "outside the networks this installation lets workspaces reach" in fields["http_allow.1"]


@pytest.mark.django_db(transaction=True)
def test_an_idempotency_key_cannot_start_a_different_run(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org)
    url = f"{base(org)}/flows/{flow_id}/runs"
    headers = {"Idempotency-Key": "k-1"}
    assert (
        client.post(
            url, {"inputs": {"name": "a"}}, content_type="application/json", headers=headers
        ).status_code
        == 201
    )
    other = client.post(
        url, {"inputs": {"name": "b"}}, content_type="application/json", headers=headers
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


@pytest.mark.django_db
def test_validation_returns_the_plan_of_a_valid_flow(org: OrgFixture, client_for: Any) -> None:
    checked = (
        client_for(org.owner)
        .post(
            f"{base(org)}/flows/validate", {"document": GREETING}, content_type="application/json"
        )
        .json()
    )
    assert checked["valid"] is True
    assert checked["issues"] == []
    assert checked["plan"] == {"series": ["inp", "greet", "out"]}
    assert set(checked["ports"]) == {"inp", "greet", "out"}


@pytest.mark.django_db(transaction=True)
def test_a_removed_allow_list_entry_holds_for_forks_of_older_runs(
    engine_worker: str, org: OrgFixture, client_for: Any, live_server: Any
) -> None:
    """The worker reads the allow list when the node runs, not when the run was queued: a
    fork of a run made while the host was allowed cannot reach it any more."""
    port = live_server.url.rsplit(":", 1)[1]
    document = {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "x", "type": "text"}]}},
            {"id": "first", "type": "test_ledger", "config": {}},
            {
                "id": "ping",
                "type": "http_request",
                "config": {"url": f"{live_server.url}/api/health", "timeout_seconds": 5},
            },
            {"id": "out", "type": "output", "config": {"name": "health"}},
        ],
        "edges": [
            {"from": "inp.x", "to": "first.value"},
            {"from": "first.value", "to": "ping.body"},
            {"from": "ping.body", "to": "out.value"},
        ],
    }
    owner = client_for(org.owner)
    network = f"{base(org)}/network"
    owner.put(network, {"http_allow": [f"127.0.0.1:{port}"]}, content_type="application/json")
    flow_id = create_flow(owner, org, document)
    run = owner.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"x": "{}"}},
        content_type="application/json",
    ).json()
    assert wait_run(owner, org, run["id"])["status"] == "completed"

    owner.put(network, {"http_allow": []}, content_type="application/json")
    fork = owner.post(
        f"{base(org)}/runs/{run['id']}/fork", {"node": "ping"}, content_type="application/json"
    ).json()
    done = wait_run(owner, org, fork["id"])
    assert done["status"] == "failed"
    assert "a loopback address" in done["error"]


@pytest.mark.django_db
def test_an_archived_workspace_is_read_only(org: OrgFixture, client_for: Any) -> None:
    client = client_for(org.owner)
    flow_id = create_flow(client, org)
    assert (
        client.patch(base(org), {"archived": True}, content_type="application/json").status_code
        == 200
    )
    assert client.get(f"{base(org)}/flows/{flow_id}").status_code == 200
    for url, body in (
        (f"{base(org)}/flows/{flow_id}/runs", {}),
        (f"{base(org)}/flows/{flow_id}/versions", {"document": GREETING}),
        (f"{base(org)}/flows", {"name": "New"}),
    ):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 409, url
        assert response.json()["code"] == "workspace_archived"
    assert Run.objects.count() == 0


@pytest.mark.django_db
def test_a_flow_that_reads_a_stream_runs_only_as_a_child(org: OrgFixture, client_for: Any) -> None:
    """A stream input is given by a parent flow; a start request can neither give one (it
    could name another run's stream) nor leave a required one out."""
    client = client_for(org.owner)
    reader = {
        "schema": 1,
        "nodes": [
            {
                "id": "inp",
                "type": "input",
                "config": {"fields": [{"name": "text", "type": "stream"}]},
            },
            {"id": "out", "type": "output", "config": {"name": "text", "type": "text"}},
        ],
        "edges": [{"from": "inp.text", "to": "out.value"}],
    }
    flow_id = create_flow(client, org, reader)
    url = f"{base(org)}/flows/{flow_id}/runs"
    ref = {"$stream": {"run": "some-other-run", "key": "llm.stream"}}
    given = client.post(url, {"inputs": {"text": ref}}, content_type="application/json")
    assert given.status_code == 422, given.content
    assert given.json()["fields"] == {
        "nodes.inp.text": "a stream input is given by a parent flow (an Execute flow node's "
        "stream_inputs), not when a run is started"
    }
    left_out = client.post(url, {"inputs": {}}, content_type="application/json")
    assert left_out.status_code == 422
    assert left_out.json()["fields"] == {
        "nodes.inp.text": "this flow reads a stream here, so it only runs as a child of another "
        "flow"
    }
    assert not Run.objects.filter(flow_id=flow_id).exists()
