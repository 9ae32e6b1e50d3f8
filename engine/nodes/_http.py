"""HTTP request node: fetches a URL through the SSRF guard (engine._net)."""

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from .._net import BlockedURL, allow_list, guarded_fetch, redact
from .._ports import PortType
from .._registry import SECRET_REF_PATTERN, Effect, NodeContext, NodeError, NodeType, Port

# Kept out of the node's output (and so out of events and checkpoints): credentials.
_PRIVATE_RESPONSE_HEADERS = {
    "set-cookie",
    "authorization",
    "www-authenticate",
    "proxy-authenticate",
}


class HttpRequest(NodeType):
    type_name = "http_request"
    title = "HTTP request"
    description = (
        "Calls a URL (http or https). Private, loopback and metadata addresses are refused "
        "unless the workspace allows them; responses are capped in size and time."
    )
    category = "integrations"
    effect = Effect.EXTERNAL
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "GET"},
            "url": {"type": "string", "maxLength": 2048, "description": "unless wired in"},
            "headers": {
                "type": "object",
                "description": "Host, Content-Length, connection and Proxy-* headers are "
                "ignored; credentials belong in the vault (coming), not here",
                "additionalProperties": {"type": "string", "maxLength": 4096},
                "maxProperties": 50,
            },
            "secret_headers": {
                "type": "object",
                "description": "headers whose value comes from the vault: name -> {secret, "
                "prefix}, e.g. Authorization -> {secret: 'bank-token', prefix: 'Bearer '}",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["secret"],
                    "properties": {
                        "secret": {
                            "type": "string",
                            "pattern": SECRET_REF_PATTERN,
                            "description": "`name` (the flow owner's) or `workspace:name`",
                        },
                        "prefix": {"type": "string", "maxLength": 100, "default": ""},
                    },
                },
                "maxProperties": 10,
            },
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
            "max_response_bytes": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        },
    }
    INPUTS = (
        Port("url", PortType.TEXT, required=False, description="overrides config.url"),
        Port("body", PortType.JSON, required=False, description="sent as JSON"),
    )
    OUTPUTS = (
        Port("status", PortType.NUMBER),
        Port("body", PortType.ANY, description="parsed JSON, or text"),
        Port("headers", PortType.JSON),
    )

    async def execute(
        self, config: Mapping[str, Any], inputs: Mapping[str, Any], ctx: NodeContext
    ) -> dict[str, Any]:
        url = inputs.get("url") or config.get("url")
        if not url:
            raise NodeError("no URL: set config.url or connect the url input")
        if not isinstance(url, str):
            raise NodeError(f"the url input must be text, got {type(url).__name__}")
        shown = redact(url)
        headers = dict(config.get("headers", {}))
        headers.update(await _secret_headers(config, ctx, url_from_input=bool(inputs.get("url"))))
        try:
            result = await guarded_fetch(
                config.get("method", "GET"),
                url,
                allow=allow_list(ctx.extra.get("http_allow"), ctx.extra.get("http_allowable")),
                headers=headers,
                json_body=inputs.get("body"),
                timeout=float(config.get("timeout_seconds", 10)),
                max_bytes=int(config.get("max_response_bytes", 1_000_000)),
            )
        except BlockedURL as exc:
            raise NodeError(f"refused to fetch {shown}: {exc}") from None
        except (httpx.TimeoutException, TimeoutError):
            raise NodeError(f"{shown} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise NodeError(f"request to {shown} failed: {type(exc).__name__}") from None
        text = result.body.decode("utf-8", errors="replace")
        body: Any = text
        if "json" in result.headers.get("content-type", ""):
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        return {
            "status": result.status,
            "body": body,
            "headers": {
                k.lower(): v
                for k, v in result.headers.items()
                if k.lower() not in _PRIVATE_RESPONSE_HEADERS
            },
        }


async def _secret_headers(
    config: Mapping[str, Any], ctx: NodeContext, *, url_from_input: bool
) -> dict[str, str]:
    wanted: Mapping[str, Any] = config.get("secret_headers") or {}
    if not wanted:
        return {}
    if ctx.secrets is None:
        raise NodeError("secret_headers need the vault: run this flow on a worker")
    caller, owner = ctx.extra.get("caller"), ctx.extra.get("flow_owner")
    if url_from_input and caller != owner:
        # Confused deputy: someone running another person's flow must not choose where
        # that person's credentials are sent.
        raise NodeError(
            "refused: this request sends secrets to a URL that comes from the run's data, and "
            "the run was started by someone other than the flow's owner; fix the URL in the "
            "node's config"
        )
    return {
        name: str(spec.get("prefix", "")) + await ctx.secrets.reveal(str(spec["secret"]))
        for name, spec in wanted.items()
    }
