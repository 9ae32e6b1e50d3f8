"""Emails to the people a human request waits for: when it opens, when it escalates to
others (they are told, the first group is not asked again), and every `remind_every_seconds`
while nobody answers. A thread of every `fireflow worker` looks for what is due.

Each email is sent once per (request, notice): the notice's row is inserted (unique key) and
the mail sent in one transaction, so two workers never both send it, and a mail server that
fails rolls the row back for the next round. Reminders missed while no worker ran are not
sent in a burst: only the latest one due is."""

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from tenants.models import Membership, Workspace
from tenants.roles import WorkspaceRole

from .inbox import may_answer
from .models import RequestNotice
from .selectors import member_role

log = logging.getLogger("fireflow.notify")

NOTICE_SECONDS = float(os.environ.get("FIREFLOW_NOTICE_SECONDS", "10"))

_PENDING = (
    "SELECT h.run_id, h.node_id, h.request, h.created_at, r.workspace_id, r.caller_id, f.name "
    "FROM fireflow.human_request h "
    "JOIN flows_run r ON r.id::text = split_part(h.run_id, ':', 1) "
    "AND r.workspace_id::text = h.workspace_id "
    "JOIN flows_flow f ON f.id = r.flow_id "
    "WHERE h.answer IS NULL AND (h.deadline IS NULL OR h.deadline > now())"
)


@dataclass(frozen=True)
class Notice:
    key: str  # unique per request: opened, escalated, opened-reminder-2, ...
    kind: str  # opened, escalated, reminder


def due(request: dict[str, Any], created_at: datetime, now: datetime) -> list[Notice]:
    """What the request's approvers should have been told by `now`."""
    escalated = request.get("escalated")
    stage = "escalated" if escalated else "opened"
    notices = [Notice(stage, stage)]
    every = request.get("remind_every_seconds")
    basis = datetime.fromisoformat(str(escalated["at"])) if escalated else created_at
    if every:
        rounds = int((now - basis).total_seconds() // int(every))
        if rounds >= 1:
            notices.append(Notice(f"{stage}-reminder-{rounds}", "reminder"))
    return notices


def approvers(workspace: Workspace, request: dict[str, Any], caller_id: UUID | None) -> list[str]:
    """The addresses of the members who may answer the request now."""
    found = []
    members = Membership.objects.filter(org_id=workspace.org_id, user__is_active=True)
    for membership in members.select_related("user").order_by("user__email"):
        role = member_role(workspace=workspace, user_id=membership.user_id)
        if may_answer(
            request=request,
            role=WorkspaceRole(role) if role else None,
            user_id=membership.user_id,
            email=membership.user.email,
            caller_id=caller_id,
        ):
            found.append(membership.user.email)
    return found


_SUBJECTS = {
    "opened": "Approval needed: {title}",
    "escalated": "Escalated to you: {title}",
    "reminder": "Reminder, still waiting: {title}",
}


def _mail(notice: Notice, request: dict[str, Any], flow: str, org_slug: str, to: str) -> None:
    title = str(request.get("title", "a request"))
    lines = [
        f"The flow “{flow}” waits for an answer: {title}.",
        "",
        str(request.get("message") or ""),
        "",
    ]
    if notice.kind == "escalated":
        lines.append("Nobody answered in time, so it has passed to you.")
    lines.append(f"Answer it in your inbox: {settings.PUBLIC_URL}/orgs/{org_slug}/inbox")
    send_mail(_SUBJECTS[notice.kind].format(title=title), "\n".join(lines), None, [to])


def notify_due(now: datetime | None = None) -> int:
    """Send every notice that is due; returns how many emails went out."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_PENDING)
        rows = cursor.fetchall()
    sent = 0
    workspaces: dict[Any, Workspace] = {}
    for run_id, node_id, raw, created_at, workspace_id, caller_id, flow in rows:
        request = json.loads(raw) if isinstance(raw, str) else raw
        for notice in due(request, created_at, now):
            if RequestNotice.objects.filter(
                run_id=run_id, node_id=node_id, key=notice.key
            ).exists():
                continue
            workspace = workspaces.get(workspace_id)
            if workspace is None:
                workspace = Workspace.objects.select_related("org").get(id=workspace_id)
                workspaces[workspace_id] = workspace
            try:
                with transaction.atomic():
                    addresses = approvers(workspace, request, caller_id)
                    RequestNotice.objects.create(
                        run_id=run_id, node_id=node_id, key=notice.key, recipients=addresses
                    )
                    for address in addresses:
                        _mail(notice, request, flow, workspace.org.slug, address)
                    sent += len(addresses)
            except IntegrityError:
                continue  # another worker sent it
            except Exception:
                log.exception("notice %s of %s/%s: not sent, retried", notice.key, run_id, node_id)
    return sent


def run_notifier(stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            close_old_connections()
            notify_due()
        except Exception:  # the database went away: try again next round
            log.exception("request notifier: retrying in %.0f s", NOTICE_SECONDS)
        stop.wait(NOTICE_SECONDS)


def start_notifier() -> threading.Event:
    """Run the notifier in a daemon thread of this process; set the event to stop it."""
    stop = threading.Event()
    threading.Thread(
        target=run_notifier, args=(stop,), name="request-notifier", daemon=True
    ).start()
    return stop
