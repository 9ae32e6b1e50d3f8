"""Emails to the people a human request waits for: when it opens, when it escalates to
others (they are told, the first group is not asked again), and every `remind_every_seconds`
while nobody answers. A thread of every `fireflow worker` looks for what is due.

Each email is sent once per (request, notice, recipient): its row is inserted (unique key)
and the mail sent in one transaction, so two workers never both send it, and a mail server
that fails for one address rolls back that row alone, for the next round (SMTP has a
timeout: EMAIL_TIMEOUT). Reminders missed while no worker ran are not
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

# Requests nobody has answered, of runs still going (a run that ended while a branch waited
# leaves its request open: its approvers are not reminded of it).
_PENDING = (
    "SELECT h.run_id, h.node_id, h.request, h.created_at, r.workspace_id, r.caller_id, f.name "
    "FROM fireflow.human_request h "
    "JOIN dbos.workflow_status ws ON ws.workflow_uuid = h.run_id "
    "AND ws.status IN ('PENDING', 'ENQUEUED') "
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
    if not rows:
        return 0
    # Which notices went out already, for all pending requests in one read: those are done
    # (to the approvers of that moment; an address the mail server refused then is logged,
    # not retried), so a round with nothing due costs two queries.
    runs = {row[0] for row in rows}
    done = set(
        RequestNotice.objects.filter(run_id__in=runs)
        .values_list("run_id", "node_id", "key")
        .distinct()
    )
    sent = 0
    workspaces: dict[Any, Workspace] = {}
    for run_id, node_id, raw, created_at, workspace_id, caller_id, flow in rows:
        request = json.loads(raw) if isinstance(raw, str) else raw
        notices = [n for n in due(request, created_at, now) if (run_id, node_id, n.key) not in done]
        if not notices:
            continue
        workspace = workspaces.get(workspace_id)
        if workspace is None:
            workspace = Workspace.objects.select_related("org").get(id=workspace_id)
            workspaces[workspace_id] = workspace
        addresses = approvers(workspace, request, caller_id)
        for notice in notices:
            for address in addresses:
                sent += _send_once(
                    run_id=run_id,
                    node_id=node_id,
                    notice=notice,
                    request=request,
                    flow=flow,
                    workspace=workspace,
                    address=address,
                )
    return sent


def _send_once(
    *,
    run_id: str,
    node_id: str,
    notice: Notice,
    request: dict[str, Any],
    flow: str,
    workspace: Workspace,
    address: str,
) -> int:
    """One email, recorded in the same transaction: 1 if it went out now, else 0 (another
    worker sent it; or the mail server failed, and it is tried again next round)."""
    try:
        with transaction.atomic():
            RequestNotice.objects.create(
                run_id=run_id, node_id=node_id, key=notice.key, recipient=address
            )
            _mail(notice, request, flow, workspace.org.slug, address)
    except IntegrityError:
        return 0
    except Exception:
        log.exception("notice %s of %s/%s to one approver: not sent", notice.key, run_id, node_id)
        return 0
    return 1


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
