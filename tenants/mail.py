"""Mail to users (verification, password reset, invitations) and the tokens in its links.

Verification tokens are signed (no table); reset tokens are Django's, which die once the
password changes; invitation tokens are random and stored only as a digest."""

from uuid import UUID

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.mail import send_mail
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from .models import Invitation, User

_VERIFY_SALT = "fireflow.email-verification"


def _link(path: str) -> str:
    return f"{settings.PUBLIC_URL}{path}"


def email_verification_token(user: User) -> str:
    return signing.dumps({"u": str(user.id), "e": user.email}, salt=_VERIFY_SALT)


def user_for_verification_token(token: str) -> User | None:
    try:
        data = signing.loads(
            token, salt=_VERIFY_SALT, max_age=settings.EMAIL_VERIFICATION_TTL_SECONDS
        )
    except signing.BadSignature:
        return None
    user = User.objects.filter(id=data.get("u")).first()
    if user is None or user.email != data.get("e"):
        return None
    return user


def send_email_verification(user: User) -> None:
    link = _link(f"/verify-email?token={email_verification_token(user)}")
    send_mail(
        "Verify your email for FireFlow",
        f"Hello {user.name or user.email},\n\nConfirm your email address for FireFlow:\n{link}\n\n"
        "If you did not sign up, ignore this message.",
        None,
        [user.email],
    )


def send_password_reset(user: User) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = _link(f"/reset-password?uid={uid}&token={token}")
    send_mail(
        "Reset your FireFlow password",
        f"Someone asked to reset the password of {user.email} on FireFlow.\n\n"
        f"Choose a new password here (valid for {settings.PASSWORD_RESET_TIMEOUT // 60} "
        f"minutes):\n{link}\n\nIf it was not you, ignore this message.",
        None,
        [user.email],
    )


def user_for_password_reset(uid: str, token: str) -> User | None:
    try:
        pk = UUID(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, OverflowError):
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


def send_invitation(invitation: Invitation, token: str) -> None:
    inviter = invitation.invited_by
    who = (inviter.name or inviter.email) if inviter else "Someone"
    link = _link(f"/invitations/{token}")
    send_mail(
        f"{who} invited you to {invitation.org.name} on FireFlow",
        f"{who} invited you to join {invitation.org.name} on FireFlow as {invitation.role}.\n\n"
        f"Accept the invitation (valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n"
        f"{link}\n",
        None,
        [invitation.email],
    )
