"""The 2026-07-28 front's pure parts, no process and no socket: the table of calls in flight on one
upstream session (``upstream/link.py``) and what changes between the eras
(``upstream/era_translation.py``)."""

from __future__ import annotations

from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged

from mcp_sse.upstream import era_translation
from mcp_sse.upstream.input_required import input_required_result, question_allowed
from mcp_sse.upstream.link import Answer, AskedDuring, AskedOutside, ForCall, LinkTable, Stray, Unrelated

ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {"sampling": {}, "extensions": {"x/y": {}}},
    "io.modelcontextprotocol/logLevel": "info",
}


def progress(token: object, value: float) -> dict[str, object]:
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": value}}


def test_two_calls_with_the_same_client_token_get_tokens_of_their_own() -> None:
    table = LinkTable("L-")
    first = table.start("tools/call", {"name": "a", "_meta": {"progressToken": 1}})
    second = table.start("tools/call", {"name": "b", "_meta": {"progressToken": 1}})
    assert first["id"] != second["id"]
    assert first["params"]["_meta"]["progressToken"] != second["params"]["_meta"]["progressToken"]
    assert table.route(progress(second["params"]["_meta"]["progressToken"], 0.5)) == ForCall(
        second["id"], progress(second["params"]["_meta"]["progressToken"], 0.5)
    )


def test_a_call_without_a_progress_token_is_not_given_one() -> None:
    request = LinkTable().start("tools/list", {"cursor": "x"})
    assert request["params"] == {"cursor": "x"}
    assert "params" not in LinkTable().start("tools/list", None)


def test_an_answer_goes_to_its_call_once_then_is_stray() -> None:
    table = LinkTable()
    call = table.start("tools/call", {"name": "a"})["id"]
    response = {"jsonrpc": "2.0", "id": call, "result": {}}
    assert table.route(response) == Answer(call, response)
    assert table.route(response) == Stray(response)
    assert table.in_flight == 0


def test_a_response_for_an_unknown_id_is_stray() -> None:
    table = LinkTable()
    table.start("tools/call", {"name": "a"})
    stray = {"jsonrpc": "2.0", "id": "nobody", "error": {"code": 1, "message": "x"}}
    assert table.route(stray) == Stray(stray)
    assert table.in_flight == 1


def test_a_notification_the_transport_relates_to_a_call_goes_to_it() -> None:
    table = LinkTable()
    call = table.start("tools/call", {"name": "a"})["id"]
    log = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}
    assert table.route(log, related=call) == ForCall(call, log)
    assert table.route(log) == Unrelated(log)
    assert table.route(log, related="another") == Unrelated(log)


def test_list_changed_is_never_a_calls_even_when_the_transport_says_so() -> None:
    """A stdio child's routing gives a notification tied to nothing to the one request in flight;
    a list change still belongs to every listen stream, not to that call."""
    table = LinkTable()
    call = table.start("tools/call", {"name": "announce"})["id"]
    changed = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    assert table.route(changed, related=call) == Unrelated(changed)


def test_questions_from_the_upstream_during_a_call_and_outside_one() -> None:
    table = LinkTable()
    call = table.start("tools/call", {"name": "ask"})["id"]
    question = {"jsonrpc": "2.0", "id": 7, "method": "elicitation/create", "params": {}}
    assert table.route(question, related=call) == AskedDuring(call, question)
    ping = {"jsonrpc": "2.0", "id": 8, "method": "ping"}
    assert table.route(ping) == AskedOutside(ping)


def test_a_closed_call_is_cancelled_upstream_once() -> None:
    table = LinkTable()
    call = table.start("tools/call", {"name": "slow", "_meta": {"progressToken": "t"}})
    token = call["params"]["_meta"]["progressToken"]
    cancel = table.abandon(call["id"], "gone")
    assert cancel == {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": call["id"], "reason": "gone"},
    }
    assert table.abandon(call["id"], "gone") is None
    assert table.route(progress(token, 1)) == Unrelated(progress(token, 1)), "its token is forgotten"


def test_an_answered_call_is_not_cancelled() -> None:
    table = LinkTable()
    call = table.start("tools/list", None)["id"]
    table.route({"jsonrpc": "2.0", "id": call, "result": {}})
    assert table.abandon(call, "gone") is None


def test_an_upstream_that_dies_fails_every_call_in_flight() -> None:
    table = LinkTable()
    calls = [table.start("tools/call", {"name": str(n)})["id"] for n in range(3)]
    failed = table.fail_all("the upstream session ended")
    assert [answer.call for answer in failed] == sorted(calls)
    assert all(answer.message["error"]["code"] == -32000 for answer in failed)
    assert all(answer.message["id"] == answer.call for answer in failed)
    assert table.in_flight == 0
    assert table.fail_all("again") == []


def test_the_envelope_is_taken_off_and_the_rest_kept() -> None:
    params = {"name": "a", "arguments": {"x": 1}, "_meta": {**ENVELOPE, "progressToken": 5, "other": True}}
    assert era_translation.upstream_params(params) == {
        "name": "a",
        "arguments": {"x": 1},
        "_meta": {"progressToken": 5, "other": True},
    }
    assert era_translation.upstream_params({"name": "a", "_meta": ENVELOPE}) == {"name": "a"}
    assert era_translation.upstream_params(None) is None


def test_the_upstream_session_declares_the_clients_own_capabilities() -> None:
    caps = era_translation.handshake_capabilities({"_meta": ENVELOPE})
    assert caps == {"sampling": {}, "extensions": {"x/y": {}}}
    assert era_translation.handshake_capabilities({}) == {}
    assert era_translation.capabilities_key({"a": 1, "b": 2}) == era_translation.capabilities_key({"b": 2, "a": 1})


def test_a_retrys_answers_are_ours_not_the_upstreams() -> None:
    retry = {"name": "a", "inputResponses": {"q1": {}}, "requestState": "s", "_meta": ENVELOPE}
    assert era_translation.upstream_params(retry) == {"name": "a"}


def test_an_input_required_result_carries_each_question_under_its_key() -> None:
    question = {"jsonrpc": "2.0", "id": 9, "method": "elicitation/create", "params": {"message": "who?"}}
    assert input_required_result({"q1": question}, "state") == {
        "resultType": "input_required",
        "inputRequests": {"q1": {"method": "elicitation/create", "params": {"message": "who?"}}},
        "requestState": "state",
    }
    assert question_allowed(question, {"elicitation": {}})
    assert not question_allowed(question, {"sampling": {}}), "the client never said it could answer this"
    assert not question_allowed({"method": "ping"}, {"elicitation": {}})


def test_logs_only_at_or_above_the_level_the_request_asked_for() -> None:
    asked = {"_meta": ENVELOPE}
    assert era_translation.log_wanted(asked, "info")
    assert era_translation.log_wanted(asked, "error")
    assert not era_translation.log_wanted(asked, "debug")
    assert not era_translation.log_wanted({"_meta": {}}, "emergency"), "no opt-in, no logs"
    assert not era_translation.log_wanted(asked, "loud")


def test_discover_answers_from_initialize() -> None:
    result = era_translation.discover_result(
        {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {"listChanged": True}, "logging": {}, "resources": {"subscribe": True}},
            "serverInfo": {"name": "up", "version": "3"},
            "instructions": "be nice",
        }
    )
    assert result == {
        "supportedVersions": ["2026-07-28"],
        "capabilities": {"tools": {"listChanged": True}, "resources": {"subscribe": True}},
        "instructions": "be nice",
        "resultType": "complete",
        "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "up", "version": "3"}},
    }


def test_a_2025_result_is_complete_and_names_its_server() -> None:
    info = {"name": "up", "version": "3"}
    assert era_translation.modern_result({"tools": []}, info) == {
        "tools": [],
        "resultType": "complete",
        "_meta": {"io.modelcontextprotocol/serverInfo": info},
    }
    mine = {"resultType": "complete", "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "own"}}}
    assert era_translation.modern_result(mine, info) == mine


def test_upstream_notifications_that_are_listen_events() -> None:
    assert era_translation.server_event({"method": "notifications/tools/list_changed"}) == ToolsListChanged()
    updated = {"method": "notifications/resources/updated", "params": {"uri": "file:///a"}}
    assert era_translation.server_event(updated) == ResourceUpdated(uri="file:///a")
    assert era_translation.server_event({"method": "notifications/resources/updated"}) is None
    assert era_translation.server_event({"method": "notifications/message"}) is None
