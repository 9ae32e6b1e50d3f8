"""Django's admin, for platform staff across all tenants (superusers only)."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User, Workspace


def _superusers_only(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_superuser)


admin.site.has_permission = _superusers_only  # type: ignore[method-assign]


@admin.register(User)
class FireFlowUserAdmin(UserAdmin):
    ordering = ("email",)
    list_display = ("email", "name", "is_superuser", "email_verified_at", "date_joined")
    search_fields = ("email", "name")
    fieldsets = (
        (None, {"fields": ("email", "password", "name", "email_verified_at")}),
        ("Platform", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")
    inlines = [MembershipInline]


@admin.register(Workspace)
class WorkspaceAdmin(GuardedModelAdmin):
    list_display = ("name", "org", "created_at", "archived_at")
    list_filter = ("org",)
    search_fields = ("name", "org__slug")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "org", "role", "created_at", "expires_at", "accepted_at")
    exclude = ("token_hash",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "org", "user", "role", "created_at", "revoked_at")
    exclude = ("key_hash",)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "org", "actor_email", "action", "target_label")
    list_filter = ("action",)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
