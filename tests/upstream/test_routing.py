"""The stdio routing table without a process: what the child sees of each client message, and
where each of the child's messages goes."""

from __future__ import annotations

from typing import Any

from mcp_sse.upstream.routing import Broadcast, Deliver, Malformed, Refuse, RoutingTable
from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, Kind


def request(request_id: Any, method: str = "tools/call", token: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": "count"}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def result(child_id: Any, value: str = "ok") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": child_id, "result": {"value": value}}


def progress(token: Any, done: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": done}}


LOG = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}
LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}


def shared(*sessions: str) -> RoutingTable:
    table = RoutingTable(shared=True)
    for session in sessions:
        table.add_session(session)
    return table


def test_duplicate_ids_from_two_clients_reach_the_child_apart_and_come_back_to_each() -> None:
    table = shared("a", "b")
    to_child_a = table.from_client("a", request(1))
    to_child_b = table.from_client("b", request(1))
    assert to_child_a is not None and to_child_b is not None
    assert to_child_a["id"] != to_child_b["id"], "the child never sees one id twice"
    back_b = table.route(result(to_child_b["id"], "for b"))
    back_a = table.route(result(to_child_a["id"], "for a"))
    assert back_a == Deliver("a", result(1, "for a"), Kind.RESPONSE, 1)
    assert back_b == Deliver("b", result(1, "for b"), Kind.RESPONSE, 1)
    assert table.in_flight() == 0


def test_a_progress_token_reused_by_two_clients_goes_to_each_own_request() -> None:
    table = shared("a", "b")
    sent_a = table.from_client("a", request(7, token="tok"))
    sent_b = table.from_client("b", request(9, token="tok"))
    assert sent_a is not None and sent_b is not None
    token_a = sent_a["params"]["_meta"]["progressToken"]
    token_b = sent_b["params"]["_meta"]["progressToken"]
    assert token_a != token_b and "tok" not in (token_a, token_b)
    assert sent_a["params"]["name"] == "count", "the rest of the request is untouched"
    assert table.route(progress(token_b, 3)) == Deliver("b", progress("tok", 3), Kind.NOTIFICATION, None, 9)
    assert table.route(progress(token_a, 1)) == Deliver("a", progress("tok", 1), Kind.NOTIFICATION, None, 7)


def test_a_response_for_an_unknown_id_and_late_progress_go_nowhere() -> None:
    table = RoutingTable(shared=False)
    table.add_session("s")
    assert table.route(result("999")) is None
    assert table.route(result(None)) == Malformed(result(None)), "not JSON-RPC: to the log, never to a client"
    sent = table.from_client("s", request(1, token="t"))
    assert sent is not None
    assert table.route(result(sent["id"])) is not None
    assert table.route(result(sent["id"])) is None, "answered once; a second answer is dropped"
    assert table.route(progress(sent["params"]["_meta"]["progressToken"], 5)) is None, "after the answer"


def test_a_child_that_dies_fails_every_request_in_flight_of_every_session() -> None:
    table = shared("a", "b")
    for session, client_id in (("a", 1), ("a", "two"), ("b", 1)):
        table.from_client(session, request(client_id, token=f"t-{session}-{client_id}"))
    failed = table.child_exited(137)
    assert {(d.session, d.request_id) for d in failed} == {("a", 1), ("a", "two"), ("b", 1)}
    for delivered in failed:
        assert delivered.kind is Kind.ERROR
        assert delivered.message["id"] == delivered.request_id
        assert (
            delivered.message["error"]["code"] == CONNECTION_CLOSED and "137" in delivered.message["error"]["message"]
        )
    assert table.in_flight() == 0 and table.child_exited(0) == []


def test_a_request_of_the_child_goes_to_the_one_busy_client_and_its_answer_comes_back() -> None:
    table = shared("a", "b")
    sent = table.from_client("a", request(5))
    assert sent is not None
    sampling = {"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {}}
    routed = table.route(sampling)
    assert isinstance(routed, Deliver) and routed.session == "a" and routed.related == 5
    shown = routed.message["id"]
    assert shown != 0 and routed.kind is Kind.REQUEST
    assert table.from_client("b", result(shown)) is None, "another client cannot answer it"
    assert table.from_client("a", result(shown)) == result(0), "the child gets its own id back"
    assert table.from_client("a", result(shown)) is None, "answered once"


def test_in_a_shared_child_what_no_request_owns_is_never_guessed() -> None:
    table = shared("a", "b")
    sampling = {"jsonrpc": "2.0", "id": 3, "method": "sampling/createMessage", "params": {}}
    refused = table.route(sampling)
    assert isinstance(refused, Refuse) and refused.message["id"] == 3 and "error" in refused.message
    assert table.route(LOG) is None, "a log nobody's request owns is dropped"
    assert table.route(LIST_CHANGED) == Broadcast(LIST_CHANGED), "a change every client's view shares"
    table.from_client("a", request(1))
    table.from_client("b", request(1))
    assert table.route(LOG) is None, "two clients busy: still nobody's"
    assert isinstance(table.route(sampling), Refuse)


def test_in_a_child_of_one_session_everything_untied_goes_to_that_session() -> None:
    table = RoutingTable(shared=False)
    table.add_session("s")
    assert table.route(LOG) == Deliver("s", LOG, Kind.NOTIFICATION, None, None), "its standalone stream"
    assert table.route(LIST_CHANGED) == Deliver("s", LIST_CHANGED, Kind.NOTIFICATION, None, None)
    one = table.from_client("s", request("r1"))
    assert one is not None
    assert table.route(LOG) == Deliver("s", LOG, Kind.NOTIFICATION, None, "r1"), "its one request's stream"
    table.from_client("s", request("r2"))
    assert table.route(LOG) == Deliver("s", LOG, Kind.NOTIFICATION, None, None), "two in flight: standalone"


def test_a_cancellation_reaches_the_child_under_the_childs_id_and_back_under_the_clients() -> None:
    table = shared("a", "b")
    sent = table.from_client("a", request(4))
    assert sent is not None
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4}}
    assert table.from_client("a", cancel) == {**cancel, "params": {"requestId": sent["id"]}}
    assert table.from_client("b", cancel) is None, "b has no request 4 in flight"
    again = table.from_client("a", request(4))
    assert again is not None
    from_child = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": again["id"]}}
    assert table.route(from_child) == Deliver("a", cancel, Kind.NOTIFICATION, None, 4)


def test_a_cancelled_request_is_no_longer_in_flight() -> None:
    """Its client gave up on it and the child need not answer: it must not keep owning the child's
    next question (in a shared child, two requests in flight means nobody's), nor stay forever."""
    table = shared("a", "b")
    sent = table.from_client("a", request(1))
    assert sent is not None
    table.from_client("a", {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}})
    table.from_client("b", request(1))
    sampling = {"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {}}
    routed = table.route(sampling)
    assert isinstance(routed, Deliver) and routed.session == "b", "b's request is the one in flight"
    assert table.route(result(sent["id"])) is None, "a late answer to the cancelled request goes nowhere"


def test_our_own_requests_are_answered_to_us() -> None:
    table = RoutingTable(shared=False)
    table.add_session("s")
    initialize = table.own_request({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}})
    assert table.owns(initialize["id"]) and not table.owns("1")
    assert table.route(result(initialize["id"])) is None, "not shown to the client"
    assert not table.owns(initialize["id"])


def test_a_session_that_ends_takes_its_routes_with_it() -> None:
    table = shared("a", "b")
    sent = table.from_client("a", request(1, token="t"))
    table.from_client("b", request(2))
    assert sent is not None
    assert table.remove_session("a") == [sent["id"]], "what to cancel in the child"
    assert table.route(result(sent["id"])) is None
    assert table.route(progress(sent["params"]["_meta"]["progressToken"], 1)) is None
    assert table.in_flight() == 1 and table.sessions == {"b"}
