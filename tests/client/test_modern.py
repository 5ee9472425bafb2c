"""The stateless era's client decisions, without a network."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mcp_sse.client.modern import (
    SUBSCRIPTION_KEY,
    VERSION_KEY,
    ListenState,
    is_modern_request,
    list_changed_notification,
    modern_headers,
    names_stateless_era,
    relist_request,
)


def request(version: str | None, method: str = "tools/list") -> dict[str, Any]:
    meta = {VERSION_KEY: version} if version else {}
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"_meta": meta}}


def test_a_request_is_modern_by_the_version_in_its_meta() -> None:
    assert is_modern_request(request("2026-07-28"))
    assert not is_modern_request(request("2025-11-25"))
    assert not is_modern_request(request(None))
    assert not is_modern_request({"jsonrpc": "2.0", "id": 1, "method": "initialize"})


def test_after_a_reopen_a_changed_or_unknown_list_is_reported_and_an_unchanged_one_is_not() -> None:
    listen = ListenState()
    listen.acknowledged({"params": {"notifications": {"toolsListChanged": True, "promptsListChanged": False}}})
    assert list(listen.covered_lists()) == ["tools/list"]
    assert not listen.changed("tools/list", b"A", baseline=True), "the first acknowledgment only records"
    assert not listen.changed("tools/list", b"A", baseline=False)
    assert listen.changed("tools/list", b"B", baseline=False)
    assert listen.changed("tools/list", None, baseline=False), "a failed re-list reports: spurious beats missed"
    assert not listen.changed("tools/list", b"B", baseline=False)
    fresh = ListenState()
    assert fresh.changed("tools/list", b"A", baseline=False), "no baseline: we cannot know, so report"
    assert ListenState().changed("tools/list", None, baseline=False), "neither known: report"


def test_a_later_acknowledgment_does_not_replace_the_honored_filter() -> None:
    listen = ListenState()
    listen.acknowledged({"params": {"notifications": {"toolsListChanged": True}}})
    listen.acknowledged({"params": {"notifications": {}}})
    assert list(listen.covered_lists()) == ["tools/list"]


def test_a_reopened_streams_messages_carry_the_callers_subscription_id() -> None:
    message = {"method": "notifications/tools/list_changed", "params": {"_meta": {SUBSCRIPTION_KEY: "7.resend-1"}}}
    ListenState.stamp(message, "listen-7")
    assert message["params"]["_meta"][SUBSCRIPTION_KEY] == "listen-7"
    assert list_changed_notification("prompts/list", "listen-7") == {
        "jsonrpc": "2.0",
        "method": "notifications/prompts/list_changed",
        "params": {"_meta": {SUBSCRIPTION_KEY: "listen-7"}},
    }


def test_a_relist_carries_the_listens_envelope_and_its_own_method_header() -> None:
    listen = request("2026-07-28", "subscriptions/listen")
    listen["params"]["_meta"]["io.modelcontextprotocol/clientInfo"] = {"name": "t", "version": "1"}
    listen["params"]["_meta"]["progressToken"] = 5
    listen["params"]["notifications"] = {"toolsListChanged": True}
    relist = relist_request(listen, "tools/list", "page-2", "r1")
    assert relist["params"] == {
        "_meta": {VERSION_KEY: "2026-07-28", "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}},
        "cursor": "page-2",
    }
    stamped = SimpleNamespace(headers={"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"})
    assert modern_headers(stamped, "tools/list") == {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"}


def test_an_error_body_tells_a_stateless_server_from_a_legacy_one() -> None:
    modern = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"x","data":{"supported":["2026-07-28"]}}}'
    legacy = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"x","data":{"supported":["2025-06-18"]}}}'
    assert names_stateless_era(modern)
    assert not names_stateless_era(legacy)
    # The era's other errors (MCP 2026-07-28, Versioning): a header mismatch (e.g. an initialize without the
    # version header), a missing client capability, a method the era removed.
    for code in (-32020, -32021, -32601):
        assert names_stateless_era(b'{"jsonrpc":"2.0","id":0,"error":{"code":%d,"message":"x"}}' % code), code
    assert not names_stateless_era(b'{"jsonrpc":"2.0","id":0,"error":{"code":-32600,"message":"x"}}')
    assert not names_stateless_era(b'{"jsonrpc":"2.0","id":0,"error":{"code":"-32020","message":"x"}}')
    assert not names_stateless_era(b"Method Not Allowed")
    assert not names_stateless_era(b'{"error": "no"}')
    assert not names_stateless_era(b"")
