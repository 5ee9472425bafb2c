"""What changes when a 2026-07-28 request travels to a server that speaks a 2025 version, and its
answers come back: pure functions, no I/O.

The stateless era carries in every request's ``_meta`` what a session era negotiates once
(``initialize``): the version, the client's identity and capabilities (MCP 2026-07-28, Versioning:
https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning). A 2025 server refuses
a request carrying that envelope, so it is taken off before forwarding; the capabilities pick the
upstream session a request travels on instead. The other way, the upstream's ``initialize``
result is what ``server/discover`` answers, and its change notifications become the events of
``subscriptions/listen``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from mcp.shared.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from mcp_sse.wire import eras

__all__ = [
    "ENVELOPE_PREFIX",
    "LOG_LEVELS",
    "capabilities_key",
    "client_capabilities",
    "discover_result",
    "handshake_capabilities",
    "handshake_notification",
    "handshake_result",
    "log_wanted",
    "modern_result",
    "server_event",
    "upstream_params",
]

ENVELOPE_PREFIX = "io.modelcontextprotocol/"
"""``_meta`` keys under this prefix are the era's envelope (version, client info and capabilities,
log level, subscription id): meaningful to us, refused by a handshake-era server."""

_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
_LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
_SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""RFC 5424 severities, least severe first, as MCP's logging names them."""

_MULTI_ROUND_TRIP_PARAMS = ("inputResponses", "requestState")
"""What a stateless retry carries for us (the answers to our questions), never for the upstream."""


def upstream_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``params`` without the era's envelope in ``_meta`` (a progress token and other keys stay) and
    without a retry's answers to our questions."""
    if params is None:
        return None
    out = {k: v for k, v in params.items() if k not in _MULTI_ROUND_TRIP_PARAMS}
    meta = out.get("_meta")
    if isinstance(meta, Mapping):
        kept = {k: v for k, v in meta.items() if not (isinstance(k, str) and k.startswith(ENVELOPE_PREFIX))}
        if kept:
            out["_meta"] = kept
        else:
            del out["_meta"]
    return out


def handshake_capabilities(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The capabilities an upstream session opened for this request's client declares in its
    ``initialize``: the client's own, so a server that checks them sees the truth (the ones it asks
    through are answered with the era's ``InputRequiredResult``, ``upstream/input_required.py``)."""
    return client_capabilities(params)


def client_capabilities(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the request's client itself declared."""
    meta = (params or {}).get("_meta")
    declared = meta.get(_CAPABILITIES_KEY) if isinstance(meta, Mapping) else None
    return dict(declared) if isinstance(declared, Mapping) else {}


def capabilities_key(capabilities: Mapping[str, Any]) -> bytes:
    """One byte string per distinct set of capabilities (key order does not matter)."""
    return orjson.dumps(capabilities, option=orjson.OPT_SORT_KEYS)


def log_wanted(params: Mapping[str, Any] | None, level: Any) -> bool:
    """Whether a log message at ``level`` may go on this request's stream: only when its
    ``_meta`` asked for logs at that level or a less severe one (MCP 2026-07-28: a server MUST NOT
    send ``notifications/message`` for a request whose ``_meta`` lacks the log level)."""
    meta = (params or {}).get("_meta")
    wanted = meta.get(_LOG_LEVEL_KEY) if isinstance(meta, Mapping) else None
    if wanted not in LOG_LEVELS or level not in LOG_LEVELS:
        return False
    return LOG_LEVELS.index(level) >= LOG_LEVELS.index(wanted)


def discover_result(initialize_result: Mapping[str, Any]) -> dict[str, Any]:
    """``server/discover``'s answer, from what the upstream's ``initialize`` returned.

    Change notifications reach a 2026-07-28 client only on a listen stream, which this front
    serves from the upstream's own notifications: so a list is said to change exactly when the
    upstream said it would tell, and resources can be subscribed to when the upstream allows it.
    """
    upstream = initialize_result.get("capabilities")
    capabilities: dict[str, Any] = {}
    if isinstance(upstream, Mapping):
        for name, value in upstream.items():
            if name in ("logging",):  # deprecated in this era; logs are a per-request opt-in
                continue
            capabilities[name] = dict(value) if isinstance(value, Mapping) else value
    result: dict[str, Any] = {"supportedVersions": list(eras.MODERN_VERSIONS), "capabilities": capabilities}
    instructions = initialize_result.get("instructions")
    if isinstance(instructions, str):
        result["instructions"] = instructions
    return modern_result(result, initialize_result.get("serverInfo"))


def modern_result(result: Mapping[str, Any], server_info: Any) -> dict[str, Any]:
    """A 2025 server's result as the stateless era has it: complete (a result without
    ``resultType`` from an older server is a complete one, MCP 2026-07-28, Versioning), and stamped
    with the upstream's identity, so a client sees the server it reached through us, not us."""
    out = dict(result)
    out.setdefault("resultType", "complete")
    if isinstance(server_info, Mapping):
        meta = out.get("_meta")
        stamped = dict(meta) if isinstance(meta, Mapping) else {}
        stamped.setdefault(_SERVER_INFO_KEY, dict(server_info))
        out["_meta"] = stamped
    return out


_MODERN_ONLY_FIELDS = ("resultType", "ttlMs", "cacheScope")


def handshake_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """A stateless-era result as a session-era client has it: without the fields only that era
    defines (its result type and cache hints; the server's identity came with ``initialize``)."""
    out = {k: v for k, v in result.items() if k not in _MODERN_ONLY_FIELDS}
    meta = out.get("_meta")
    if isinstance(meta, Mapping):
        kept = {k: v for k, v in meta.items() if k != _SERVER_INFO_KEY}
        if kept:
            out["_meta"] = kept
        else:
            del out["_meta"]
    return out


def handshake_notification(event: ServerEvent) -> dict[str, Any]:
    """The session-era notification a listen event is (the inverse of ``server_event``)."""
    if isinstance(event, ResourceUpdated):
        return {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": event.uri}}
    method = {
        ToolsListChanged: "notifications/tools/list_changed",
        PromptsListChanged: "notifications/prompts/list_changed",
        ResourcesListChanged: "notifications/resources/list_changed",
    }[type(event)]
    return {"jsonrpc": "2.0", "method": method}


def server_event(notification: Mapping[str, Any]) -> ServerEvent | None:
    """The listen-stream event an upstream notification is, if it is one."""
    method = notification.get("method")
    if method == "notifications/tools/list_changed":
        return ToolsListChanged()
    if method == "notifications/prompts/list_changed":
        return PromptsListChanged()
    if method == "notifications/resources/list_changed":
        return ResourcesListChanged()
    if method == "notifications/resources/updated":
        params = notification.get("params")
        uri = params.get("uri") if isinstance(params, Mapping) else None
        return ResourceUpdated(uri=uri) if isinstance(uri, str) else None
    return None
