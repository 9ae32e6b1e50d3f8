"""HTTP request node: fetches a URL through the SSRF guard (engine._net)."""

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from .._net import BlockedURL, allow_list, guarded_fetch
from .._ports import PortType
from .._registry import Effect, NodeContext, NodeError, NodeType, Port


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
                "additionalProperties": {"type": "string", "maxLength": 4096},
                "maxProperties": 50,
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
        try:
            result = await guarded_fetch(
                config.get("method", "GET"),
                str(url),
                allow=allow_list(ctx.extra.get("http_allow")),
                headers=dict(config.get("headers", {})),
                json_body=inputs.get("body"),
                timeout=float(config.get("timeout_seconds", 10)),
                max_bytes=int(config.get("max_response_bytes", 1_000_000)),
            )
        except BlockedURL as exc:
            raise NodeError(f"refused to fetch {url}: {exc}") from None
        except httpx.TimeoutException:
            raise NodeError(f"{url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise NodeError(f"request to {url} failed: {type(exc).__name__}") from None
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
            "headers": {k.lower(): v for k, v in result.headers.items()},
        }
