"""Every API route, every method, called by the owner of organisation B with the ids of
organisation A: 404 (the ids reveal nothing), no data of A in the answer, and not one row of
any tenancy table changed.

Routes are enumerated from the URL resolver and the ninja API object, so a new route is
walked without anyone remembering to add it; a route whose path parameter this test does not
know, or that takes no object and is not listed below with a reason, fails the test."""

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver
from django.utils.http import urlsafe_base64_encode

from fireflow.api import api
from flows import services as flow_services
from flows.models import Flow
from tenants.access import access_workspace
from tenants.models import Invitation, Membership, Workspace
from tenants.roles import OrgRole, WorkspaceRole
from tests.factories import (
    OrgFixture,
    make_api_key,
    make_invitation,
    make_org,
    make_workspace,
)
from tests.helpers import db_snapshot

pytestmark = pytest.mark.django_db

# Routes that name no object of any organisation, and why walking them with another
# organisation's ids means nothing. They are still probed below where a probe makes sense.
NO_OBJECT_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/"): "API root: links to the docs, no data",
    ("GET", "/api/openapi.json"): "public schema, no tenant data",
    ("GET", "/api/docs"): "public API docs, no tenant data",
    ("GET", "/api/auth/csrf"): "public: sets the caller's CSRF cookie",
    ("POST", "/api/auth/signup"): "public: creates a new organisation, names none",
    ("POST", "/api/auth/login"): "public: credentials, not ids",
    ("POST", "/api/auth/logout"): "ends the caller's own session",
    ("GET", "/api/auth/me"): "the caller's own account (probed: lists no foreign org)",
    ("POST", "/api/auth/verify-email"): "public: a signed token, not an id (probed)",
    ("POST", "/api/auth/verify-email/resend"): "the caller's own account",
    ("POST", "/api/auth/password-reset"): "public: same answer for every address",
    ("POST", "/api/auth/password-reset/confirm"): "public: uid + signed token (probed)",
    ("POST", "/api/orgs"): "creates a new organisation of the caller's own",
    ("GET", "/api/node-types"): "the node-type catalogue, the same for everyone",
    ("GET", "/api/inbox"): "the caller's own pending requests, found through its own "
    "memberships (probed: lists nothing of another org)",
    ("GET", "/api/health"): "liveness of the service, no tenant data",
    ("POST", "/api/billing/stripe/webhook"): "Stripe's signed events, verified on the raw "
    "body; names Stripe's own objects, which are re-read from Stripe",
    ("GET", "/api/admin/vault"): "platform staff only (404 to anyone else): key versions, counts",
    ("POST", "/api/admin/vault/rewrap"): "platform staff only (404 to anyone else): a job",
}

# Routes an API key may never use: the key is refused (403 not_for_keys) before any object
# is looked up, which reveals nothing either.
REFUSED_TO_API_KEYS = {("POST", "/api/invitations/{token}/accept")}

# Path parameters the walk knows how to fill with A's and B's ids.
TENANCY_PARAMS = ("org_slug", "ws_id", "member_id", "invitation_id", "key_id", "user_id")

# To walk routes of another package, teach the walk its path parameters: a maker creates one
# object of yours inside the given organisation and workspace (through your services) and
# returns the value to put in the URL. It is called once for the victim, once for the
# attacker. Routes that take a body also need an entry in BODIES.
ID_MAKERS: dict[str, Callable[[OrgFixture, Workspace], str]] = {}


# --- flows and runs ------------------------------------------------------------------------

FLOW_DOCUMENT = {
    "schema": 1,
    "nodes": [
        {"id": "inp", "type": "input", "config": {"fields": [{"name": "name", "type": "text"}]}},
        {"id": "greet", "type": "template", "config": {"template": "Hello {{ name }}!"}},
        {"id": "out", "type": "output", "config": {"name": "greeting"}},
    ],
    "edges": [{"from": "inp.name", "to": "greet.name"}, {"from": "greet.text", "to": "out.value"}],
}
_flows: dict[Any, Flow] = {}


def _flow(fx: OrgFixture, workspace: Workspace) -> Flow:
    if workspace.id not in _flows:
        wctx = access_workspace(fx.owner_ctx(), workspace.id)
        # Versions are content-addressed: each organisation's document differs, so that
        # the victim's version hash is not also the attacker's.
        nodes = [dict(n) for n in FLOW_DOCUMENT["nodes"]]  # type: ignore[attr-defined]
        nodes[1]["config"] = {"template": f"Hello {{{{ name }}}} from {fx.org.slug}"}
        _flows[workspace.id] = flow_services.flow_create(
            wctx=wctx, name="Victim flow", document={**FLOW_DOCUMENT, "nodes": nodes}
        )
    return _flows[workspace.id]


def _run(fx: OrgFixture, workspace: Workspace) -> str:
    wctx = access_workspace(fx.owner_ctx(), workspace.id)
    run, _new = flow_services.run_start(
        wctx=wctx, flow_id=_flow(fx, workspace).id, inputs={"name": "victim"}
    )
    return str(run.id)


def _version_hash(fx: OrgFixture, workspace: Workspace) -> str:
    version = _flow(fx, workspace).current_version
    assert version is not None
    return version.hash


ID_MAKERS.update(
    flow_id=lambda fx, ws: str(_flow(fx, ws).id),
    version_hash=_version_hash,
    run_id=_run,
    # A node of a run's approval: distinct per organisation, so that a mix with only this
    # id of A's names no request of B's either.
    node_id=lambda fx, ws: f"ask-{fx.org.slug}",
)


# --- vault -----------------------------------------------------------------------------------


def _secret(fx: OrgFixture, workspace: Workspace) -> str:
    """A shared secret of the workspace (the personal routes answer 404 for any id that is
    not the caller's own; tests/vault covers a victim's personal secret by id)."""
    from vault import services as vault_services

    wctx = access_workspace(fx.owner_ctx(), workspace.id)
    secret = vault_services.secret_create(
        ctx=wctx.org_ctx, wctx=wctx, name=f"victim-key-{fx.org.slug}", value="sk-victim-value"
    )
    return str(secret.id)


ID_MAKERS.update(secret_id=_secret)


# --- cost control ----------------------------------------------------------------------------


def _budget(fx: OrgFixture, workspace: Workspace) -> str:
    from decimal import Decimal

    from billing import services as billing_services

    budget = billing_services.budget_create(
        ctx=fx.owner_ctx(),
        name=f"victim budget {fx.org.slug}",
        scope="workspace",
        workspace_id=workspace.id,
        period="month",
        limit_usd=Decimal("12.5"),
        thresholds=[80],
    )
    return str(budget.id)


def _kill_switch(fx: OrgFixture, workspace: Workspace) -> str:
    """A kill switch pulled on the workspace and lifted again (runs may still start)."""
    from billing import services as billing_services

    switch = billing_services.kill_switch_pull(
        ctx=fx.owner_ctx(), workspace_id=workspace.id, reason=f"drill {fx.org.slug}"
    )
    billing_services.kill_switch_lift(ctx=fx.owner_ctx(), switch_id=switch.id)
    return str(switch.id)


def _webhook(fx: OrgFixture, workspace: Workspace) -> str:
    from billing import services as billing_services

    hook = billing_services.webhook_create(
        ctx=fx.owner_ctx(), url=f"https://hooks.example.com/{fx.org.slug}"
    )
    return str(hook.id)


ID_MAKERS.update(budget_id=_budget, switch_id=_kill_switch, webhook_id=_webhook)


# --- mini-apps -------------------------------------------------------------------------------

_apps: dict[Any, Any] = {}


def _app(fx: OrgFixture, workspace: Workspace) -> Any:
    """A members-only app of the organisation (a public app is public by design: anyone may
    open it, which tests/miniapps covers; here, an outsider must find nothing)."""
    from miniapps import services as app_services

    if workspace.id not in _apps:
        wctx = access_workspace(fx.owner_ctx(), workspace.id)
        _apps[workspace.id] = app_services.app_publish(
            wctx=wctx,
            flow_id=_flow(fx, workspace).id,
            slug=f"app-{fx.org.slug}",
            title=f"Victim app {fx.org.slug}",
            access="members",
        )
    return _apps[workspace.id]


def _app_key(fx: OrgFixture, workspace: Workspace) -> str:
    from miniapps import services as app_services

    wctx = access_workspace(fx.owner_ctx(), workspace.id)
    key, _new = app_services.key_create(
        wctx=wctx, app_id=_app(fx, workspace).id, name=f"victim app key {fx.org.slug}"
    )
    return str(key.id)


ID_MAKERS.update(
    app_id=lambda fx, ws: str(_app(fx, ws).id),
    app_slug=lambda fx, ws: _app(fx, ws).slug,
    app_key_id=_app_key,
)
# `token` is a secret, not an id: the walk tries A's invitation id and its stored digest,
# neither of which may work as the token.
TOKEN_PARAM = "token"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {param} placeholders, as in the OpenAPI schema

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def _ninja_routes() -> set[Route]:
    routes = set()
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            full = "/api/" + "/".join(p for p in f"{prefix}/{path}".split("/") if p)
            for operation in path_view.operations:
                routes.update(Route(method, full) for method in operation.methods)
    return routes


def _resolver_paths() -> set[str]:
    api_resolver = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and str(p.pattern) == "api/"
    )
    paths = set()
    for pattern in api_resolver.url_patterns:
        raw = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        paths.add("/api/" + raw)
    return paths


def all_routes() -> list[Route]:
    routes = _ninja_routes()
    resolved = _resolver_paths()
    ninja_paths = {r.path for r in routes}
    extra = resolved - ninja_paths - {path for _m, path in NO_OBJECT_ROUTES}
    assert not extra, f"URL patterns under /api/ that are not ninja operations: {extra}"
    missing = ninja_paths - resolved
    assert not missing, f"ninja operations the URL resolver does not serve: {missing}"
    for method, path in NO_OBJECT_ROUTES:
        if path in resolved and path not in ninja_paths:
            routes.add(Route(method, path))
    return sorted(routes, key=lambda r: (r.path, r.method))


# Plausible valid bodies; `ids` holds the id chosen for each parameter (A's or B's), so ids
# inside bodies are walked too. A route that takes a body must be listed here.
Ids = dict[str, str]
BODIES: dict[tuple[str, str], tuple[tuple[str, ...], Callable[[Ids], dict[str, Any]]]] = {
    ("PATCH", "/api/orgs/{org_slug}/members/{member_id}"): ((), lambda ids: {"role": "owner"}),
    ("POST", "/api/orgs/{org_slug}/invitations"): (
        ("ws_id",),
        lambda ids: {
            "email": "mallory-friend@example.com",
            "role": "owner",
            "workspace_id": ids["ws_id"],
            "workspace_role": "owner",
        },
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces"): ((), lambda ids: {"name": "Pwned"}),
    ("POST", "/api/orgs/{org_slug}/api-keys"): (
        ("ws_id",),
        lambda ids: {"name": "exfil", "role": "owner", "workspace_id": ids["ws_id"]},
    ),
    ("PATCH", "/api/orgs/{org_slug}/workspaces/{ws_id}"): (
        (),
        lambda ids: {"name": "Pwned", "archived": True},
    ),
    ("PUT", "/api/orgs/{org_slug}/workspaces/{ws_id}/members/{user_id}"): (
        (),
        lambda ids: {"role": "owner"},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/flows/validate"): (
        (),
        lambda ids: {"document": FLOW_DOCUMENT},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/flows"): (
        (),
        lambda ids: {"name": "Pwned", "document": FLOW_DOCUMENT},
    ),
    ("PATCH", "/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}"): (
        (),
        lambda ids: {"name": "Pwned", "description": "pwned"},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}/versions"): (
        (),
        lambda ids: {"document": {**FLOW_DOCUMENT, "nodes": FLOW_DOCUMENT["nodes"][::-1]}},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/flows/{flow_id}/runs"): (
        (),
        lambda ids: {"inputs": {"name": "mallory"}},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}/requests/{node_id}/answer"): (
        (),
        lambda ids: {"decision": "approve", "comment": "pwned"},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/runs/{run_id}/fork"): (
        (),
        lambda ids: {"node": "greet"},
    ),
    ("PUT", "/api/orgs/{org_slug}/workspaces/{ws_id}/network"): (
        (),
        lambda ids: {"http_allow": ["attacker.example:443", "169.254.169.254"]},
    ),
    ("PUT", "/api/orgs/{org_slug}/workspaces/{ws_id}/node-rules"): (
        (),
        lambda ids: {"node_rules": [{"node_type": "*", "roles": ["owner"], "effect": "deny"}]},
    ),
    ("POST", "/api/orgs/{org_slug}/secrets"): ((), lambda ids: {"name": "exfil", "value": "x"}),
    ("PUT", "/api/orgs/{org_slug}/secrets/{secret_id}/value"): ((), lambda ids: {"value": "x"}),
    ("PATCH", "/api/orgs/{org_slug}/secrets/{secret_id}"): ((), lambda ids: {"description": "x"}),
    ("PATCH", "/api/orgs/{org_slug}/workspaces/{ws_id}/secrets/{secret_id}"): (
        (),
        lambda ids: {"description": "pwned", "allowed_flows": []},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/secrets"): (
        (),
        lambda ids: {"name": "exfil", "value": "x"},
    ),
    ("PUT", "/api/orgs/{org_slug}/workspaces/{ws_id}/secrets/{secret_id}/value"): (
        (),
        lambda ids: {"value": "pwned"},
    ),
    ("POST", "/api/orgs/{org_slug}/budgets"): (
        ("ws_id",),
        lambda ids: {
            "name": "pwned",
            "scope": "workspace",
            "workspace_id": ids["ws_id"],
            "limit_usd": "0.01",
        },
    ),
    ("PATCH", "/api/orgs/{org_slug}/budgets/{budget_id}"): (
        (),
        lambda ids: {"limit_usd": "1000000", "enabled": False},
    ),
    ("POST", "/api/orgs/{org_slug}/kill-switches"): (
        ("ws_id",),
        lambda ids: {"workspace_id": ids["ws_id"], "reason": "pwned"},
    ),
    ("POST", "/api/orgs/{org_slug}/billing/checkout"): ((), lambda ids: {"plan": "pro"}),
    ("POST", "/api/orgs/{org_slug}/alert-webhooks"): (
        (),
        lambda ids: {"url": "https://attacker.example/hook"},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/apps"): (
        ("flow_id",),
        lambda ids: {"flow_id": ids["flow_id"], "slug": "pwned", "title": "Pwned"},
    ),
    ("PATCH", "/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}"): (
        ("version_hash",),
        lambda ids: {"version": ids["version_hash"], "access": "public", "title": "Pwned"},
    ),
    ("POST", "/api/orgs/{org_slug}/workspaces/{ws_id}/apps/{app_id}/keys"): (
        (),
        lambda ids: {"name": "exfil"},
    ),
    ("POST", "/api/apps/{org_slug}/{app_slug}/runs"): (
        (),
        lambda ids: {"inputs": {"name": "mallory"}},
    ),
    ("POST", "/api/invitations/{token}/signup"): (
        (),
        lambda ids: {"name": "Mallory", "password": "mallory-long-passphrase-1"},
    ),
}


@dataclass
class Tenant:
    fixture: OrgFixture
    ids: Ids
    secrets: list[str]  # strings of this tenant that must not appear in the other's answers


def _victim() -> Tenant:
    a = make_org()
    secret_ws = make_workspace(a, "Victim Secret Project")
    member = a.add_member(OrgRole.MEMBER, email="victim-member@example.com")
    a.add_member(OrgRole.ADMIN, email="victim-admin@example.com")
    a.grant(member, WorkspaceRole.EDITOR, secret_ws)
    invitation, _token = make_invitation(
        a,
        email="victim-invitee@example.com",
        workspace=secret_ws,
        workspace_role=WorkspaceRole.VIEWER,
    )
    key, _raw = make_api_key(a.owner, a.org, name="victim key")
    return Tenant(
        fixture=a,
        ids={
            **{name: make(a, secret_ws) for name, make in ID_MAKERS.items()},
            "org_slug": a.org.slug,
            "ws_id": str(secret_ws.id),
            "member_id": str(Membership.objects.get(org=a.org, user=member).id),
            "invitation_id": str(invitation.id),
            "key_id": str(key.id),
            "user_id": str(member.id),
        },
        secrets=[
            a.org.name,
            "Victim Secret Project",
            "victim-member@example.com",
            "victim-invitee@example.com",
            "victim key",
            key.prefix,
            "sk-victim-value",  # a secret's value: in no answer, to anyone
            "victim-key-",  # the victim's secrets' names
            "victim budget",  # a budget of the victim's
            "hooks.example.com",  # the victim's alert webhook
            "Victim app",  # the victim's mini-app
            "victim app key",
        ],
    )


def _attacker() -> tuple[Tenant, str]:
    b = make_org()
    member = b.add_member(OrgRole.MEMBER)
    b.grant(member, WorkspaceRole.VIEWER)
    invitation, _token = make_invitation(b)
    spare_key, _raw = make_api_key(b.owner, b.org, name="spare")
    _key, raw = make_api_key(b.owner, b.org, role=OrgRole.OWNER, name="attacker key")
    return (
        Tenant(
            fixture=b,
            ids={
                **{name: make(b, b.workspace) for name, make in ID_MAKERS.items()},
                "org_slug": b.org.slug,
                "ws_id": str(b.workspace.id),
                "member_id": str(Membership.objects.get(org=b.org, user=member).id),
                "invitation_id": str(invitation.id),
                "key_id": str(spare_key.id),
                "user_id": str(member.id),
            },
            secrets=[],
        ),
        raw,
    )


def _call(client: Client, method: str, url: str, body: dict[str, Any] | None) -> Any:
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(client, method.lower())(url, **kwargs)


def _combinations(names: list[str]) -> Iterator[dict[str, str]]:
    """Which tenant each id comes from: every mix with at least one of A's ids."""
    for owners in itertools.product("AB", repeat=len(names)):
        if "A" in owners:
            yield dict(zip(names, owners, strict=True))


def test_every_route_with_another_orgs_ids_is_404_and_changes_nothing(settings) -> None:
    settings.RATE_LIMITS = {"signup": "1000/m", "login": "1000/m", "password_reset": "1000/m"}
    victim = _victim()
    attacker, attacker_key = _attacker()
    session = Client()
    session.force_login(attacker.fixture.owner)
    by_key = Client(headers={"Authorization": f"Bearer {attacker_key}"})
    # Both credentials work on the attacker's own organisation (and the key's last-used time
    # is recorded now, so the walk below must not change it).
    for client in (session, by_key):
        own = client.get(f"/api/orgs/{attacker.ids['org_slug']}/members")
        assert own.status_code == 200, own.content

    routes = all_routes()
    unknown = {
        (r.method, r.path, p)
        for r in routes
        for p in r.params
        if p not in (*TENANCY_PARAMS, *ID_MAKERS) and p != TOKEN_PARAM
    }
    assert not unknown, (
        f"routes with path parameters the isolation walk cannot fill: {unknown}. "
        "Teach the walk which id of organisation A to use for them."
    )
    unlisted = {
        (r.method, r.path)
        for r in routes
        if not r.params and (r.method, r.path) not in NO_OBJECT_ROUTES
    }
    assert not unlisted, (
        f"routes naming no object and not listed in NO_OBJECT_ROUTES: {unlisted}. "
        "List them with the reason they cannot leak another organisation's data."
    )

    schema_paths = api.get_openapi_schema()["paths"]
    invitation = Invitation.objects.get(id=victim.ids["invitation_id"])
    before = db_snapshot()
    calls = 0
    failures = []
    for route in routes:
        if not route.params:
            continue
        body_params, body_fn = BODIES.get((route.method, route.path), ((), None))
        if "requestBody" in schema_paths[route.path][route.method.lower()]:
            assert body_fn is not None, f"add a plausible body for {route.method} {route.path}"
        id_names = [p for p in route.params if p != TOKEN_PARAM] + [
            p for p in body_params if p not in route.params
        ]
        tokens = [str(invitation.id), invitation.token_hash] if TOKEN_PARAM in route.params else []
        mixes: list[tuple[dict[str, str], str | None]] = (
            [(dict.fromkeys(id_names, "A"), t) for t in tokens]
            if tokens
            else [(mix, None) for mix in _combinations(id_names)]
        )
        for mix, token in mixes:
            ids = {
                name: (victim if owner == "A" else attacker).ids[name]
                for name, owner in mix.items()
            }
            if token is not None:
                ids[TOKEN_PARAM] = token
            url = route.path.format(**ids)
            body = body_fn(ids) if body_fn else None
            for label, client in (("session", session), ("api key", by_key)):
                response = _call(client, route.method, url, body)
                calls += 1
                text = response.content.decode()
                leaked = [s for s in victim.secrets if s in text]
                expected = 404
                if label == "api key" and (route.method, route.path) in REFUSED_TO_API_KEYS:
                    expected = 403
                if response.status_code != expected or leaked:
                    failures.append(
                        f"{label} {route.method} {url} {body or ''} -> "
                        f"{response.status_code} {text[:200]} leaked={leaked}"
                    )
    assert not failures, "\n".join(failures)
    assert calls > 100
    assert db_snapshot() == before


def test_routes_naming_no_object_reveal_nothing_of_another_org(settings) -> None:
    victim = _victim()
    attacker, attacker_key = _attacker()
    session = Client()
    session.force_login(attacker.fixture.owner)
    by_key = Client(headers={"Authorization": f"Bearer {attacker_key}"})
    for client in (session, by_key):
        client.get("/api/auth/me")
    before = db_snapshot()
    for client in (session, by_key):
        me = client.get("/api/auth/me")
        assert me.status_code == 200
        assert [o["slug"] for o in me.json()["organizations"]] == [attacker.ids["org_slug"]]
        # The victim's owner's uid with a made-up token resets nothing.
        uid = urlsafe_base64_encode(str(victim.fixture.owner.id).encode())
        reset = client.post(
            "/api/auth/password-reset/confirm",
            {"uid": uid, "token": "cz8b4k-0123456789abcdef", "password": "mallory-passphrase-9"},
            content_type="application/json",
        )
        assert reset.status_code == 422
        verify = client.post(
            "/api/auth/verify-email",
            {"token": str(victim.fixture.owner.id)},
            content_type="application/json",
        )
        assert verify.status_code == 422
        # The inbox lists only what the caller's own memberships reach.
        inbox = client.get("/api/inbox")
        assert inbox.status_code == 200
        assert inbox.json() == []
        # Audit filters never reach outside the caller's organisation.
        audit = client.get(
            f"/api/orgs/{attacker.ids['org_slug']}/audit",
            {"actor_id": str(victim.fixture.owner.id)},
        )
        assert audit.status_code == 200
        assert audit.json()["results"] == []
        audit = client.get(
            f"/api/orgs/{attacker.ids['org_slug']}/audit", {"workspace_id": victim.ids["ws_id"]}
        )
        assert audit.json()["results"] == []
    assert db_snapshot() == before
