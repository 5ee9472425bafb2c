"""Decisions for the stateless 2026-07-28 era on the client side: which requests belong to it, and
how a ``subscriptions/listen`` stream survives being cut.

The era has no resumption, so notifications sent while a listen stream was down are gone by
design. What makes it safe anyway: after re-opening, re-list what the subscription covers and
raise the change event the caller would have seen whenever the list differs from the one known
before the cut. A spurious event is harmless (the caller re-lists); a missed one is not, so when
a re-list fails the event is raised anyway. This module does no I/O.

MCP 2026-07-28, Streamable HTTP and Subscriptions:
https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http
https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/subscriptions
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mcp_sse.wire import eras, headers, jsonrpc
from mcp_sse.wire.jsonrpc import RequestId

__all__ = [
    "LIST_METHODS",
    "SUBSCRIPTION_KEY",
    "VERSION_KEY",
    "ListenState",
    "is_modern_request",
    "list_changed_notification",
    "modern_headers",
    "names_stateless_era",
    "relist_request",
]

META_PREFIX = "io.modelcontextprotocol/"
VERSION_KEY = META_PREFIX + "protocolVersion"
SUBSCRIPTION_KEY = META_PREFIX + "subscriptionId"

# list method -> the result field holding its items
LIST_METHODS = {"tools/list": "tools", "prompts/list": "prompts", "resources/list": "resources"}
# filter flag -> (list method, the notification that says it changed)
_COVERED = {
    "toolsListChanged": ("tools/list", "notifications/tools/list_changed"),
    "promptsListChanged": ("prompts/list", "notifications/prompts/list_changed"),
    "resourcesListChanged": ("resources/list", "notifications/resources/list_changed"),
}
_CHANGED = dict(_COVERED.values())
_PER_REQUEST_HEADERS = (headers.MCP_METHOD, headers.MCP_NAME, headers.MCP_PARAM_PREFIX)


def _meta(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    params = obj.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta if isinstance(meta, dict) else None


def is_modern_request(obj: Mapping[str, Any]) -> bool:
    """A request in the stateless era names its version in ``_meta`` (MCP 2026-07-28, Versioning:
    https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning)."""
    meta = _meta(obj)
    return meta is not None and meta.get(VERSION_KEY) in eras.MODERN_VERSIONS


def names_stateless_era(body: bytes) -> bool:
    """An HTTP error body from a server of the stateless era (MCP 2026-07-28, Versioning), answering a handshake:
    a JSON-RPC error only that era defines (header mismatch, missing client capability), a
    ``method not found`` for ``initialize`` itself, or an unsupported version whose
    ``data.supported`` names a 2026-07-28 version. Anything else lets the legacy fallback go on."""
    try:
        error = orjson.loads(body).get("error")
        code = error.get("code")
        supported = (error.get("data") or {}).get("supported")
    except (orjson.JSONDecodeError, AttributeError):
        return False
    if type(code) is int and code in _STATELESS_ERA_CODES:
        return True
    return isinstance(supported, list) and any(version in eras.MODERN_VERSIONS for version in supported)


_STATELESS_ERA_CODES = frozenset({jsonrpc.HEADER_MISMATCH, jsonrpc.MISSING_CLIENT_CAPABILITY, jsonrpc.METHOD_NOT_FOUND})


def modern_headers(metadata: Any, method: str) -> dict[str, str]:
    """Headers for a request of our own beside the caller's: its version, our method."""
    stamped = getattr(metadata, "headers", None) or {}
    kept = {name.lower(): value for name, value in stamped.items()}
    kept = {name: value for name, value in kept.items() if not name.startswith(_PER_REQUEST_HEADERS)}
    kept[headers.MCP_METHOD] = method
    return kept


def relist_request(
    listen_request: Mapping[str, Any], method: str, cursor: str | None, request_id: str
) -> dict[str, Any]:
    """A list request carrying the same envelope (version, client info, capabilities) as the listen."""
    meta = {key: value for key, value in (_meta(listen_request) or {}).items() if key.startswith(META_PREFIX)}
    params: dict[str, Any] = {"_meta": meta}
    if cursor:
        params["cursor"] = cursor
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def list_changed_notification(method: str, subscription_id: RequestId) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": _CHANGED[method], "params": {"_meta": {SUBSCRIPTION_KEY: subscription_id}}}


@dataclass
class ListenState:
    """One ``subscriptions/listen`` request across its re-opens."""

    acked: bool = False
    honored: dict[str, Any] = field(default_factory=dict)
    digests: dict[str, bytes] = field(default_factory=dict)

    @staticmethod
    def stamp(obj: dict[str, Any], subscription_id: RequestId) -> None:
        """A re-opened stream is a new request with a new id; the caller knows only the first."""
        meta = _meta(obj)
        if meta is not None and SUBSCRIPTION_KEY in meta:
            meta[SUBSCRIPTION_KEY] = subscription_id

    def acknowledged(self, obj: Mapping[str, Any]) -> None:
        params = obj.get("params")
        honored = params.get("notifications") if isinstance(params, dict) else None
        if not self.acked and isinstance(honored, dict):
            self.honored = honored
        self.acked = True

    def covered_lists(self) -> Iterator[str]:
        for flag, (method, _) in _COVERED.items():
            if self.honored.get(flag):
                yield method

    def changed(self, method: str, digest: bytes | None, baseline: bool) -> bool:
        """Record a re-list; True when the caller must be told the list changed while we were away."""
        previous = self.digests.get(method)
        if digest is not None:
            self.digests[method] = digest
        if baseline:
            return False
        return digest is None or previous is None or digest != previous
