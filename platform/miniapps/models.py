"""A published flow (App), its keys, the runs its visitors started, and its rate counters.

An app pins one version of its flow: publishing a newer version or rolling back to an
earlier one is a change of `version`. Visitors are callers, not members: a visitor is a
member signed in (`user:<id>`), an app key (`key:<id>`) or an anonymous browser holding a
signed visitor token (`anon:<random>`); the flow runs as the app's publisher."""

import uuid

from django.conf import settings
from django.db import models

from flows.models import Flow, FlowVersion, Run
from tenants.models import Organization, Workspace


class Access(models.TextChoices):
    PUBLIC = "public", "Anyone with the link"
    MEMBERS = "members", "Signed-in members of the organisation"
    KEY = "key", "Holders of an app key"


class App(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="apps")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="apps")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="apps")
    version = models.ForeignKey(FlowVersion, on_delete=models.PROTECT, related_name="apps")
    slug = models.SlugField(max_length=50)
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    access = models.CharField(max_length=10, choices=Access.choices, default=Access.PUBLIC)
    # Runs a visitor may start per minute, and all visitors together.
    visitor_rate_per_minute = models.PositiveIntegerField(default=10)
    app_rate_per_minute = models.PositiveIntegerField(default=600)
    # Sites that may embed the app in a frame (origins, e.g. https://example.com).
    allowed_origins = models.JSONField(default=list)
    published = models.BooleanField(default=True)
    # Whose flow it is while it serves visitors: the member who published it.
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint("org", "slug", name="app_slug_unique_in_org")]
        indexes = [models.Index(fields=["workspace", "created_at"])]

    def __str__(self) -> str:
        return self.slug


class AppKey(models.Model):
    """A key that calls one app (``ffa_<prefix>_<secret>``); only its digest is kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} (ffa_{self.prefix}_…)"


class AppRun(models.Model):
    """A run a visitor of an app started (written with the Run, in its transaction)."""

    run = models.OneToOneField(
        Run, on_delete=models.CASCADE, primary_key=True, related_name="app_run"
    )
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="runs")
    visitor = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["app", "visitor", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.app_id}/{self.run_id}"


class RateWindow(models.Model):
    """Runs started in one minute, by one visitor of an app or (visitor "") by all of them;
    counted with one atomic upsert, so the limit holds across web processes."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    visitor = models.CharField(max_length=80)
    window = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint("app", "visitor", "window", name="rate_window_unique")
        ]
        indexes = [models.Index(fields=["window"])]

    def __str__(self) -> str:
        return f"{self.app_id}/{self.visitor or '*'}@{self.window:%H:%M}"
