"""Writes: sign-up, organisations, members, invitations, workspaces, workspace roles and API
keys. Every tenant-visible change writes its audit row in the same transaction; mail goes out
only after the commit."""

from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from fireflow.errors import Conflict, Forbidden, InvalidInput, NotFound

from . import mail
from .audit import audit_record
from .context import Actor, OrgContext, WorkspaceContext
from .models import ApiKey, Invitation, Membership, Organization, User, Workspace
from .roles import (
    ALL_WORKSPACE_PERMS,
    MANAGER_ROLES,
    WORKSPACE_PERMS,
    OrgRole,
    WorkspaceRole,
    org_role_covers,
    workspace_role_at_least,
)
from .selectors import workspace_explicit_roles
from .tokens import digest, new_api_key, new_invitation_token

DEFAULT_WORKSPACE_NAME = "Default"


def _validate_password(password: str, *, user: User | None = None) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidInput(
            " ".join(exc.messages),
            code="weak_password",
            fields={"password": " ".join(exc.messages)},
        ) from None


# Accounts are looked up by email, which also fills Django's 150-character `username`.
EMAIL_MAX_LENGTH = 150


def _check_email_length(email: str) -> None:
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidInput(
            f"This email address is too long: at most {EMAIL_MAX_LENGTH} characters.",
            code="invalid",
            fields={"email": f"at most {EMAIL_MAX_LENGTH} characters"},
        )


def _email_taken(email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


# --- users and sign-up -------------------------------------------------------------------


@transaction.atomic
def user_create(*, email: str, name: str, password: str, verified: bool = False) -> User:
    email = User.objects.normalize_email(email).strip()
    _check_email_length(email)
    if _email_taken(email):
        raise Conflict(
            "An account with this email already exists. Log in, or reset your password.",
            code="email_taken",
            fields={"email": "already registered"},
        )
    user = User(email=email, username=email, name=name.strip())
    _validate_password(password, user=user)
    user.set_password(password)
    if verified:
        user.email_verified_at = timezone.now()
    user.save()
    return user


@transaction.atomic
def organization_create(
    *, name: str, slug: str, owner: User, request_id: str = "", ip: str | None = None
) -> Organization:
    """A new organisation owned by `owner`, with a default workspace they own."""
    if Organization.objects.filter(slug=slug).exists():
        raise Conflict(
            f"The URL slug '{slug}' is taken. Pick another one.",
            code="slug_taken",
            fields={"slug": "already taken"},
        )
    try:
        with transaction.atomic():
            org = Organization.objects.create(name=name.strip(), slug=slug)
    except IntegrityError:
        raise Conflict(
            f"The URL slug '{slug}' is taken. Pick another one.",
            code="slug_taken",
            fields={"slug": "already taken"},
        ) from None
    membership = Membership.objects.create(org=org, user=owner, role=OrgRole.OWNER)
    actor = Actor(user=owner, request_id=request_id, ip=ip)
    audit_record(
        org=org,
        actor=actor,
        action="org.created",
        target_type="organization",
        target_id=org.id,
        target_label=org.slug,
        after={"name": org.name, "slug": org.slug},
    )
    audit_record(
        org=org,
        actor=actor,
        action="member.added",
        target_type="member",
        target_id=membership.id,
        target_label=owner.email,
        after={"role": OrgRole.OWNER},
    )
    ctx = OrgContext(org=org, actor=actor, membership=membership, role=OrgRole.OWNER)
    workspace_create(ctx=ctx, name=DEFAULT_WORKSPACE_NAME)
    return org


@transaction.atomic
def signup(
    *,
    org_name: str,
    org_slug: str,
    name: str,
    email: str,
    password: str,
    request_id: str = "",
    ip: str | None = None,
) -> tuple[User, Organization]:
    """Sign an organisation up: its owner's account, the organisation, a default workspace,
    and a verification mail to the owner."""
    user = user_create(email=email, name=name, password=password)
    org = organization_create(
        name=org_name, slug=org_slug, owner=user, request_id=request_id, ip=ip
    )
    transaction.on_commit(lambda: mail.send_email_verification(user))
    return user, org


def email_verify(*, token: str) -> User:
    user = mail.user_for_verification_token(token)
    if user is None:
        raise InvalidInput(
            "This verification link is invalid or has expired. Ask for a new one.",
            code="bad_token",
            fields={"token": "invalid or expired"},
        )
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user


def password_reset_request(*, email: str) -> None:
    """Mail a reset link if the account exists; say nothing either way."""
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is not None:
        mail.send_password_reset(user)


@transaction.atomic
def password_reset_confirm(*, uid: str, token: str, password: str) -> User:
    user = mail.user_for_password_reset(uid, token)
    if user is None:
        raise InvalidInput(
            "This reset link is invalid or has expired. Ask for a new one.",
            code="bad_token",
            fields={"token": "invalid or expired"},
        )
    _validate_password(password, user=user)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


# --- members -----------------------------------------------------------------------------


def _owner_count(org: Organization) -> int:
    return Membership.objects.filter(org=org, role=OrgRole.OWNER).count()


def _member_in(ctx: OrgContext, member_id: UUID) -> Membership:
    membership = Membership.objects.select_related("user").filter(org=ctx.org, id=member_id).first()
    if membership is None:
        raise NotFound("No member with this id in this organisation.")
    return membership


@transaction.atomic
def member_change_role(*, ctx: OrgContext, member_id: UUID, role: OrgRole) -> Membership:
    ctx.require(*MANAGER_ROLES, action="change roles")
    # Lock the organisation's memberships so two demotions cannot leave it without owners.
    list(Membership.objects.select_for_update().filter(org=ctx.org).values_list("id"))
    membership = _member_in(ctx, member_id)
    old = OrgRole(membership.role)
    if old == role:
        return membership
    if OrgRole.OWNER in (old, role):
        ctx.require(OrgRole.OWNER, action="make or unmake owners")
    if old == OrgRole.OWNER and _owner_count(ctx.org) <= 1:
        raise Conflict(
            "This is the organisation's last owner. Make another member an owner first.",
            code="last_owner",
        )
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="member.role_changed",
        target_type="member",
        target_id=membership.id,
        target_label=membership.user.email,
        before={"role": old},
        after={"role": role},
    )
    return membership


@transaction.atomic
def member_remove(*, ctx: OrgContext, member_id: UUID) -> None:
    """Remove a member (or leave, when it is oneself): their workspace roles and API keys in
    this organisation go with them."""
    if ctx.role is None:
        raise Forbidden(
            "A workspace API key cannot remove members or leave the organisation.",
            code="role_required",
        )
    list(Membership.objects.select_for_update().filter(org=ctx.org).values_list("id"))
    membership = _member_in(ctx, member_id)
    leaving = membership.user_id == ctx.user.id
    if not leaving:
        ctx.require(*MANAGER_ROLES, action="remove members")
        if membership.role == OrgRole.OWNER:
            ctx.require(OrgRole.OWNER, action="remove owners")
    if membership.role == OrgRole.OWNER and _owner_count(ctx.org) <= 1:
        raise Conflict(
            "This is the organisation's last owner. Make another member an owner first.",
            code="last_owner",
        )
    user = membership.user
    for workspace in Workspace.objects.filter(org=ctx.org):
        for perm in ALL_WORKSPACE_PERMS:
            remove_perm(perm, user, workspace)
    revoked = ApiKey.objects.filter(org=ctx.org, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    Invitation.objects.filter(
        org=ctx.org, email__iexact=user.email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    membership_id = membership.id  # delete() clears it
    membership.delete()
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="member.left" if leaving else "member.removed",
        target_type="member",
        target_id=membership_id,
        target_label=user.email,
        before={"role": membership.role},
        after={"api_keys_revoked": revoked},
    )


# --- invitations -------------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *,
    ctx: OrgContext,
    email: str,
    role: OrgRole,
    workspace_id: UUID | None = None,
    workspace_role: WorkspaceRole | None = None,
) -> tuple[Invitation, str]:
    """Invite `email` with `role`; returns the invitation and its one-time token."""
    ctx.require(*MANAGER_ROLES, action="invite members")
    if role == OrgRole.OWNER:
        ctx.require(OrgRole.OWNER, action="invite owners")
    if workspace_role is not None and workspace_id is None:
        raise InvalidInput(
            "A workspace role needs a workspace: give workspace_id too, or leave both out.",
            code="invalid",
            fields={"workspace_id": "required with workspace_role"},
        )
    if workspace_id is not None and role == OrgRole.BILLING:
        raise InvalidInput(
            "Billing members see billing only: invite them without a workspace.",
            code="billing_member",
            fields={"workspace_id": "not for billing members"},
        )
    email = User.objects.normalize_email(email).strip()
    _check_email_length(email)
    if Membership.objects.filter(org=ctx.org, user__email__iexact=email).exists():
        raise Conflict(
            f"{email} is already a member of this organisation.",
            code="already_member",
            fields={"email": "already a member"},
        )
    if Invitation.objects.filter(
        org=ctx.org,
        email__iexact=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).exists():
        raise Conflict(
            f"{email} already has an open invitation. Revoke it to send a new one.",
            code="already_invited",
            fields={"email": "already invited"},
        )
    # An expired open invitation gives way to the new one.
    Invitation.objects.filter(
        org=ctx.org, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    workspace = None
    if workspace_id is not None:
        workspace = Workspace.objects.filter(
            org=ctx.org, id=workspace_id, archived_at__isnull=True
        ).first()
        if workspace is None:
            raise NotFound("No active workspace with this id in this organisation.")
        workspace_role = workspace_role or WorkspaceRole.VIEWER
    token, token_hash = new_invitation_token()
    try:
        with transaction.atomic():  # a concurrent invitation of the same email loses here
            invitation = Invitation.objects.create(
                org=ctx.org,
                email=email,
                role=role,
                workspace=workspace,
                workspace_role=(workspace_role.value if workspace and workspace_role else ""),
                token_hash=token_hash,
                invited_by=ctx.user,
                expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
            )
    except IntegrityError:
        raise Conflict(
            f"{email} already has an open invitation. Revoke it to send a new one.",
            code="already_invited",
            fields={"email": "already invited"},
        ) from None
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="invitation.created",
        target_type="invitation",
        target_id=invitation.id,
        target_label=email,
        workspace=workspace,
        after={"email": email, "role": role, "workspace_role": invitation.workspace_role or None},
    )
    transaction.on_commit(lambda: mail.send_invitation(invitation, token))
    return invitation, token


@transaction.atomic
def invitation_revoke(*, ctx: OrgContext, invitation_id: UUID) -> None:
    ctx.require(*MANAGER_ROLES, action="revoke invitations")
    invitation = Invitation.objects.filter(org=ctx.org, id=invitation_id).first()
    if invitation is None:
        raise NotFound("No invitation with this id in this organisation.")
    if invitation.accepted_at or invitation.revoked_at:
        raise Conflict("This invitation is no longer open.", code="invitation_closed")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="invitation.revoked",
        target_type="invitation",
        target_id=invitation.id,
        target_label=invitation.email,
    )


def invitation_by_token(token: str, *, for_update: bool = False) -> Invitation:
    """The invitation a token stands for, whatever its state (callers check it)."""
    queryset = Invitation.objects.select_related("org", "workspace")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    invitation = queryset.filter(token_hash=digest(token)).first()
    if invitation is None:
        raise NotFound("This invitation link is not valid.")
    return invitation


def _check_open(invitation: Invitation) -> None:
    if invitation.accepted_at is not None:
        raise Conflict("This invitation has already been used.", code="invitation_used")
    if invitation.revoked_at is not None:
        raise Conflict("This invitation was revoked. Ask for a new one.", code="invitation_revoked")
    if invitation.expires_at <= timezone.now():
        raise Conflict("This invitation has expired. Ask for a new one.", code="invitation_expired")


@transaction.atomic
def invitation_accept(
    *, token: str, user: User, request_id: str = "", ip: str | None = None
) -> Membership:
    """`user` (signed in, with the invited email) joins the organisation."""
    invitation = invitation_by_token(token, for_update=True)
    _check_open(invitation)
    if user.email.lower() != invitation.email.lower():
        raise Forbidden(
            f"This invitation was sent to another email address. Log in as that account "
            f"({_mask(invitation.email)}) to accept it.",
            code="wrong_account",
        )
    if Membership.objects.filter(org=invitation.org, user=user).exists():
        raise Conflict("You are already a member of this organisation.", code="already_member")
    membership = Membership.objects.create(org=invitation.org, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    # Following the link proves the address.
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    actor = Actor(user=user, request_id=request_id, ip=ip)
    audit_record(
        org=invitation.org,
        actor=actor,
        action="invitation.accepted",
        target_type="member",
        target_id=membership.id,
        target_label=user.email,
        after={"role": invitation.role},
    )
    if invitation.workspace and invitation.workspace_role:
        _set_workspace_perms(invitation.workspace, user, WorkspaceRole(invitation.workspace_role))
        audit_record(
            org=invitation.org,
            actor=actor,
            action="workspace.member_role_set",
            target_type="workspace_member",
            target_id=user.id,
            target_label=user.email,
            workspace=invitation.workspace,
            after={"role": invitation.workspace_role},
        )
    return membership


@transaction.atomic
def invitation_accept_new_account(
    *, token: str, name: str, password: str, request_id: str = "", ip: str | None = None
) -> tuple[User, Membership]:
    invitation = invitation_by_token(token, for_update=True)
    _check_open(invitation)
    if _email_taken(invitation.email):
        raise Conflict(
            "An account with this email exists already. Log in to accept the invitation.",
            code="email_taken",
        )
    user = user_create(email=invitation.email, name=name, password=password, verified=True)
    membership = invitation_accept(token=token, user=user, request_id=request_id, ip=ip)
    return user, membership


def _mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


# --- workspaces --------------------------------------------------------------------------


def _name_conflict(name: str) -> Conflict:
    return Conflict(
        f"A workspace named '{name}' already exists in this organisation. Pick another name.",
        code="workspace_name_taken",
        fields={"name": "already taken"},
    )


def _set_workspace_perms(workspace: Workspace, user: User, role: WorkspaceRole | None) -> None:
    wanted = set(WORKSPACE_PERMS[role]) if role else set()
    for perm in ALL_WORKSPACE_PERMS:
        if perm in wanted:
            assign_perm(perm, user, workspace)
        else:
            remove_perm(perm, user, workspace)


@transaction.atomic
def workspace_create(*, ctx: OrgContext, name: str) -> Workspace:
    ctx.require(*MANAGER_ROLES, action="create workspaces")
    name = name.strip()
    if Workspace.objects.filter(org=ctx.org, name__iexact=name, archived_at__isnull=True).exists():
        raise _name_conflict(name)
    try:
        with transaction.atomic():  # a concurrent create of the same name loses here
            workspace = Workspace.objects.create(org=ctx.org, name=name)
    except IntegrityError:
        raise _name_conflict(name) from None
    _set_workspace_perms(workspace, ctx.user, WorkspaceRole.OWNER)
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="workspace.created",
        target_type="workspace",
        target_id=workspace.id,
        target_label=name,
        workspace=workspace,
        after={"name": name},
    )
    return workspace


@transaction.atomic
def workspace_update(
    *, wctx: WorkspaceContext, name: str | None = None, archived: bool | None = None
) -> Workspace:
    """Rename, archive or restore a workspace (its owners, and organisation owners/admins)."""
    wctx.require(WorkspaceRole.OWNER, action="rename or archive it")
    workspace = Workspace.objects.select_for_update().get(pk=wctx.workspace.pk)
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    if name is not None and name.strip() != workspace.name:
        name = name.strip()
        if archived is False or (archived is None and workspace.archived_at is None):
            _check_active_name_free(workspace, name)
        before["name"], after["name"] = workspace.name, name
        workspace.name = name
    if archived is not None and archived != (workspace.archived_at is not None):
        if not archived:
            _check_active_name_free(workspace, workspace.name)
        before["archived"], after["archived"] = not archived, archived
        workspace.archived_at = timezone.now() if archived else None
    if not after:
        return workspace
    workspace.save(update_fields=["name", "archived_at"])
    if "archived" in after:
        action = "workspace.archived" if archived else "workspace.restored"
    else:
        action = "workspace.renamed"
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action=action,
        target_type="workspace",
        target_id=workspace.id,
        target_label=workspace.name,
        workspace=workspace,
        before=before,
        after=after,
    )
    return workspace


def _check_active_name_free(workspace: Workspace, name: str) -> None:
    if (
        Workspace.objects.filter(
            org_id=workspace.org_id, name__iexact=name, archived_at__isnull=True
        )
        .exclude(pk=workspace.pk)
        .exists()
    ):
        raise _name_conflict(name)


def _org_member(wctx: WorkspaceContext, user_id: UUID) -> Membership:
    membership = (
        Membership.objects.select_related("user").filter(org=wctx.org, user_id=user_id).first()
    )
    if membership is None:
        raise NotFound("No member with this user id in this organisation.")
    return membership


@transaction.atomic
def workspace_member_set_role(
    *, wctx: WorkspaceContext, user_id: UUID, role: WorkspaceRole | None
) -> None:
    """Give a member of the organisation a role on the workspace (None removes it)."""
    wctx.require(WorkspaceRole.OWNER, action="change who has access to it")
    Workspace.objects.select_for_update().filter(pk=wctx.workspace.pk).first()
    membership = _org_member(wctx, user_id)
    if role is not None and membership.role == OrgRole.BILLING:
        raise Conflict(
            "Billing members see billing only. Change their organisation role first.",
            code="billing_member",
        )
    explicit = workspace_explicit_roles(wctx.workspace)
    old = explicit.get(membership.user)
    if old == role:
        return
    other_owners = [
        u for u, r in explicit.items() if r == WorkspaceRole.OWNER and u != membership.user
    ]
    if old == WorkspaceRole.OWNER and not other_owners:
        raise Conflict(
            "This is the workspace's last owner. Make another member an owner first.",
            code="last_owner",
        )
    _set_workspace_perms(wctx.workspace, membership.user, role)
    if role is None:
        ApiKey.objects.filter(
            workspace=wctx.workspace, user=membership.user, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
    audit_record(
        org=wctx.org,
        actor=wctx.actor,
        action="workspace.member_removed" if role is None else "workspace.member_role_set",
        target_type="workspace_member",
        target_id=membership.user.id,
        target_label=membership.user.email,
        workspace=wctx.workspace,
        before={"role": old},
        after={"role": role},
    )


# --- API keys ----------------------------------------------------------------------------


@transaction.atomic
def api_key_create(
    *, ctx: OrgContext, name: str, role: str, workspace_id: UUID | None = None
) -> tuple[ApiKey, str]:
    """A key for the acting user, capped at `role` (never above their own); shown once."""
    from .access import access_workspace

    workspace = None
    if ctx.role is None:
        raise Forbidden("A workspace API key cannot create API keys.", code="role_required")
    if workspace_id is not None:
        wctx = access_workspace(ctx, workspace_id)
        try:
            cap: str = WorkspaceRole(role).value
        except ValueError:
            raise _bad_role(role, WorkspaceRole) from None
        if not workspace_role_at_least(wctx.role, WorkspaceRole(cap)):
            raise Forbidden(
                f"You cannot create a key above your own workspace role ({wctx.role}).",
                code="role_above_own",
            )
        workspace = wctx.workspace
    else:
        try:
            cap = OrgRole(role).value
        except ValueError:
            raise _bad_role(role, OrgRole) from None
        if not org_role_covers(ctx.role, OrgRole(cap)):
            raise Forbidden(
                f"You cannot create a key above your own role ({ctx.role}).",
                code="role_above_own",
            )
    fresh = new_api_key()
    key = ApiKey.objects.create(
        org=ctx.org,
        workspace=workspace,
        user=ctx.user,
        name=name.strip(),
        role=cap,
        prefix=fresh.prefix,
        key_hash=fresh.key_hash,
    )
    audit_record(
        org=ctx.org,
        actor=ctx.actor,
        action="api_key.created",
        target_type="api_key",
        target_id=key.id,
        target_label=name,
        workspace=workspace,
        after={"name": key.name, "role": cap, "prefix": key.prefix},
    )
    return key, fresh.raw


def _bad_role(role: str, kind: type[OrgRole] | type[WorkspaceRole]) -> InvalidInput:
    allowed = ", ".join(r.value for r in kind)
    return InvalidInput(
        f"'{role}' is not a role for this key; use one of {allowed}.",
        code="invalid_role",
        fields={"role": f"one of {allowed}"},
    )


@transaction.atomic
def api_key_revoke(*, ctx: OrgContext, key_id: UUID) -> ApiKey:
    """Revoke a key at once. Owners and admins may revoke any key, others their own."""
    if ctx.role is None:
        raise Forbidden("A workspace API key cannot revoke API keys.", code="role_required")
    queryset = ApiKey.objects.filter(org=ctx.org, id=key_id)
    if ctx.role not in MANAGER_ROLES:
        queryset = queryset.filter(user=ctx.user)
    key = queryset.select_for_update().first()
    if key is None:
        raise NotFound("No API key with this id that you can manage.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            org=ctx.org,
            actor=ctx.actor,
            action="api_key.revoked",
            target_type="api_key",
            target_id=key.id,
            target_label=key.name,
            workspace=key.workspace,
            before={"revoked": False},
            after={"revoked": True},
        )
    return key
