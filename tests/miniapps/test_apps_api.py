"""Mini-apps through the API: publishing a flow version (and rolling back), visitors as
callers (anonymous with a visitor token, members, app keys), rate limits per visitor and per
app that hold under concurrent requests, what a visitor's stream shows, and embedding."""

import threading
import time
from typing import Any

import httpx
import pytest
from django.db import close_old_connections
from django.test import Client

from flows.models import Run
from miniapps.models import AppRun, RateWindow
from tenants.models import AuditEvent, Membership
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import OrgFixture, make_api_key, make_workspace
from tests.flows.test_flows_api import GREETING, base, create_flow, wait_run
from tests.flows.test_live_stream import ASK, read_sse


def publish(client: Client, org: OrgFixture, flow_id: str, **settings: Any) -> dict[str, Any]:
    body = {"flow_id": flow_id, "slug": "greeter", "title": "Greeter", **settings}
    response = client.post(f"{base(org)}/apps", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def public(org: OrgFixture, slug: str = "greeter") -> str:
    return f"/api/apps/{org.org.slug}/{slug}"


def open_app(org: OrgFixture, slug: str = "greeter") -> Client:
    """An anonymous browser that opened the app and keeps the visitor token it was given."""
    opened = Client().get(public(org, slug))
    assert opened.status_code == 200, opened.content
    token = opened.json()["visitor_token"]
    assert token
    return Client(headers={"X-App-Visitor": token})


def run_app(client: Client, org: OrgFixture, inputs: dict[str, Any], slug: str = "greeter") -> Any:
    return client.post(
        f"{public(org, slug)}/runs", {"inputs": inputs}, content_type="application/json"
    )


def wait_visitor_run(client: Client, org: OrgFixture, run_id: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"{public(org)}/runs/{run_id}").json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


@pytest.mark.django_db
def test_publishing_needs_an_editor_and_a_free_slug_and_is_audited(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org)
    viewer = org.add_member(OrgRole.MEMBER)
    org.grant(viewer, WorkspaceRole.VIEWER)
    refused = client_for(viewer).post(
        f"{base(org)}/apps",
        {"flow_id": flow_id, "slug": "greeter", "title": "Greeter"},
        content_type="application/json",
    )
    assert refused.status_code == 403
    assert "editor" in refused.json()["detail"]

    app = publish(owner, org, flow_id, allowed_origins=["https://Blog.Example.com/"])
    assert app["url"].endswith(f"/apps/{org.org.slug}/greeter")
    assert app["allowed_origins"] == ["https://blog.example.com"]
    assert f'src="{app["url"]}?embed=1"' in app["embed_html"]
    assert AuditEvent.objects.filter(org=org.org, action="app.published").count() == 1

    taken = owner.post(
        f"{base(org)}/apps",
        {"flow_id": flow_id, "slug": "greeter", "title": "Again"},
        content_type="application/json",
    )
    assert taken.status_code == 409
    assert taken.json()["fields"] == {"slug": "taken"}

    bad = owner.post(
        f"{base(org)}/apps",
        {
            "flow_id": flow_id,
            "slug": "other",
            "title": "Other",
            "allowed_origins": ["https://ok.example.com", "javascript:alert(1)", "https://a.b/x"],
        },
        content_type="application/json",
    )
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"allowed_origins.1", "allowed_origins.2"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
def test_an_anonymous_visitor_runs_the_app_and_sees_only_their_own_runs(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    publish(owner, org, create_flow(owner, org), description="Says hello")

    page = Client().get(public(org))
    assert page.status_code == 200
    body = page.json()
    assert body["title"] == "Greeter"
    assert body["inputs"] == [
        {"name": "name", "type": "text", "required": True, "description": "", "default": None}
    ]
    assert body["visitor"] == {"kind": "anonymous", "email": None}

    alice = open_app(org)
    started = run_app(alice, org, {"name": "Alice"})
    assert started.status_code == 201, started.content
    done = wait_visitor_run(alice, org, started.json()["id"])
    assert done["status"] == "completed", done["error"]
    assert done["outputs"] == {"greeting": "Hello Alice!"}

    # The run is the visitor's: the flow ran as its publisher, with no member as caller.
    run = Run.objects.get(id=started.json()["id"])
    assert run.flow_owner_id == org.owner.id
    assert run.caller_id is None
    assert AppRun.objects.get(run=run).visitor.startswith("anon:")

    bob = open_app(org)
    assert bob.get(f"{public(org)}/runs").json()["results"] == []
    assert [r["id"] for r in alice.get(f"{public(org)}/runs").json()["results"]] == [str(run.id)]
    assert bob.get(f"{public(org)}/runs/{run.id}").status_code == 404

    # Bad inputs name the field; no token, no run.
    bad = run_app(bob, org, {})
    assert bad.status_code == 422
    assert "name" in bad.json()["detail"]
    tokenless = run_app(Client(), org, {"name": "Eve"})
    assert tokenless.status_code == 401
    assert "X-App-Visitor" in tokenless.json()["detail"]
    forged = run_app(Client(headers={"X-App-Visitor": "forged:token"}), org, {"name": "Eve"})
    assert forged.status_code == 401


def start_of_a_minute(needed_seconds: float = 20.0) -> None:
    """Wait, if need be, for a minute with `needed_seconds` left: the limits count runs per
    calendar minute, and a test that crossed into the next would see its counts reset."""
    left = 60 - time.time() % 60
    if left < needed_seconds:
        time.sleep(left + 0.05)


@pytest.mark.django_db
def test_the_rate_limit_per_visitor_says_when_to_come_back_and_spares_other_visitors(
    org: OrgFixture, client_for: Any
) -> None:
    start_of_a_minute()
    owner = client_for(org.owner)
    publish(owner, org, create_flow(owner, org), visitor_rate_per_minute=2, app_rate_per_minute=3)
    alice, bob = open_app(org), open_app(org)
    assert run_app(alice, org, {"name": "a"}).status_code == 201
    assert run_app(alice, org, {"name": "a"}).status_code == 201
    limited = run_app(alice, org, {"name": "a"})
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert "2 runs of this app in this minute" in limited.json()["detail"]
    assert 1 <= int(limited["Retry-After"]) <= 60
    # An invalid request is not counted either way.
    assert run_app(bob, org, {"wrong": "x"}).status_code == 422
    assert run_app(bob, org, {"name": "b"}).status_code == 201
    # Three runs in the minute is the whole app's limit: the next visitor waits too.
    carol = open_app(org)
    busy = run_app(carol, org, {"name": "c"})
    assert busy.status_code == 429
    assert busy.json()["code"] == "app_rate_limited"
    assert AppRun.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_rate_limit_holds_under_concurrent_requests(org: OrgFixture, client_for: Any) -> None:
    start_of_a_minute()
    owner = client_for(org.owner)
    publish(owner, org, create_flow(owner, org), visitor_rate_per_minute=5)
    alice = open_app(org)
    statuses: list[int] = []
    barrier = threading.Barrier(12)

    def start() -> None:
        try:
            barrier.wait()
            statuses.append(run_app(alice, org, {"name": "racer"}).status_code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=start) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 5 + [429] * 7
    assert AppRun.objects.count() == 5
    assert RateWindow.objects.get(visitor__startswith="anon:").count == 5


@pytest.mark.django_db
def test_access_members_and_app_keys(
    org: OrgFixture, other_org: OrgFixture, client_for: Any, bearer: Any
) -> None:
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org)
    members_app = publish(owner, org, flow_id, slug="inside", access="members")
    key_app = publish(owner, org, flow_id, slug="partners", access="key")

    # Members only: an anonymous browser is asked to sign in; an outsider finds nothing.
    asked = Client().get(public(org, "inside"))
    assert asked.status_code == 401
    assert "sign in" in asked.json()["detail"]
    assert client_for(other_org.owner).get(public(org, "inside")).status_code == 404
    member = org.add_member(OrgRole.MEMBER)
    as_member = client_for(member)
    opened = as_member.get(public(org, "inside")).json()
    assert opened["visitor"] == {"kind": "member", "email": member.email}
    assert opened["visitor_token"] is None
    started = run_app(as_member, org, {"name": "m"}, slug="inside")
    assert started.status_code == 201
    assert Run.objects.get(id=started.json()["id"]).caller_id == member.id
    # ... and through an API key of the member (a program acting for them).
    _key, raw = make_api_key(member, org.org, name="member's program")
    assert run_app(bearer(raw), org, {"name": "p"}, slug="inside").status_code == 201
    _key, foreign = make_api_key(other_org.owner, other_org.org, name="outsider")
    assert bearer(foreign).get(public(org, "inside")).status_code == 404

    # Key apps: no key, no entry; a key works for its own app only, until revoked.
    assert run_app(Client(), org, {"name": "x"}, slug="partners").status_code == 401
    made = owner.post(
        f"{base(org)}/apps/{key_app['id']}/keys", {"name": "Acme"}, content_type="application/json"
    )
    assert made.status_code == 201
    app_key = made.json()["key"]
    assert app_key.startswith("ffa_")
    assert "key" not in owner.get(f"{base(org)}/apps/{key_app['id']}/keys").json()[0]
    as_partner = bearer(app_key)
    assert run_app(as_partner, org, {"name": "k"}, slug="partners").status_code == 201
    other_key = owner.post(
        f"{base(org)}/apps/{members_app['id']}/keys", {"name": "x"}, content_type="application/json"
    ).json()["key"]
    wrong = run_app(bearer(other_key), org, {"name": "k"}, slug="partners")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_app_key"
    key_id = made.json()["id"]
    assert owner.delete(f"{base(org)}/apps/{key_app['id']}/keys/{key_id}").status_code == 204
    assert run_app(as_partner, org, {"name": "k"}, slug="partners").status_code == 401
    assert AuditEvent.objects.filter(action__in=["app.key_created", "app.key_revoked"]).count() == 3


@pytest.mark.django_db
def test_unpublished_and_other_organisations_apps_answer_404(
    org: OrgFixture, other_org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    app = publish(owner, org, create_flow(owner, org))
    alice = open_app(org)
    # The same slug under another organisation is not this app.
    assert Client().get(public(other_org)).status_code == 404
    assert Client().get("/api/apps/no-such-org/greeter").status_code == 404
    response = owner.patch(
        f"{base(org)}/apps/{app['id']}", {"published": False}, content_type="application/json"
    )
    assert response.status_code == 200
    gone = Client().get(public(org))
    assert gone.status_code == 404
    assert "not published" in gone.json()["detail"]
    assert run_app(alice, org, {"name": "a"}).status_code == 404
    # Another organisation's owner cannot see or change it by id either.
    foreign = client_for(other_org.owner)
    other_base = f"/api/orgs/{other_org.org.slug}/workspaces/{other_org.workspace.id}"
    assert foreign.get(f"{other_base}/apps/{app['id']}").status_code == 404
    assert (
        foreign.patch(
            f"{other_base}/apps/{app['id']}", {"published": True}, content_type="application/json"
        ).status_code
        == 404
    )


@pytest.mark.django_db
def test_publishing_a_new_version_and_rolling_back_are_one_change_each(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org)
    app = publish(owner, org, flow_id)
    first = app["version"]
    document = {
        **GREETING,
        "nodes": [
            {
                "id": "inp",
                "type": "input",
                "config": {"fields": [{"name": "who", "type": "text", "description": "Your name"}]},
            },
            *GREETING["nodes"][1:],
        ],
        "edges": [{"from": "inp.who", "to": "greet.name"}, *GREETING["edges"][1:]],
    }
    saved = owner.post(
        f"{base(org)}/flows/{flow_id}/versions",
        {"document": document, "message": "ask for who"},
        content_type="application/json",
    )
    assert saved.status_code == 201, saved.content
    second = saved.json()["hash"]
    # Saving does not change what visitors get: publishing does.
    assert [f["name"] for f in Client().get(public(org)).json()["inputs"]] == ["name"]
    for version, field in ((second, "who"), (first, "name")):
        changed = owner.patch(
            f"{base(org)}/apps/{app['id']}", {"version": version}, content_type="application/json"
        )
        assert changed.status_code == 200
        assert changed.json()["version"] == version
        assert [f["name"] for f in Client().get(public(org)).json()["inputs"]] == [field]
    versions = AuditEvent.objects.filter(action="app.version_published").order_by("created_at")
    assert [(e.before, e.after) for e in versions] == [
        ({"version": first}, {"version": second}),
        ({"version": second}, {"version": first}),
    ]
    unknown = owner.patch(
        f"{base(org)}/apps/{app['id']}", {"version": "0" * 64}, content_type="application/json"
    )
    assert unknown.status_code == 404


@pytest.mark.django_db
def test_the_app_page_may_be_framed_only_by_the_allowed_sites(
    org: OrgFixture, client_for: Any, settings: Any, tmp_path: Any
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    settings.FRONTEND_DIST = tmp_path
    owner = client_for(org.owner)
    publish(owner, org, create_flow(owner, org), allowed_origins=["https://blog.example.com"])
    page = Client().get(f"/apps/{org.org.slug}/greeter")
    assert page.status_code == 200
    assert page["Content-Security-Policy"] == "frame-ancestors 'self' https://blog.example.com"
    assert "X-Frame-Options" not in page
    console = Client().get("/login")
    assert console["X-Frame-Options"] == "DENY"
    unknown = Client().get(f"/apps/{org.org.slug}/nothing-here")
    assert unknown["Content-Security-Policy"] == "frame-ancestors 'self'"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
def test_a_visitor_follows_the_answer_live_without_the_flows_insides(
    web_server: str, fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    publish(owner, org, create_flow(owner, org, ASK), slug="ask", title="Ask")
    opened = httpx.get(f"{web_server}{public(org, 'ask')}", timeout=10).json()
    token = opened["visitor_token"]
    started = httpx.post(
        f"{web_server}{public(org, 'ask')}/runs",
        json={"inputs": {"q": "tell me about lisbon"}},
        headers={"X-App-Visitor": token},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    url = f"{web_server}{public(org, 'ask')}/runs/{run_id}/stream"
    # EventSource sends no headers: the token may come in the query.
    with httpx.stream("GET", url, params={"visitor": token}, timeout=30) as response:
        assert response.status_code == 200
        received = read_sse(response)
    types = [e.type.value for _, e, _ in received]
    assert types[0] == "RUN_STARTED"
    assert types[-1] == "RUN_FINISHED"
    text = "".join(e.delta for _, e, _ in received if e.type.value == "TEXT_MESSAGE_CONTENT")
    done = wait_run(owner, org, run_id)
    assert text == done["outputs"]["answer"]
    assert "CUSTOM" not in types  # no usage, node values or tool calls
    member_view = owner.get(f"{base(org)}/runs/{run_id}/events").json()
    assert any(e["type"] == "LLM_USAGE" for e in member_view)
    # Another visitor (or none) cannot follow it.
    stranger = httpx.get(f"{web_server}{public(org, 'ask')}", timeout=10).json()["visitor_token"]
    assert httpx.get(url, params={"visitor": stranger}, timeout=10).status_code == 404
    assert httpx.get(url, timeout=10).status_code == 401


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
def test_an_apps_budget_stops_its_visitors_llm_calls_and_no_one_elses(
    fake_llm: Any, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    flow_id = create_flow(owner, org, ASK)
    app = publish(owner, org, flow_id, slug="ask", title="Ask")
    budget = owner.post(
        f"/api/orgs/{org.org.slug}/budgets",
        {
            "name": "Ask app",
            "scope": "app",
            "app_id": app["id"],
            "period": "day",
            "limit_usd": "0.000001",  # below one call's hold
            "thresholds": [100],
        },
        content_type="application/json",
    )
    assert budget.status_code == 201, budget.content
    assert budget.json()["target_label"] == "app Ask"

    visitor = open_app(org, "ask")
    started = run_app(visitor, org, {"q": "hello there"}, slug="ask")
    assert started.status_code == 201
    done = wait_run(owner, org, started.json()["id"])
    assert done["status"] == "failed"
    assert "budget exceeded: 'Ask app'" in done["error"]
    seen = visitor.get(f"{public(org, 'ask')}/runs/{started.json()['id']}").json()
    assert "budget exceeded" in seen["error"]

    # The same flow run by a member, not through the app, is not the app's spending.
    direct = owner.post(
        f"{base(org)}/flows/{flow_id}/runs",
        {"inputs": {"q": "hello"}},
        content_type="application/json",
    )
    assert wait_run(owner, org, direct.json()["id"])["status"] == "completed"


@pytest.mark.django_db
def test_an_app_key_in_the_url_is_refused_before_anything_runs(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    app = publish(owner, org, create_flow(owner, org), access="key")
    key = owner.post(
        f"{base(org)}/apps/{app['id']}/keys", {"name": "leaky"}, content_type="application/json"
    ).json()["key"]
    refused = Client().post(
        f"{public(org)}/runs?key={key}", {"inputs": {"name": "x"}}, content_type="application/json"
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == "api_key_in_query"
    assert AppRun.objects.count() == 0


@pytest.mark.django_db
def test_an_api_key_opens_only_the_apps_of_its_own_organisation_and_workspace(
    org: OrgFixture, other_org: OrgFixture, client_for: Any, bearer: Any
) -> None:
    """A member of two organisations: their key made in the other one does not open this
    organisation's members-only app; nor does a key scoped to another workspace."""
    owner = client_for(org.owner)
    publish(owner, org, create_flow(owner, org), slug="inside", access="members")
    both = org.add_member(OrgRole.MEMBER)
    Membership.objects.create(org=other_org.org, user=both, role=OrgRole.MEMBER)
    _key, elsewhere = make_api_key(both, other_org.org, name="made in the other org")
    assert bearer(elsewhere).get(public(org, "inside")).status_code == 404
    assert run_app(bearer(elsewhere), org, {"name": "x"}, slug="inside").status_code == 404
    side = make_workspace(org, "Side project")
    org.grant(both, WorkspaceRole.EDITOR, side)
    _key, scoped = make_api_key(both, org.org, name="side only", workspace=side, role="editor")
    assert bearer(scoped).get(public(org, "inside")).status_code == 404
    _key, own = make_api_key(both, org.org, name="this org")
    assert bearer(own).get(public(org, "inside")).json()["visitor"]["kind"] == "member"
    assert AppRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("engine_worker")
def test_a_visitor_sees_that_a_person_must_answer_but_not_who_or_what_they_wrote(
    web_server: str, org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    document = {
        "schema": 1,
        "nodes": [
            {
                "id": "inp",
                "type": "input",
                "config": {"fields": [{"name": "amount", "type": "number"}]},
            },
            {
                "id": "ask",
                "type": "approval",
                "config": {
                    "title": "Refund the visitor",
                    "message": "Refund {{ data }} EUR (internal ledger 7731)?",
                    "approvers": {"role": "editor", "users": ["secret.approver@example.com"]},
                },
            },
            {"id": "out", "type": "output", "config": {"name": "refunded"}},
        ],
        "edges": [
            {"from": "inp.amount", "to": "ask.data"},
            {"from": "ask.approved", "to": "out.value"},
        ],
    }
    publish(owner, org, create_flow(owner, org, document), slug="refunds", title="Refunds")
    token = httpx.get(f"{web_server}{public(org, 'refunds')}", timeout=10).json()["visitor_token"]
    started = httpx.post(
        f"{web_server}{public(org, 'refunds')}/runs",
        json={"inputs": {"amount": 20}},
        headers={"X-App-Visitor": token},
        timeout=10,
    )
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 30
    while not owner.get(f"{base(org)}/runs/{run_id}/requests").json():
        assert time.monotonic() < deadline, "the run did not reach its approval"
        time.sleep(0.1)
    answered = owner.post(
        f"{base(org)}/runs/{run_id}/requests/ask/answer",
        {"decision": "approve", "comment": "checked against ledger 7731"},
        content_type="application/json",
    )
    assert answered.status_code == 200, answered.content
    with httpx.stream(
        "GET",
        f"{web_server}{public(org, 'refunds')}/runs/{run_id}/stream",
        params={"visitor": token},
        timeout=30,
    ) as response:
        text = "".join(response.iter_text())
    assert '"HITL_REQUESTED"' in text
    assert "Refund the visitor" in text
    assert '"HITL_RESOLVED"' in text
    for private in ("secret.approver@example.com", org.owner.email, "7731", "approvers"):
        assert private not in text, f"{private!r} reached the visitor"


@pytest.mark.django_db
def test_new_anonymous_identities_do_not_lift_the_limit_of_their_address(
    org: OrgFixture, client_for: Any
) -> None:
    start_of_a_minute()
    owner = client_for(org.owner)
    publish(owner, org, create_flow(owner, org), visitor_rate_per_minute=1)
    # Eleven fresh identities from one address: ten visitors' worth is its limit.
    answers = [run_app(open_app(org), org, {"name": f"v{i}"}).status_code for i in range(11)]
    assert answers == [201] * 10 + [429]
    refused = run_app(open_app(org), org, {"name": "again"})
    assert refused.json()["code"] == "address_rate_limited"
    # A member is not counted by address.
    member = org.add_member(OrgRole.MEMBER)
    assert run_app(client_for(member), org, {"name": "m"}).status_code == 201


@pytest.mark.django_db
def test_who_opens_an_app_to_more_people_is_the_one_it_then_runs_as(
    org: OrgFixture, client_for: Any
) -> None:
    owner = client_for(org.owner)
    app = publish(owner, org, create_flow(owner, org), access="members")
    assert app["published_by_email"] == org.owner.email
    editor = org.add_member(OrgRole.MEMBER, email="ed.editor@example.com")
    org.grant(editor, WorkspaceRole.EDITOR)
    renamed = client_for(editor).patch(
        f"{base(org)}/apps/{app['id']}", {"title": "Greeter 2"}, content_type="application/json"
    )
    assert renamed.json()["published_by_email"] == org.owner.email  # a title is not a grant
    opened = client_for(editor).patch(
        f"{base(org)}/apps/{app['id']}", {"access": "public"}, content_type="application/json"
    )
    assert opened.json()["published_by_email"] == "ed.editor@example.com"
    started = run_app(open_app(org), org, {"name": "x"})
    assert Run.objects.get(id=started.json()["id"]).flow_owner_id == editor.id
