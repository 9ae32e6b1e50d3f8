"""The API root: one NinjaAPI under /api/, the error shape, and the OpenAPI contract."""

from typing import Any

from django.db import DatabaseError, DataError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Status
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from billing.api import router as costs_router
from billing.api import stripe_router
from fireflow.errors import RateLimited, ServiceError
from flows.api import (
    catalogue_router,
    flows_router,
    inbox_router,
    network_router,
    node_rules_router,
    runs_router,
)
from miniapps.api import apps_router, public_router
from tenants.api import (
    auth_router,
    invitation_router,
    org_router,
    orgs_router,
    workspace_router,
)
from vault.api import admin_router as vault_admin_router
from vault.api import personal_router as personal_secrets_router
from vault.api import shared_router as shared_secrets_router

_ERROR_STATUSES = {
    400: "Bad request (a webhook that does not verify, ...)",
    401: "Not authenticated",
    403: "Not allowed for your role",
    404: "Not found (or not yours to see)",
    409: "Conflict with the current state",
    422: "Invalid input",
    429: "Too many requests",
    503: "The database is unavailable",
}


class FireFlowAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> Any:
        """Router prefixes carry path parameters ({org_slug}, {ws_id}) that ninja
        does not declare on the operations: declare them, and the error responses every
        operation can give, so the schema is the whole contract."""
        schema = super().get_openapi_schema(**kwargs)
        schema["components"].setdefault("schemas", {})["Error"] = {
            "type": "object",
            "required": ["detail", "code", "fields"],
            "properties": {
                "detail": {"type": "string"},
                "code": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
        for path, operations in schema["paths"].items():
            names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
            for operation in operations.values():
                params = operation.setdefault("parameters", [])
                declared = {p["name"] for p in params if p.get("in") == "path"}
                for name in names:
                    if name not in declared:
                        params.insert(0, _path_param(name))
                responses = operation.setdefault("responses", {})
                for status, description in _ERROR_STATUSES.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        },
                    )
        return schema


def _path_param(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if name.endswith("_id"):
        schema["format"] = "uuid"
    elif name == "org_slug":
        schema.update(pattern="^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", maxLength=50)
    return {"in": "path", "name": name, "required": True, "schema": schema}


api = FireFlowAPI(
    title="FireFlow API",
    version="1",
    description="Organisations, workspaces, members, roles, API keys and the audit log. "
    "Browsers use the session cookie (with the CSRF token); programs send "
    "`Authorization: Bearer ff_...`.",
    urls_namespace="api",
)


def error_response(
    request: HttpRequest, status: int, detail: str, code: str, fields: dict[str, str] | None = None
) -> HttpResponse:
    return api.create_response(
        request, {"detail": detail, "code": code, "fields": fields or {}}, status=status
    )


@api.exception_handler(ServiceError)
def _service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    response = error_response(request, exc.status, exc.detail, exc.code, exc.fields)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, str] = {}
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload")]
        key = ".".join(loc[1:] if loc and loc[0] in ("query", "path", "header") else loc)
        fields.setdefault(key or "body", error.get("msg", "invalid"))
    summary = "; ".join(f"{k}: {v}" for k, v in fields.items())
    return error_response(request, 422, f"Invalid input — {summary}", "invalid", fields)


@api.exception_handler(Throttled)
def _throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    wait = f" Try again in {int(exc.wait) + 1} seconds." if exc.wait else ""
    return error_response(request, 429, f"Too many requests.{wait}", "rate_limited")


@api.exception_handler(AuthenticationError)
def _not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(
        request,
        401,
        "Authentication required: log in, or send an API key as 'Authorization: Bearer ff_...'.",
        "not_authenticated",
    )


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Fail fast and say so, rather than hang or answer a bare 500 (connect_timeout is 5 s).
    return error_response(
        request,
        503,
        "The database is unavailable right now; try again shortly.",
        "database_unavailable",
    )


@api.exception_handler(DataError)
def _unstorable_value(request: HttpRequest, exc: DataError) -> HttpResponse:
    # Whatever slipped past the schemas (a NUL character, a value too long for its column):
    # the transaction has rolled back, and the caller sent something we cannot store.
    return error_response(
        request,
        422,
        "Invalid input — a value is too long or holds characters that cannot be stored "
        "(such as NUL).",
        "invalid",
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400 and exc.__cause__ is not None:
        # ninja's "Cannot parse request body" (not JSON, not UTF-8): bad input like any other.
        return error_response(
            request,
            422,
            "Invalid input — the request body is not valid JSON.",
            "invalid",
            {"body": "not valid JSON"},
        )
    return error_response(request, exc.status_code, exc.message, "http_error")


api.add_router("/auth", auth_router)
api.add_router("/invitations", invitation_router)
api.add_router("/orgs", orgs_router)
api.add_router("/orgs/{org_slug}", org_router)
api.add_router("/orgs/{org_slug}/workspaces/{ws_id}", workspace_router)
api.add_router("/orgs/{org_slug}/workspaces/{ws_id}/flows", flows_router)
api.add_router("/orgs/{org_slug}/workspaces/{ws_id}/runs", runs_router)
api.add_router("/orgs/{org_slug}/workspaces/{ws_id}/network", network_router)
api.add_router("/orgs/{org_slug}/workspaces/{ws_id}/node-rules", node_rules_router)
api.add_router("/node-types", catalogue_router)
api.add_router("/inbox", inbox_router)
api.add_router("/orgs/{org_slug}/secrets", personal_secrets_router)
api.add_router("/orgs/{org_slug}", costs_router)
api.add_router("/billing/stripe", stripe_router)
api.add_router("/orgs/{org_slug}/workspaces/{ws_id}/apps", apps_router)
api.add_router("/apps", public_router)
api.add_router("/admin/vault", vault_admin_router)
api.add_router("/orgs/{org_slug}/workspaces/{ws_id}/secrets", shared_secrets_router)


@api.get(
    "/health", auth=None, tags=["platform"], response={200: dict[str, str], 503: dict[str, str]}
)
def health(request: HttpRequest) -> Any:
    """Liveness and database reachability (for load balancers and the demo flow)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return Status(503, {"status": "unavailable", "database": "unreachable"})
    return {"status": "ok", "database": "ok"}
