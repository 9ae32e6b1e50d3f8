"""The vault in Django's admin, for platform staff (superusers only): secrets' metadata
(never a value: the sealed bytes are not shown), the master key versions in use, and the
action that moves every secret to the current version (the rewrap job on the workers)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import rewrap
from .models import Secret


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    list_display = ("name", "org", "owner", "workspace", "master_version", "epoch", "last_used_at")
    list_filter = ("master_version",)
    search_fields = ("name", "org__slug")
    fields = (
        "name",
        "description",
        "org",
        "owner",
        "workspace",
        "master_version",
        "epoch",
        "allowed_flows",
        "created_by",
        "created_at",
        "rotated_at",
        "last_used_at",
    )
    readonly_fields = fields
    actions = ("rewrap_all",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # secrets are stored by their owners, through the API

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        status = rewrap.status()
        messages.info(
            request,
            f"Master key: current version {status['current_version']}, minimum "
            f"{status['min_version']}; secrets per version {status['versions_in_use']}; "
            f"{status['rows_to_rewrap']} to rewrap.",
        )
        return super().changelist_view(request, extra_context)

    @admin.action(description="Rewrap every secret under the current master key (all rows)")
    def rewrap_all(self, request: HttpRequest, queryset: QuerySet[Secret]) -> None:
        if not rewrap.status()["rows_to_rewrap"]:
            messages.info(request, "Nothing to rewrap: every secret is under the current version.")
            return
        job = rewrap.start()
        messages.success(request, f"Queued {job}: the workers move every secret.")
