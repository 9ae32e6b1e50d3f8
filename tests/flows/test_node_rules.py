"""Node rules: workspace owners decide which node types (and LLM providers) each workspace
role may use; checked when a version is saved, when a run starts and again by the worker as
each node runs, so a flow saved before a rule was tightened stops at the refused node."""

from typing import Any

import pytest
from django.test import Client

from flows.models import Flow, Run
from tenants.models import AuditEvent, User
from tenants.roles import OrgRole, WorkspaceRole
from tests.engine.harness import ledger
from tests.factories import OrgFixture
from tests.flows.test_flows_api import GREETING, base, create_flow, wait_run


def rules_url(org: OrgFixture) -> str:
    return f"{base(org)}/node-rules"


def put_rules(client: Client, org: OrgFixture, rules: list[dict[str, Any]]) -> Any:
    return client.put(rules_url(org), {"node_rules": rules}, content_type="application/json")


def member(org: OrgFixture, role: WorkspaceRole) -> User:
    user = org.add_member(OrgRole.MEMBER)
    org.grant(user, role)
    return user


def http_flow(url: str = "https://example.com/") -> dict[str, Any]:
    return {
        "schema": 1,
        "nodes": [
            {"id": "fetch", "type": "http_request", "config": {"url": url}},
            {"id": "out", "type": "output", "config": {"name": "page"}},
        ],
        "edges": [{"from": "fetch.body", "to": "out.value"}],
    }


def ask_flow(provider: str, first_seconds: float = 0) -> dict[str, Any]:
    """input -> ledger 'first' -> llm_chat 'ask' -> ledger 'after' -> output."""
    return {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
            {"id": "first", "type": "test_ledger", "config": {"seconds": first_seconds}},
            {
                "id": "ask",
                "type": "llm_chat",
                "config": {"provider": provider, "model": "fake-echo"},
            },
            {"id": "after", "type": "test_ledger", "config": {"suffix": "!"}},
            {"id": "out", "type": "output", "config": {"name": "answer"}},
        ],
        "edges": [
            {"from": "inp.q", "to": "first.value"},
            {"from": "first.value", "to": "ask.prompt"},
            {"from": "ask.text", "to": "after.value"},
            {"from": "after.value", "to": "out.value"},
        ],
    }


DENY_HTTP_TO_EDITORS = [{"node_type": "http_request", "roles": ["editor"], "effect": "deny"}]


@pytest.mark.django_db
def test_owners_set_the_rules_members_read_them_and_the_change_is_audited(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    assert owner.get(rules_url(org)).json() == {"node_rules": []}
    rules = [
        *DENY_HTTP_TO_EDITORS,
        {
            "node_type": "llm_chat",
            "roles": ["viewer", "editor"],
            "effect": "allow",
            "providers": ["openai", "anthropic"],
        },
    ]
    saved = put_rules(owner, org, rules)
    assert saved.status_code == 200, saved.content
    expected = [
        {**DENY_HTTP_TO_EDITORS[0], "providers": None},
        {**rules[1], "roles": ["editor", "viewer"], "providers": ["anthropic", "openai"]},
    ]
    assert saved.json() == {"node_rules": expected}
    viewer = client_for(member(org, WorkspaceRole.VIEWER))
    assert viewer.get(rules_url(org)).json() == {"node_rules": expected}

    audit = AuditEvent.objects.get(action="workspace.node_rules_changed")
    assert audit.actor_id == org.owner.id
    assert audit.before == {"node_rules": []}
    assert audit.after == {"node_rules": expected}


@pytest.mark.django_db
def test_editors_and_viewers_cannot_change_the_rules(org: OrgFixture, client_for: Any) -> None:
    for role in (WorkspaceRole.VIEWER, WorkspaceRole.EDITOR):
        response = put_rules(client_for(member(org, role)), org, DENY_HTTP_TO_EDITORS)
        assert response.status_code == 403, response.content
        assert "owner role" in response.json()["detail"]
    assert client_for(org.owner).get(rules_url(org)).json() == {"node_rules": []}
    assert not AuditEvent.objects.filter(action="workspace.node_rules_changed").exists()


@pytest.mark.django_db
def test_another_orgs_user_gets_404_and_changes_nothing(
    org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    stranger = client_for(other_org.owner)
    assert stranger.get(rules_url(org)).status_code == 404
    assert put_rules(stranger, org, DENY_HTTP_TO_EDITORS).status_code == 404
    assert client_for(org.owner).get(rules_url(org)).json() == {"node_rules": []}


@pytest.mark.django_db
def test_invalid_rules_are_refused_naming_the_field_and_index(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    response = put_rules(
        owner,
        org,
        [
            *DENY_HTTP_TO_EDITORS,
            {"node_type": "http_requets", "roles": ["editor"], "effect": "deny"},
            {"node_type": "llm_chat", "roles": ["editor"], "effect": "allow", "providers": ["x"]},
            {"node_type": "template", "roles": ["editor"], "effect": "allow", "providers": []},
            {
                "node_type": "template",
                "roles": ["editor"],
                "effect": "allow",
                "providers": ["fake"],
            },
        ],
    )
    assert response.status_code == 422, response.content
    fields = response.json()["fields"]
    assert set(fields) == {
        "node_rules.1.node_type",
        "node_rules.2.providers",
        "node_rules.3.providers",
        "node_rules.4.providers",
    }
    assert "unknown node type 'http_requets'" in fields["node_rules.1.node_type"]
    assert "unknown provider 'x'" in fields["node_rules.2.providers"]
    assert "calls no model" in fields["node_rules.4.providers"]

    bad_role = put_rules(owner, org, [{"node_type": "*", "roles": ["admin"], "effect": "deny"}])
    assert bad_role.status_code == 422
    assert "node_rules.0.roles.0" in bad_role.json()["fields"]
    assert owner.get(rules_url(org)).json() == {"node_rules": []}


@pytest.mark.django_db
def test_an_editor_cannot_save_a_denied_node_but_an_owner_can(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    assert put_rules(owner, org, DENY_HTTP_TO_EDITORS).status_code == 200
    editor = client_for(member(org, WorkspaceRole.EDITOR))

    created = editor.post(
        f"{base(org)}/flows",
        {"name": "Fetcher", "document": http_flow()},
        content_type="application/json",
    )
    assert created.status_code == 422, created.content
    body = created.json()
    assert body["code"] == "node_denied"
    assert set(body["fields"]) == {"nodes.fetch"}
    message = body["fields"]["nodes.fetch"]
    assert "may not be used by you (editor)" in message
    assert "node rule #0 denies 'http_request' to editors" in message
    assert "ask a workspace owner" in message
    assert not Flow.objects.filter(name="Fetcher").exists()  # nothing half-created

    # An editor's save of an allowed flow goes through; adding the denied node does not,
    # and the last good version stays.
    flow_id = create_flow(editor, org)
    refused = editor.post(
        f"{base(org)}/flows/{flow_id}/versions",
        {"document": http_flow()},
        content_type="application/json",
    )
    assert refused.status_code == 422
    assert refused.json()["fields"].keys() == {"nodes.fetch"}
    assert editor.get(f"{base(org)}/flows/{flow_id}").json()["document"]["nodes"][0]["id"] == "inp"

    validated = editor.post(
        f"{base(org)}/flows/validate", {"document": http_flow()}, content_type="application/json"
    )
    assert validated.json()["valid"] is False
    issue = next(i for i in validated.json()["issues"] if i["code"] == "node_denied")
    assert issue["node"] == "fetch"
    assert "node rule #0" in issue["message"]

    assert create_flow(owner, org, http_flow())
    owner_validated = owner.post(
        f"{base(org)}/flows/validate", {"document": http_flow()}, content_type="application/json"
    )
    assert owner_validated.json()["valid"] is True


@pytest.mark.django_db
def test_only_approved_providers_and_the_most_specific_rule_decides(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    editor = client_for(member(org, WorkspaceRole.EDITOR))
    rules = [
        {"node_type": "*", "roles": ["editor"], "effect": "allow", "providers": ["openai"]},
        {"node_type": "llm_chat", "roles": ["editor"], "effect": "allow", "providers": ["fake"]},
    ]
    assert put_rules(owner, org, rules).status_code == 200

    def save(document: dict[str, Any]) -> Any:
        return editor.post(
            f"{base(org)}/flows",
            {"name": "Asker", "document": document},
            content_type="application/json",
        )

    assert save(ask_flow("fake")).status_code == 201  # llm_chat's own rule allows fake
    refused = save(ask_flow("anthropic"))
    assert refused.status_code == 422
    assert (
        "node rule #1 allows 'llm_chat' to editors only with provider fake, and this node "
        "calls 'anthropic'" in refused.json()["fields"]["nodes.ask"]
    )
    structured = {
        "schema": 1,
        "nodes": [
            {"id": "inp", "type": "input", "config": {"fields": [{"name": "q", "type": "text"}]}},
            {
                "id": "extract",
                "type": "structured_output",
                "config": {"provider": "fake", "model": "m-1", "schema": {"type": "object"}},
            },
            {"id": "out", "type": "output", "config": {"name": "data"}},
        ],
        "edges": [
            {"from": "inp.q", "to": "extract.prompt"},
            {"from": "extract.data", "to": "out.value"},
        ],
    }
    refused = save(structured)  # the '*' rule: other model-calling nodes only with openai
    assert refused.status_code == 422, refused.content
    assert (
        "node rule #0 allows every node type to editors only with provider openai"
        in (refused.json()["fields"]["nodes.extract"])
    )
    assert save(GREETING).status_code == 201  # nodes calling no model are not concerned
    assert create_flow(owner, org, ask_flow("anthropic"))  # owners are not concerned

    # Deny everything to editors but the greeting's node types.
    assert (
        put_rules(
            owner,
            org,
            [
                {"node_type": "*", "roles": ["editor"], "effect": "deny"},
                *(
                    {"node_type": t, "roles": ["editor"], "effect": "allow"}
                    for t in ("input", "template", "output")
                ),
            ],
        ).status_code
        == 200
    )
    assert save(GREETING).status_code == 201
    assert (
        "node rule #0 denies every node type to editors"
        in (save(http_flow()).json()["fields"]["nodes.fetch"])
    )


@pytest.mark.django_db
def test_a_caller_whose_role_is_denied_cannot_start_the_run(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org, http_flow())
    assert put_rules(owner, org, DENY_HTTP_TO_EDITORS).status_code == 200
    editor = client_for(member(org, WorkspaceRole.EDITOR))
    refused = editor.post(f"{base(org)}/flows/{flow_id}/runs", {}, content_type="application/json")
    assert refused.status_code == 403, refused.content
    body = refused.json()
    assert body["code"] == "node_denied"
    assert "This run cannot start" in body["detail"]
    assert "may not be used by you (editor)" in body["fields"]["nodes.fetch"]
    assert not Run.objects.filter(flow_id=flow_id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_in_flight_stops_at_a_node_a_rule_now_refuses(
    engine_worker: str, org: OrgFixture, client_for: Any
) -> None:
    """An editor's flow, saved and started before the owner denied llm_chat to editors: the
    worker runs the first node, refuses the LLM node with the rule, skips what follows."""
    owner = client_for(org.owner)
    editor = client_for(member(org, WorkspaceRole.EDITOR))
    flow_id = create_flow(editor, org, ask_flow("fake", first_seconds=2))
    started = owner.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hi"}},
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    run_id = started.json()["id"]
    rule = [{"node_type": "llm_chat", "roles": ["editor"], "effect": "deny"}]
    assert put_rules(owner, org, rule).status_code == 200

    done = wait_run(owner, org, run_id)
    assert done["status"] == "failed"
    assert done["nodes"]["first"]["status"] == "completed"
    refusal = done["nodes"]["ask"]["error"]
    assert "Node 'ask' (llm_chat) may not be used by the flow's author (editor)" in refusal
    assert "node rule #0 denies 'llm_chat' to editors" in refusal
    assert done["nodes"]["after"]["status"] == "skipped"
    assert ledger(engine_worker, run_id) == [("first", "start"), ("first", "end")]
    events = owner.get(f"{base(org)}/runs/{run_id}/events").json()
    assert not any(e["type"] == "LLM_USAGE" for e in events)  # the provider was never called

    # Started now, the same flow is refused at once: its author's role is denied.
    again = owner.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hi"}},
        content_type="application/json",
    )
    assert again.status_code == 422, again.content
    assert "the flow's author (editor)" in again.json()["fields"]["nodes.ask"]

    # Lifting the rule lets it run to the end.
    assert put_rules(owner, org, []).status_code == 200
    run = owner.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hi"}},
        content_type="application/json",
    )
    finished = wait_run(owner, org, run.json()["id"])
    assert finished["status"] == "completed", finished["error"]


def test_an_agents_node_tool_is_judged_like_a_node_of_the_flow(
    org: OrgFixture, client_for: Any
) -> None:
    """A denied node type cannot come back as an agent's tool."""
    owner = client_for(org.owner)
    assert put_rules(owner, org, DENY_HTTP_TO_EDITORS).status_code == 200
    editor = client_for(member(org, WorkspaceRole.EDITOR))
    fetch_tool = {"name": "fetch", "node": {"type": "http_request", "config": {}}}
    document = {
        "schema": 1,
        "nodes": [
            {"id": "q", "type": "constant", "config": {"value": "look it up", "type": "text"}},
            {
                "id": "helper",
                "type": "agent",
                "config": {"provider": "fake", "model": "fake-echo", "tools": [fetch_tool]},
            },
            {"id": "out", "type": "output", "config": {"name": "answer"}},
        ],
        "edges": [
            {"from": "q.value", "to": "helper.prompt"},
            {"from": "helper.text", "to": "out.value"},
        ],
    }
    created = editor.post(
        f"{base(org)}/flows",
        {"name": "Helper", "document": document},
        content_type="application/json",
    )
    assert created.status_code == 422, created.content
    body = created.json()
    assert body["code"] == "node_denied"
    assert body["fields"].keys() == {"nodes.helper"}
    message = body["fields"]["nodes.helper"]
    assert "Node 'helper.tools.fetch' (http_request) may not be used by you (editor)" in message
    assert create_flow(owner, org, document)  # the rule is for editors only

    # nor as the tool of an agent that is itself a tool
    inner_agent = {"type": "agent", "config": {"provider": "fake", "model": "fake-echo"}}
    inner_agent["config"]["tools"] = [fetch_tool]  # type: ignore[index]
    document["nodes"][1]["config"]["tools"] = [{"name": "helper2", "node": inner_agent}]
    nested = editor.post(
        f"{base(org)}/flows",
        {"name": "Nested", "document": document},
        content_type="application/json",
    )
    assert nested.status_code == 422, nested.content
    assert (
        "Node 'helper.tools.helper2.tools.fetch' (http_request)"
        in nested.json()["fields"]["nodes.helper"]
    )
