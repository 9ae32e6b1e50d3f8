"""Secrets: a user's own (personal, in one organisation) or a workspace's (shared, managed by
its owners). Only the sealed value is stored (see envelope.py); its name, owner and times
are what anyone ever sees again."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenants.models import Organization, Workspace


class Secret(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="secrets")
    # Exactly one of the two: whose secret it is.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="secrets",
    )
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="secrets"
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    sealed = models.BinaryField()
    master_version = models.PositiveIntegerField()
    epoch = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The flows that may use a personal secret (ids); empty: any flow its owner wrote.
    allowed_flows = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(owner__isnull=False, workspace__isnull=True)
                | Q(owner__isnull=True, workspace__isnull=False),
                name="secret_has_one_owner",
            ),
            models.UniqueConstraint(
                "org", "owner", "name", condition=Q(owner__isnull=False), name="personal_name"
            ),
            models.UniqueConstraint(
                "workspace", "name", condition=Q(workspace__isnull=False), name="shared_name"
            ),
        ]
        indexes = [models.Index(fields=["master_version"])]

    def __str__(self) -> str:
        return self.name

    @property
    def owner_key(self) -> str:
        """The owner as bound into the envelope: `user:<id>` or `workspace:<id>`."""
        return f"user:{self.owner_id}" if self.owner_id else f"workspace:{self.workspace_id}"


class KeyEpoch(models.Model):
    """The current key epoch of one owner's secrets; rotating an owner's keys bumps it and
    rewraps their rows."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    owner_key = models.CharField(max_length=100)
    epoch = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint("org", "owner_key", name="one_epoch_per_owner")]

    def __str__(self) -> str:
        return f"{self.owner_key}@{self.epoch}"
