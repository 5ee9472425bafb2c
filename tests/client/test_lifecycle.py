"""The client's request lifecycle, driven event by event with no socket and no clock (h11 style).

Each test plays what the I/O would report and checks the action the machine answers, including
every path the chaos and resilience tests reach over the network.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from mcp_sse.client.connection import Cancellation, Connection
from mcp_sse.client.decisions import EraCache, EventVerdict
from mcp_sse.client.lifecycle import (
    Fail,
    FallBackToSSE,
    Finish,
    OneWayLifecycle,
    Phase,
    Post,
    Purpose,
    ReadError,
    ReadJSON,
    ReadStream,
    Reinitialize,
    RequestLifecycle,
    Resume,
    StandaloneLifecycle,
    Verdict,
    Wait,
    error_from_http,
    judge_status,
)
from mcp_sse.client.policy import ReconnectPolicy

POLICY = ReconnectPolicy(initial_delay=0.5, max_delay=4, budget=10, jitter=False)
SSE = "text/event-stream"
JSON = "application/json"
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}


def call(request_id: Any = 7, *, safe: bool = False, **kwargs: Any) -> RequestLifecycle:
    request = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "t"}}
    return RequestLifecycle(request, safe=safe, policy=POLICY, rng=random.Random(1), **kwargs)


def modern(method: str = "tools/call", *, safe: bool = False) -> RequestLifecycle:
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"_meta": dict(MODERN_META)}}
    return RequestLifecycle(request, safe=safe, policy=POLICY)


def initialize(version: str = "2025-11-25") -> RequestLifecycle:
    request = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": version}}
    return RequestLifecycle(request, safe=True, policy=POLICY, allow_fallback=True)


def response(request_id: Any, result: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result or {}}


# --- the status table -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "purpose", "has_session", "verdict"),
    [
        (200, Purpose.REQUEST, True, Verdict.OK),
        (202, Purpose.REQUEST, True, Verdict.NO_RESPONSE),
        (202, Purpose.ONE_WAY, True, Verdict.OK),
        (404, Purpose.REQUEST, True, Verdict.SESSION_GONE),
        (404, Purpose.REQUEST, False, Verdict.REFUSED),
        (404, Purpose.RESUME, False, Verdict.SESSION_GONE),
        (404, Purpose.STANDALONE, False, Verdict.REFUSED),
        (405, Purpose.STANDALONE, True, Verdict.NO_STREAM),
        (405, Purpose.REQUEST, True, Verdict.REFUSED),
        (410, Purpose.RESUME, True, Verdict.REFUSED),
        (500, Purpose.REQUEST, True, Verdict.REFUSED),
        (500, Purpose.RESUME, True, Verdict.UNAVAILABLE),
        (500, Purpose.STANDALONE, True, Verdict.UNAVAILABLE),
        (503, Purpose.REQUEST, True, Verdict.UNAVAILABLE),
        (502, Purpose.ONE_WAY, True, Verdict.UNAVAILABLE),
        (400, Purpose.ONE_WAY, True, Verdict.REFUSED),
    ],
)
def test_one_table_says_what_a_status_means(status: int, purpose: Purpose, has_session: bool, verdict: Verdict) -> None:
    assert judge_status(status, purpose, has_session=has_session) is verdict


# --- sending and answering ---------------------------------------------------------------------


def test_a_request_is_posted_then_read_as_json_or_a_stream() -> None:
    life = call()
    assert life.start() == Post(life.request)
    assert life.phase is Phase.SENDING
    assert life.head(200, "application/json; charset=utf-8", session="s", now=0) is ReadJSON.ACTION
    life = call()
    life.start()
    assert life.head(200, SSE, session="s", now=0) is ReadStream.ACTION
    assert life.answered(response(7, {"ok": 1})) == Finish(response(7, {"ok": 1}))
    assert life.done


def test_an_answer_of_another_content_type_or_202_fails_the_request() -> None:
    life = call()
    life.start()
    failed = life.head(200, "text/html", session="s", now=0)
    assert isinstance(failed, Fail) and "unexpected Content-Type 'text/html'" in failed.message
    life = call()
    life.start()
    failed = life.head(202, "", session="s", now=0)
    assert isinstance(failed, Fail) and "202 Accepted" in failed.message


def test_a_resumption_token_from_the_caller_starts_with_a_resume() -> None:
    life = call(resumption_token="3-9")
    assert life.start() == Resume("3-9")
    assert life.head(200, "", session="s", now=0) is ReadStream.ACTION, "a resume reads a stream, whatever it says"


def test_a_refusal_is_the_servers_error_under_the_callers_id() -> None:
    life = call()
    life.start()
    assert life.head(400, JSON, session="s", now=0) is ReadError.ACTION
    body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad","data":{"x":1}}}'
    finished = life.refused(400, body)
    assert finished == Finish(
        {"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "bad", "data": {"x": 1}}}
    )
    assert error_from_http(1, 502, b"<html>gateway</html>")["error"]["message"] == "HTTP 502: <html>gateway</html>"


def test_answers_map_back_to_the_callers_id_and_a_batch_gives_ours() -> None:
    life = call(safe=True)
    life.start()
    life.broke("cut", now=0)
    life.wait_over()
    assert life.wire_request["id"] == "7.mcp-sse-resend-1"
    batch = [response("other"), response("7.mcp-sse-resend-1", {"mine": True})]
    assert life.answered(batch) == Finish(response(7, {"mine": True}))
    life = call()
    life.start()
    failed = life.answered({"jsonrpc": "2.0", "method": "notifications/message"})
    assert isinstance(failed, Fail) and "not a JSON-RPC response" in failed.message


# --- the events of a stream -------------------------------------------------------------------


def test_events_are_new_carried_over_or_duplicates() -> None:
    life = call()
    life.start()
    assert life.event("0-1") is EventVerdict.NEW
    assert life.event("0-1") is EventVerdict.SAME, "a decoder carries the last id over to events without one"
    assert life.event("") is EventVerdict.SAME
    assert life.event("0-2") is EventVerdict.NEW
    assert life.cursor.last_event_id == "0-2"


def test_the_chaos_path_cut_resume_duplicate_then_the_answer() -> None:
    """What the chaos test does over a real socket: a stream cut mid-way, resumed from its cursor,
    a replayed event dropped, events the server no longer had counted, then the answer."""
    life = call()
    assert isinstance(life.start(), Post)
    assert life.head(200, SSE, session="s", now=0) is ReadStream.ACTION
    for event_id in ("1-0", "1-1", "1-2"):
        assert life.event(event_id) is EventVerdict.NEW
    waiting = life.broke("the connection broke", now=1.0)
    assert waiting == Wait(0.5, "the connection broke")
    assert life.wait_over() == Resume("1-2")
    assert life.resends == 0, "a resume is not a resend"
    assert life.head(200, SSE, session="s", now=1.5) is ReadStream.ACTION
    assert life.event("1-2") is EventVerdict.DUPLICATE
    assert life.event("1-5") is EventVerdict.NEW
    assert life.resumed() == ("1-2", 2), "events 1-3 and 1-4 were lost"
    assert life.resumed() is None, "said once per resume"
    assert life.answered(response(7)) == Finish(response(7))


def test_the_servers_retry_replaces_the_wait() -> None:
    life = call()
    life.start()
    life.event("1-1")
    life.cursor.retry_ms = 20
    waiting = life.broke("cut", now=0)
    assert isinstance(waiting, Wait) and waiting.seconds == 0.02


# --- breaks ----------------------------------------------------------------------------------


def test_a_break_before_any_event_id_fails_an_unsafe_request() -> None:
    life = call()
    life.start()
    failed = life.broke("reset by peer", now=0)
    assert isinstance(failed, Fail)
    assert "before the server sent a resumable event id (reset by peer)" in failed.message
    assert "not marked safe to retry" in failed.message
    assert life.done


def test_a_safe_request_is_sent_again_under_a_new_id() -> None:
    life = call(safe=True)
    life.start()
    assert isinstance(life.broke("reset", now=0), Wait)
    resent = life.wait_over()
    assert resent == Post(dict(life.request, id="7.mcp-sse-resend-1"))
    assert life.id == 7, "the caller keeps its own id"


def test_a_request_the_server_never_saw_goes_again_under_its_own_id() -> None:
    life = call()
    life.start()
    assert life.head(503, "", session="s", now=0) == Wait(0.5, "the server answered 503")
    assert life.wait_over() == Post(life.request)
    assert isinstance(life.broke("cannot connect", maybe_received=False, now=1), Wait)
    assert life.wait_over() == Post(life.request)


def test_a_resume_answered_5xx_waits_and_resumes_again() -> None:
    life = call(resumption_token="2-4")
    life.start()
    assert life.head(500, "", session="s", now=0) == Wait(0.5, "the server answered 500 to a resume")
    assert life.wait_over() == Resume("2-4")


def test_a_refused_resume_fails_with_the_servers_reason() -> None:
    life = call(resumption_token="2-4")
    life.start()
    assert life.head(410, JSON, session="s", now=0) is ReadError.ACTION
    failed = life.refused(410, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"evicted"}}')
    assert failed == Fail("cannot resume after event 2-4: evicted")


def test_waits_grow_until_the_budget_is_spent() -> None:
    life = call(safe=True)
    life.start()
    waits = []
    now = 0.0
    while isinstance(action := life.broke(f"cut at {now:g}", now=now), Wait):
        waits.append(action.seconds)
        now += action.seconds
        life.wait_over()
    assert waits[:4] == [0.5, 1.0, 2.0, 4.0] and max(waits) == 4
    assert sum(waits) == pytest.approx(10)
    assert isinstance(action, Fail)
    assert action.message.startswith("gave up after 10s of failed reconnection attempts (first failure: cut at 0;")


# --- lost sessions ---------------------------------------------------------------------------


def test_a_lost_session_is_reopened_and_the_request_sent_again() -> None:
    life = call()
    life.start()
    assert life.head(404, JSON, session="old", now=0) == Reinitialize("old")
    assert life.phase is Phase.RECOVERING
    assert life.session_reopened() == Post(dict(life.request, id="7.mcp-sse-resend-1"))


def test_a_session_lost_while_resuming_fails_an_unsafe_request_and_resends_a_safe_one() -> None:
    life = call(resumption_token="1-3")
    life.start()
    assert life.head(404, "", session="old", now=0) == Reinitialize("old")
    failed = life.session_reopened()
    assert isinstance(failed, Fail) and "in progress on the server" in failed.message
    safe = call(safe=True, resumption_token="1-3")
    safe.start()
    safe.head(404, "", session="old", now=0)
    assert isinstance(safe.session_reopened(), Post)
    assert safe.cursor.last_event_id is None, "the new session's stream starts afresh"


def test_a_lost_session_cannot_be_reopened_for_initialize_or_when_the_policy_says_no() -> None:
    life = initialize()
    life.start()
    failed = life.session_lost("s")
    assert isinstance(failed, Fail) and "cannot be reopened" in failed.message
    request = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    no_reopen = RequestLifecycle(request, safe=True, policy=ReconnectPolicy(reinitialize=False))
    no_reopen.start()
    assert isinstance(no_reopen.session_lost("s"), Fail)
    assert call().reopen_failed("could not open a new session: x") == Fail("could not open a new session: x")


def test_http_sse_resends_a_safe_request_under_its_id_and_fails_an_unsafe_one() -> None:
    """HTTP+SSE cannot resume: a dropped stream is a lost session, the request was in progress."""
    safe = call(safe=True, resumable=False)
    safe.start()
    assert safe.session_lost(None) == Reinitialize(None)
    assert safe.session_reopened() == Post(safe.request), "a new session never saw the old id"
    unsafe = call(resumable=False)
    unsafe.start()
    unsafe.session_lost(None)
    failed = unsafe.session_reopened()
    assert isinstance(failed, Fail) and "HTTP+SSE stream dropped" in failed.message


# --- the handshake and the eras ------------------------------------------------------------------


def test_a_refused_initialize_falls_back_to_http_sse_by_the_version_rules() -> None:
    life = initialize("2025-11-25")
    life.start()
    assert life.head(405, "", session=None, now=0) is ReadError.ACTION
    assert life.refused(405, b"") == FallBackToSSE(405)
    life = initialize("2025-11-25")
    life.start()
    assert isinstance(life.refused(401, b""), Finish), "401 is authorization, never a transport downgrade"
    life = initialize("2025-03-26")
    life.start()
    assert life.refused(422, b"") == FallBackToSSE(422)


def test_a_stateless_servers_refusal_of_initialize_is_its_answer_not_a_fallback() -> None:
    life = initialize()
    life.start()
    body = b'{"jsonrpc":"2.0","id":0,"error":{"code":-32022,"message":"no","data":{"supported":["2026-07-28"]}}}'
    finished = life.refused(400, body)
    assert isinstance(finished, Finish) and finished.response["error"]["code"] == -32022


def test_a_broken_modern_request_is_lost_and_only_a_safe_one_goes_again() -> None:
    life = modern()
    life.start()
    life.event("0-1")
    failed = life.broke("cut", now=0)
    assert isinstance(failed, Fail) and "2026-07-28 era a broken request is lost" in failed.message
    safe = modern("tools/list", safe=True)
    safe.start()
    safe.event("0-1")
    assert isinstance(safe.broke("cut", now=0), Wait)
    assert isinstance(safe.wait_over(), Post), "no resumption in this era: a new request"


def test_a_listen_stream_is_reopened_after_every_outage_with_a_fresh_budget() -> None:
    life = modern("subscriptions/listen")
    assert life.listen is not None
    life.start()
    life.listen.acknowledged({"params": {"subscriptionId": "x"}})
    now = 0.0
    for _ in range(20):  # far more outages than one budget would allow
        waiting = life.broke("cut", now=now)
        assert isinstance(waiting, Wait) and waiting.seconds == 0.5
        assert isinstance(life.wait_over(), Post)
        now += 100


# --- one-way messages and the standalone stream ----------------------------------------------


def test_a_one_way_message_is_retried_within_the_budget_then_dropped() -> None:
    one_way = OneWayLifecycle(POLICY)
    assert one_way.head(202, session="s") is Verdict.OK
    assert one_way.head(404, session="s") is Verdict.SESSION_GONE
    assert one_way.head(503, session="s") is Verdict.UNAVAILABLE
    assert one_way.broke(0) == 0.5
    assert one_way.broke(11) is None


def test_the_standalone_stream_resumes_on_its_session_and_starts_afresh_on_a_new_one() -> None:
    stream = StandaloneLifecycle(POLICY)
    assert stream.opening("a") is None
    assert stream.head(200) is Verdict.OK
    assert stream.cursor.event("0-4") is EventVerdict.NEW
    assert stream.opening("a") == "0-4"
    assert stream.cursor.event("0-4") is EventVerdict.DUPLICATE, "a replay on the new response is dropped"
    assert stream.head(404) is Verdict.SESSION_GONE
    assert stream.opening("b") is None, "a new session's stream has no cursor yet"
    assert stream.head(405) is Verdict.NO_STREAM
    stream.cursor.retry_ms = 3000
    assert stream.broke(0) == 3.0


# --- the connection -------------------------------------------------------------------------


def test_the_connection_learns_its_session_version_and_tools() -> None:
    connection = Connection("http://h/mcp", POLICY)
    init = connection.request({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}})
    connection.session_opened({"mcp-session-id": "abc"})
    connection.answered(init, response(0, {"protocolVersion": "2025-06-18"}))
    assert connection.headers({"X-Custom": "1"}) == {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-session-id": "abc",
        "mcp-protocol-version": "2025-06-18",
        "x-custom": "1",
    }
    assert connection.headers(accept="text/event-stream", last_event_id="0-3")["last-event-id"] == "0-3"
    tools = connection.request({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    connection.answered(tools, response(1, {"tools": [{"name": "r", "annotations": {"readOnlyHint": True}}]}))
    reading = connection.request({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "r"}})
    assert reading.safe
    reopen = connection.reopening()
    assert reopen["id"] == "mcp-sse-reinitialize-1" and connection.session_id is None
    connection.reopened({"mcp-session-id": "def"}, {"protocolVersion": "2025-11-25"})
    assert (connection.session_id, connection.protocol_version) == ("def", "2025-11-25")


def test_a_cancellation_is_posted_under_the_wire_id_or_done_by_closing_in_2026() -> None:
    connection = Connection("http://h/mcp", POLICY)
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
    life = connection.request({"jsonrpc": "2.0", "id": 7, "method": "ping"})
    assert connection.cancellation(cancel, life) == (Cancellation.POST, cancel)
    life.start()
    life.broke("cut", now=0)
    life.wait_over()
    how, sent = connection.cancellation(cancel, life)
    assert how is Cancellation.POST and sent["params"]["requestId"] == "7.mcp-sse-resend-1"
    stateless = connection.request(
        {"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {"_meta": MODERN_META}}
    )
    assert connection.cancellation(cancel, stateless)[0] is Cancellation.CLOSE
    assert connection.cancellation(cancel, None)[0] is Cancellation.DROP, "never a notification to a stateless server"


def test_the_probe_memory_answers_a_refused_probe_locally_and_forgets_when_it_misled() -> None:
    cache = EraCache()
    connection = Connection("http://h/mcp", POLICY)
    connection.probe.cache = cache
    probe = connection.request(
        {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": MODERN_META}}
    )
    connection.answered(probe, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no"}})
    init = connection.request({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {}})
    connection.answered(init, response(2, {"protocolVersion": "2025-11-25"}))
    assert cache.stateless("http://h/other") is False
    again = Connection("http://h/mcp", POLICY)
    again.probe.cache = cache
    assert again.probe.answer_locally("server/discover")
    failed_init = again.request({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {}})
    again.answered(failed_init, {"jsonrpc": "2.0", "id": 3, "error": {"code": -32600, "message": "x"}})
    assert cache.stateless("http://h/mcp") is None, "remembered wrongly: the next probe goes on the wire"
