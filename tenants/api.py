"""The tenancy API: thin endpoints over services and selectors.

Routers and their scope:
- `auth_router` (/api/auth): public sign-up, login, password reset; `me` and logout signed in.
- `invitation_router` (/api/invitations): preview and accept an invitation.
- `orgs_router` (/api/orgs): organisations of the signed-in user.
- `org_router` (/api/orgs/{org_slug}): behind the org gate.
- `workspace_router` (/api/orgs/{org_slug}/workspaces/{ws_id}): behind the workspace gate.
"""

from uuid import UUID

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest
from django.middleware.csrf import get_token
from ninja import Query, Router, Status
from ninja.pagination import paginate
from ninja.utils import check_csrf

from fireflow.errors import Forbidden, NotAuthenticated
from fireflow.middleware import client_ip
from fireflow.pagination import CursorPagination

from . import selectors, services
from .gate import actor_of, gate, org_ctx, workspace_ctx
from .models import User
from .roles import OrgRole, WorkspaceRole
from .schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    AuditEventOut,
    AuditFilterIn,
    EmailIn,
    InvitationCreatedOut,
    InvitationIn,
    InvitationOut,
    InvitationPreviewOut,
    InvitationSignupIn,
    LoginIn,
    MemberOut,
    MemberRoleIn,
    MeOut,
    OrgCreateIn,
    OrgOut,
    PasswordResetConfirmIn,
    SignupIn,
    TokenIn,
    UserOut,
    WorkspaceIn,
    WorkspaceMemberOut,
    WorkspaceOut,
    WorkspacePatchIn,
    WorkspaceRoleIn,
    invitation_status,
)
from .selectors import AuditFilter
from .throttles import ClientRateThrottle

auth_router = Router(tags=["auth"])
invitation_router = Router(tags=["invitations"])
orgs_router = Router(tags=["organisations"], auth=gate("user"))
org_router = Router(tags=["organisations"], auth=gate("org"))
workspace_router = Router(tags=["workspaces"], auth=gate("workspace"))


def _require_csrf(request: HttpRequest) -> None:
    """Unauthenticated browser forms (login, sign-up) are CSRF-checked too: login CSRF would
    sign a victim into an attacker's account."""
    if check_csrf(request):
        raise Forbidden("CSRF check failed: reload the page and try again.", code="csrf_failed")


def _request_id(request: HttpRequest) -> str:
    return getattr(request, "request_id", "")


def _me(user: User) -> dict[str, object]:
    return {
        "user": user,
        "organizations": [
            {"id": org.id, "name": org.name, "slug": org.slug, "role": role}
            for org, role in selectors.user_organizations(user=user)
        ],
    }


# --- auth --------------------------------------------------------------------------------


@auth_router.get("/csrf", response={204: None}, summary="Set the CSRF cookie")
def csrf(request: HttpRequest) -> Status[None]:
    get_token(request)
    return Status(204, None)


@auth_router.post(
    "/signup",
    response={201: MeOut},
    throttle=[ClientRateThrottle("signup")],
    summary="Sign up an organisation and its owner",
)
def signup(request: HttpRequest, payload: SignupIn) -> Status[dict[str, object]]:
    _require_csrf(request)
    user, _org = services.signup(
        org_name=payload.org_name,
        org_slug=payload.org_slug,
        name=payload.name,
        email=payload.email,
        password=payload.password,
        request_id=_request_id(request),
        ip=client_ip(request),
    )
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return Status(201, _me(user))


@auth_router.post("/login", response=MeOut, throttle=[ClientRateThrottle("login")])
def login_view(request: HttpRequest, payload: LoginIn) -> dict[str, object]:
    _require_csrf(request)
    known = User.objects.filter(email__iexact=payload.email).first()
    user = authenticate(request, email=known.email, password=payload.password) if known else None
    if not isinstance(user, User):
        raise NotAuthenticated("Wrong email or password.", code="invalid_credentials")
    login(request, user)  # rotates the session key and the CSRF token
    return _me(user)


@auth_router.post("/logout", response={204: None})
def logout_view(request: HttpRequest) -> Status[None]:
    if request.user.is_authenticated:
        _require_csrf(request)
    logout(request)
    return Status(204, None)


@auth_router.get("/me", response=MeOut, auth=gate("user"))
def me(request: HttpRequest) -> dict[str, object]:
    return _me(actor_of(request).user)


@auth_router.post("/verify-email", response=UserOut)
def verify_email(request: HttpRequest, payload: TokenIn) -> User:
    return services.email_verify(token=payload.token)


@auth_router.post(
    "/verify-email/resend",
    response={204: None},
    auth=gate("user"),
    throttle=[ClientRateThrottle("password_reset")],
)
def resend_verification(request: HttpRequest) -> Status[None]:
    from .mail import send_email_verification

    user = actor_of(request).user
    if user.email_verified_at is None:
        send_email_verification(user)
    return Status(204, None)


@auth_router.post(
    "/password-reset",
    response={204: None},
    throttle=[ClientRateThrottle("password_reset")],
    summary="Mail a password reset link (answers the same whether the account exists or not)",
)
def password_reset(request: HttpRequest, payload: EmailIn) -> Status[None]:
    services.password_reset_request(email=payload.email)
    return Status(204, None)


@auth_router.post(
    "/password-reset/confirm",
    response={204: None},
    throttle=[ClientRateThrottle("password_reset")],
)
def password_reset_confirm(request: HttpRequest, payload: PasswordResetConfirmIn) -> Status[None]:
    services.password_reset_confirm(uid=payload.uid, token=payload.token, password=payload.password)
    return Status(204, None)


# --- invitations (by token) ----------------------------------------------------------------


@invitation_router.get("/{token}", response=InvitationPreviewOut, summary="Preview an invitation")
def invitation_preview(request: HttpRequest, token: str) -> InvitationPreviewOut:
    invitation = services.invitation_by_token(token)
    return InvitationPreviewOut(
        org_name=invitation.org.name,
        org_slug=invitation.org.slug,
        email=invitation.email,
        role=OrgRole(invitation.role),
        workspace_name=invitation.workspace.name if invitation.workspace else None,
        workspace_role=WorkspaceRole(invitation.workspace_role)
        if invitation.workspace and invitation.workspace_role
        else None,
        invited_by=invitation.invited_by.name or invitation.invited_by.email
        if invitation.invited_by
        else None,
        expires_at=invitation.expires_at,
        status=invitation_status(invitation),
        account_exists=User.objects.filter(email__iexact=invitation.email).exists(),
    )


@invitation_router.post(
    "/{token}/accept", response=MeOut, auth=gate("user"), summary="Accept as the signed-in user"
)
def invitation_accept(request: HttpRequest, token: str) -> dict[str, object]:
    actor = actor_of(request)
    if actor.api_key is not None:
        raise Forbidden("Invitations are accepted by people, not API keys.", code="not_for_keys")
    services.invitation_accept(
        token=token, user=actor.user, request_id=actor.request_id, ip=actor.ip
    )
    return _me(actor.user)


@invitation_router.post(
    "/{token}/signup",
    response={201: MeOut},
    throttle=[ClientRateThrottle("signup")],
    summary="Accept by creating an account for the invited email",
)
def invitation_signup(
    request: HttpRequest, token: str, payload: InvitationSignupIn
) -> Status[dict[str, object]]:
    _require_csrf(request)
    user, _membership = services.invitation_accept_new_account(
        token=token,
        name=payload.name,
        password=payload.password,
        request_id=_request_id(request),
        ip=client_ip(request),
    )
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return Status(201, _me(user))


# --- organisations -----------------------------------------------------------------------


@orgs_router.post("", response={201: OrgOut}, summary="Create another organisation")
def org_create(request: HttpRequest, payload: OrgCreateIn) -> Status[OrgOut]:
    actor = actor_of(request)
    if actor.api_key is not None:
        raise Forbidden("API keys cannot create organisations.", code="not_for_keys")
    org = services.organization_create(
        name=payload.name,
        slug=payload.slug,
        owner=actor.user,
        request_id=actor.request_id,
        ip=actor.ip,
    )
    return Status(
        201,
        OrgOut(
            id=org.id, name=org.name, slug=org.slug, created_at=org.created_at, role=OrgRole.OWNER
        ),
    )


@org_router.get("", response=OrgOut)
def org_detail(request: HttpRequest) -> OrgOut:
    ctx = org_ctx(request)
    return OrgOut(
        id=ctx.org.id,
        name=ctx.org.name,
        slug=ctx.org.slug,
        created_at=ctx.org.created_at,
        role=ctx.role,
    )


@org_router.get("/members", response=list[MemberOut])
@paginate(CursorPagination, ordering=("created_at", "id"))
def member_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return selectors.member_list(ctx=org_ctx(request))


@org_router.patch("/members/{member_id}", response=MemberOut)
def member_update(request: HttpRequest, member_id: UUID, payload: MemberRoleIn):  # type: ignore[no-untyped-def]
    return services.member_change_role(ctx=org_ctx(request), member_id=member_id, role=payload.role)


@org_router.delete(
    "/members/{member_id}",
    response={204: None},
    summary="Remove a member, or leave when it is yourself",
)
def member_delete(request: HttpRequest, member_id: UUID) -> Status[None]:
    services.member_remove(ctx=org_ctx(request), member_id=member_id)
    return Status(204, None)


@org_router.get("/invitations", response=list[InvitationOut])
@paginate(CursorPagination, ordering=("-created_at", "-id"))
def invitation_list(request: HttpRequest, include_closed: bool = False):  # type: ignore[no-untyped-def]
    return selectors.invitation_list(ctx=org_ctx(request), include_closed=include_closed)


@org_router.post("/invitations", response={201: InvitationCreatedOut})
def invitation_create(request: HttpRequest, payload: InvitationIn):  # type: ignore[no-untyped-def]
    invitation, token = services.invitation_create(
        ctx=org_ctx(request),
        email=payload.email,
        role=payload.role,
        workspace_id=payload.workspace_id,
        workspace_role=payload.workspace_role,
    )
    # The response schema's resolvers read the model, so the extra field rides on it.
    invitation.accept_url = f"{settings.PUBLIC_URL}/invitations/{token}"  # type: ignore[attr-defined]
    return Status(201, invitation)


@org_router.delete("/invitations/{invitation_id}", response={204: None})
def invitation_revoke(request: HttpRequest, invitation_id: UUID) -> Status[None]:
    services.invitation_revoke(ctx=org_ctx(request), invitation_id=invitation_id)
    return Status(204, None)


@org_router.get("/workspaces", response=list[WorkspaceOut])
@paginate(CursorPagination, ordering=("created_at", "id"))
def workspace_list(request: HttpRequest, include_archived: bool = False):  # type: ignore[no-untyped-def]
    return selectors.workspace_list(ctx=org_ctx(request), include_archived=include_archived)


@org_router.post("/workspaces", response={201: WorkspaceOut})
def workspace_create(request: HttpRequest, payload: WorkspaceIn):  # type: ignore[no-untyped-def]
    return Status(201, services.workspace_create(ctx=org_ctx(request), name=payload.name))


@org_router.get("/audit", response=list[AuditEventOut])
@paginate(CursorPagination, ordering=("-created_at", "-id"))
def audit_list(request: HttpRequest, filters: Query[AuditFilterIn]):  # type: ignore[no-untyped-def]
    return selectors.audit_list(ctx=org_ctx(request), filters=AuditFilter(**filters.dict()))


@org_router.get("/api-keys", response=list[ApiKeyOut])
@paginate(CursorPagination, ordering=("-created_at", "-id"))
def api_key_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return selectors.api_key_list(ctx=org_ctx(request))


@org_router.post(
    "/api-keys",
    response={201: ApiKeyCreatedOut},
    summary="Create an API key for yourself (the key is shown once)",
)
def api_key_create(request: HttpRequest, payload: ApiKeyIn):  # type: ignore[no-untyped-def]
    key, raw = services.api_key_create(
        ctx=org_ctx(request),
        name=payload.name,
        role=payload.role,
        workspace_id=payload.workspace_id,
    )
    key.key = raw  # type: ignore[attr-defined]  # shown this once, never stored
    return Status(201, key)


@org_router.delete("/api-keys/{key_id}", response={204: None})
def api_key_revoke(request: HttpRequest, key_id: UUID) -> Status[None]:
    services.api_key_revoke(ctx=org_ctx(request), key_id=key_id)
    return Status(204, None)


# --- one workspace -----------------------------------------------------------------------


@workspace_router.get("", response=WorkspaceOut)
def workspace_detail(request: HttpRequest):  # type: ignore[no-untyped-def]
    return workspace_ctx(request).workspace


@workspace_router.patch("", response=WorkspaceOut, summary="Rename, archive or restore")
def workspace_update(request: HttpRequest, payload: WorkspacePatchIn):  # type: ignore[no-untyped-def]
    return services.workspace_update(
        wctx=workspace_ctx(request), name=payload.name, archived=payload.archived
    )


@workspace_router.get("/members", response=list[WorkspaceMemberOut])
def workspace_member_list(request: HttpRequest):  # type: ignore[no-untyped-def]
    return selectors.workspace_member_list(wctx=workspace_ctx(request))


@workspace_router.put(
    "/members/{user_id}",
    response={204: None},
    summary="Give a member of the organisation a role on this workspace",
)
def workspace_member_set(request: HttpRequest, user_id: UUID, payload: WorkspaceRoleIn):  # type: ignore[no-untyped-def]
    services.workspace_member_set_role(
        wctx=workspace_ctx(request), user_id=user_id, role=payload.role
    )
    return Status(204, None)


@workspace_router.delete("/members/{user_id}", response={204: None})
def workspace_member_remove(request: HttpRequest, user_id: UUID) -> Status[None]:
    services.workspace_member_set_role(wctx=workspace_ctx(request), user_id=user_id, role=None)
    return Status(204, None)
