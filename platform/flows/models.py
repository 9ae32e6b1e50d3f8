"""Flows, flow versions and runs.

A flow version is immutable and content-addressed: its id is the SHA-256 of the canonical
JSON of its document and its parent's id, so saving the same document on the same parent
gives the same version, and history forms a chain of parent links (room for branches, tags,
diff and rollback). A run's id is its DBOS workflow id; its status and result live in
DBOS's tables and its events in the engine's, so nothing is written twice."""

import uuid

from django.conf import settings
from django.db import models

from tenants.models import ApiKey, Workspace


class Flow(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="flows")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    current_version = models.ForeignKey(
        "FlowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"])]

    def __str__(self) -> str:
        return self.name


class FlowVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="versions")
    hash = models.CharField(max_length=64)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    document = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint("flow", "hash", name="flow_version_hash_unique")]
        indexes = [models.Index(fields=["flow", "created_at"])]

    def __str__(self) -> str:
        return self.hash[:12]


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="runs")
    flow_version = models.ForeignKey(FlowVersion, on_delete=models.PROTECT, related_name="runs")
    # Who wrote the version that runs, and who started it (ASVS 8.3.3: decide on the caller).
    flow_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    inputs = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=200, blank=True)
    forked_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks"
    )
    forked_at_node = models.CharField(max_length=64, blank=True)
    # Why the run was cancelled, when not by its own user (the kill switch says why).
    cancel_reason = models.CharField(max_length=600, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "workspace",
                "caller",
                "idempotency_key",
                condition=~models.Q(idempotency_key=""),
                name="run_idempotency_key_unique",
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at"]),
            models.Index(fields=["flow", "-created_at"]),
        ]

    def __str__(self) -> str:
        return str(self.id)


class NetworkPolicy(models.Model):
    """The workspace's policy for what its flows may do, set by its owners and read by the
    worker whenever a node runs.

    `http_allow`: hosts the HTTP node may reach although they resolve to private addresses
    (self-hosted services): host names, IPs or CIDR ranges, each with an optional port.
    Public addresses need no entry.

    `node_rules`: which node types (and LLM providers) members may use, per workspace role;
    see flows.node_rules for their meaning. Empty: every node type is allowed."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, primary_key=True, related_name="network_policy"
    )
    http_allow = models.JSONField(default=list)
    node_rules = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"policy of {self.workspace_id}"


class LLMUsage(models.Model):
    """One LLM call: who ran what, on which model, for how many tokens and what it cost.

    Written by the worker's usage ledger, once per (run, node, call index) however often a
    step re-executes. `run_key` is the workflow that made the call (a child run of an
    ExecuteFlow, Map or agent tool has an id of its own); `run` is the run a user started,
    which carries the tenant, the flow, its owner and the caller."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="llm_usage")
    run_key = models.CharField(max_length=300)
    node_id = models.CharField(max_length=64)
    call_index = models.PositiveIntegerField()
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="+"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+")
    flow_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)  # USD millionths
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "run_key", "node_id", "call_index", name="llm_usage_once_per_call"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["workspace", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.run_key}/{self.node_id}#{self.call_index}"


class RequestNotice(models.Model):
    """An email about a human request that went to one approver (flows.notify): once per
    request, notice (opened, escalated, the n-th reminder) and recipient."""

    run_id = models.CharField(max_length=300)
    node_id = models.CharField(max_length=200)
    key = models.CharField(max_length=64)
    recipient = models.EmailField(max_length=254)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "run_id", "node_id", "key", "recipient", name="request_notice_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.node_id}: {self.key} to {self.recipient}"
