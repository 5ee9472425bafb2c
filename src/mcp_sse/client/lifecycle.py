"""The life of one request on the client, as a state machine with no I/O (the way h11 is built).

The transports (``client/streamable.py``, ``client/legacy.py``) tell a ``RequestLifecycle`` what
happened, and do what it answers:

    events in                                   actions out
    start()                                     Post (send the request) or Resume (GET after an id)
    head(status, content type)                  ReadJSON, ReadStream, ReadError, or what a break
                                                or a lost session leads to
    event(id) / answered(response)              deliver or drop an event; Finish with the response
    broke(reason, maybe_received, now)          Wait, or Fail once the budget is spent or a resend is
      (a broken connection, an idle timeout)    unsafe
    wait_over()                                 Resume, or Post (a resend under a new id)
    session_lost(session) / session_reopened()  Reinitialize, then Post again or Fail
    refused(status, body)                       Finish with the server's error, or FallBackToSSE

Time comes in as numbers (``now``), so every path, including each one the chaos test hits, is
unit-tested without a socket (``tests/client/test_lifecycle.py``). ``judge_status`` is the one
place an HTTP status becomes an outcome, for requests, resumes, notifications and the standalone
stream alike.

Specification: MCP 2025-11-25, Transports, "Sending Messages to the Server", "Resumability and
Redelivery" and "Session Management":
https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Any

import orjson

from mcp_sse.client.decisions import Backoff, Cursor, EventVerdict, should_fall_back_to_sse
from mcp_sse.client.modern import ListenState, is_modern_request, names_stateless_era
from mcp_sse.client.policy import ReconnectPolicy
from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, INTERNAL_ERROR, RequestId

__all__ = [
    "Action",
    "EventVerdict",
    "Fail",
    "FallBackToSSE",
    "Finish",
    "OneWayLifecycle",
    "Phase",
    "Post",
    "Purpose",
    "ReadError",
    "ReadJSON",
    "ReadStream",
    "Reinitialize",
    "RequestLifecycle",
    "Resume",
    "StandaloneLifecycle",
    "Verdict",
    "Wait",
    "error_from_http",
    "is_response",
    "judge_status",
]


# --- what an HTTP status means --------------------------------------------------------------


class Purpose(enum.Enum):
    """What an HTTP exchange was for: the same status means different things to each."""

    REQUEST = "request"  # POST of a JSON-RPC request
    RESUME = "resume"  # GET with Last-Event-ID for a request's stream
    ONE_WAY = "one-way"  # POST of a notification or a response
    STANDALONE = "standalone"  # the GET stream for server-initiated messages


class Verdict(enum.Enum):
    OK = "ok"
    SESSION_GONE = "session gone"  # 404 for our session: it ended (restart, expiry, DELETE)
    UNAVAILABLE = "unavailable"  # a gateway or an overloaded server: try again later
    NO_STREAM = "no stream"  # 405 to the standalone GET: the server offers none
    NO_RESPONSE = "no response"  # 202 to a request: nothing will ever answer it
    REFUSED = "refused"  # any other 4xx/5xx: the server said no, and its body says why


def judge_status(status: int, purpose: Purpose, *, has_session: bool) -> Verdict:
    """The outcome an HTTP status means for an exchange of this purpose."""
    if status == 404 and (has_session or purpose is Purpose.RESUME):
        return Verdict.SESSION_GONE
    if status == 405 and purpose is Purpose.STANDALONE:
        return Verdict.NO_STREAM
    if status in (502, 503, 504) or (status >= 500 and purpose in (Purpose.RESUME, Purpose.STANDALONE)):
        return Verdict.UNAVAILABLE
    if status >= 400:
        return Verdict.REFUSED
    if status == 202 and purpose is Purpose.REQUEST:
        return Verdict.NO_RESPONSE
    return Verdict.OK


def is_response(obj: dict[str, Any]) -> bool:
    return "method" not in obj and ("result" in obj or "error" in obj)


def error_from_http(request_id: RequestId | None, status: int, body: bytes) -> dict[str, Any]:
    """A refused request's answer: the server's JSON-RPC error when its body has one, else the status."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
        answer: dict[str, Any] = {"code": error.get("code", INTERNAL_ERROR), "message": error.get("message", "")}
        if error.get("data") is not None:
            answer["data"] = error["data"]
    else:
        answer = {"code": INTERNAL_ERROR, "message": f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"}
    return {"jsonrpc": "2.0", "id": request_id, "error": answer}


# --- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    """POST this request (the wire form: a resend carries its own id)."""

    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resume:
    """GET the request's stream again with ``Last-Event-ID: last_event_id``."""

    last_event_id: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep ``seconds``, then call ``wait_over`` for the next attempt."""

    seconds: float
    reason: str


@dataclass(frozen=True, slots=True)
class Reinitialize:
    """Open a new session (once, however many requests notice), then call ``session_reopened``."""

    lost_session: str | None


@dataclass(frozen=True, slots=True)
class Finish:
    """Deliver this response (already under the caller's id); the request is done."""

    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fail:
    """Answer the caller with this error; the request is done."""

    message: str
    code: int = CONNECTION_CLOSED


@dataclass(frozen=True, slots=True)
class FallBackToSSE:
    """The server refused the POSTed initialize in a way that means "use HTTP+SSE"."""

    status: int


class ReadJSON(enum.Enum):
    """The answer is one JSON body: read it whole and call ``answered``."""

    ACTION = "read json"


class ReadStream(enum.Enum):
    """The answer is an SSE stream: read it, calling ``event`` and ``answered``."""

    ACTION = "read stream"


class ReadError(enum.Enum):
    """The server refused: read the body and call ``refused`` with it."""

    ACTION = "read error"


Action = Post | Resume | Wait | Reinitialize | Finish | Fail | FallBackToSSE | ReadJSON | ReadStream | ReadError


# --- one request ------------------------------------------------------------------------------


class Phase(enum.Enum):
    NEW = "new"
    SENDING = "sending"  # a POST of the request is under way
    RESUMING = "resuming"  # a GET after the cursor's id is under way
    WAITING = "waiting"  # between two attempts
    RECOVERING = "recovering"  # the session is being opened again
    FINISHED = "finished"  # answered, or failed with an error for the caller


class RequestLifecycle:
    """The decisions about one request, from its first send to its answer or its failure."""

    def __init__(
        self,
        request: dict[str, Any],
        *,
        safe: bool,
        policy: ReconnectPolicy,
        resumption_token: str | None = None,
        allow_fallback: bool = False,
        resumable: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.request = request
        self.id: RequestId = request["id"]
        self.method: str = request["method"]
        self.safe = safe
        self.policy = policy
        self.allow_fallback = allow_fallback and self.method == "initialize"
        self.resumable = resumable  # False for HTTP+SSE: a dropped stream is a lost session
        # 2026-07-28: no session, no resumption; closing the POST is how it is cancelled.
        self.modern = is_modern_request(request)
        self.listen = ListenState() if self.modern and self.method == "subscriptions/listen" else None
        self.cursor = Cursor(resumption_token) if resumption_token else Cursor()
        self.resends = 0
        self.backoff = Backoff(policy, rng)
        self.phase = Phase.NEW
        self._first_failure: str | None = None
        self._reopen_needs_resend_check = False
        self._resume_after_wait = False
        self._resumed_from: str | None = None  # set while a resumed stream has delivered nothing yet
        self._lost_before = 0

    @property
    def wire_request(self) -> dict[str, Any]:
        """What goes on the wire: a resend carries a new id, because the first attempt may still be
        running on the server under the old one; its response is mapped back to the caller's id."""
        if not self.resends:
            return self.request
        return dict(self.request, id=f"{self.id}.mcp-sse-resend-{self.resends}")

    @property
    def done(self) -> bool:
        return self.phase is Phase.FINISHED

    # --- sending ----------------------------------------------------------------------------

    def start(self) -> Post | Resume:
        """The first attempt: a resume when the caller handed us a resumption token, else a POST."""
        if self.cursor.last_event_id is not None:
            return self._resume()
        return self._post()

    def _post(self) -> Post:
        self.phase = Phase.SENDING
        self.cursor.new_response()
        return Post(self.wire_request)

    def _resume(self) -> Resume:
        assert self.cursor.last_event_id is not None
        self.phase = Phase.RESUMING
        self.cursor.new_response()
        self._resumed_from = self.cursor.last_event_id
        self._lost_before = self.cursor.lost
        return Resume(self.cursor.last_event_id)

    def head(self, status: int, content_type: str, *, session: str | None, now: float) -> Action:
        """The answer's status line and Content-Type arrived (``session``: the id we sent, if any)."""
        resuming = self.phase is Phase.RESUMING
        if self.allow_fallback and status >= 400:
            return ReadError.ACTION  # the handshake's refusal decides between eras (``refused``)
        verdict = judge_status(status, Purpose.RESUME if resuming else Purpose.REQUEST, has_session=session is not None)
        if verdict is Verdict.SESSION_GONE:
            return self.session_lost(session)
        if verdict is Verdict.UNAVAILABLE:
            if resuming:
                return self.broke(f"the server answered {status} to a resume", now=now)
            return self.broke(f"the server answered {status}", maybe_received=False, now=now)
        if verdict is Verdict.REFUSED:
            return ReadError.ACTION
        if verdict is Verdict.NO_RESPONSE:
            return self._fail("the server answered a request with 202 Accepted: no response will come")
        content_type = content_type.lower()
        if resuming or content_type.startswith("text/event-stream"):
            return ReadStream.ACTION
        if content_type.startswith("application/json"):
            return ReadJSON.ACTION
        return self._fail(f"unexpected Content-Type {content_type!r} in the answer to a request")

    def refused(self, status: int, body: bytes) -> Finish | Fail | FallBackToSSE:
        """The body of a refusal (``head`` said ``ReadError``)."""
        if self.phase is Phase.RESUMING:
            detail = error_from_http(self.id, status, body)["error"]["message"] or f"HTTP {status}"
            return self._fail(f"cannot resume after event {self.cursor.last_event_id}: {detail}")
        if self.allow_fallback:
            version = (self.request.get("params") or {}).get("protocolVersion")
            # A stateless server refusing the handshake (MCP 2026-07-28, Versioning): its error is
            # the answer, not a reason to try HTTP+SSE.
            if should_fall_back_to_sse(status, version) and not names_stateless_era(body):
                self.phase = Phase.FINISHED
                return FallBackToSSE(status)
        self.phase = Phase.FINISHED
        return Finish(error_from_http(self.id, status, body))

    # --- receiving --------------------------------------------------------------------------

    def event(self, event_id: str) -> EventVerdict:
        """An event arrived with this ``id`` field: deliver it, or drop a duplicate."""
        return self.cursor.event(event_id)

    def resumed(self) -> tuple[str, int] | None:
        """After the first new event of a resumed stream: (the id resumed after, events lost)."""
        if self._resumed_from is None:
            return None
        resumed = self._resumed_from, self.cursor.lost - self._lost_before
        self._resumed_from = None
        return resumed

    def answered(self, obj: Any) -> Finish | Fail:
        """The answer arrived (a JSON body, or a response event on the stream)."""
        if isinstance(obj, list):  # a batch answer to a single request: take ours
            wire_id = self.wire_request["id"]
            obj = next((item for item in obj if isinstance(item, dict) and item.get("id") == wire_id), None) or (
                obj[-1] if obj else {}
            )
        if not isinstance(obj, dict) or not is_response(obj):
            return self._fail("the server's answer is not a JSON-RPC response")
        obj["id"] = self.id  # a resumed stream or a resend answers under the caller's id (SDK contract)
        self.phase = Phase.FINISHED
        return Finish(obj)

    # --- failures ---------------------------------------------------------------------------

    def broke(self, reason: str, *, maybe_received: bool = True, now: float) -> Wait | Fail:
        """The connection broke, or stayed silent past the idle timeout, before the answer."""
        self._first_failure = self._first_failure or reason
        was_resuming = self.phase is Phase.RESUMING
        if self.modern:
            # No resumption in this era: a broken request is lost and only a new one can follow.
            self.cursor = Cursor()
            if self.listen is not None and self.listen.acked:
                self.backoff.reset()  # each outage of a listen stream gets the whole budget
        if self.cursor.last_event_id is not None:
            self._resume_after_wait = True
        elif not maybe_received or self.safe or self.listen is not None:
            if was_resuming or maybe_received:
                self.resends += 1
            self._resume_after_wait = False
        elif self.modern:
            return self._fail(
                f"the response stream broke ({reason}); in the 2026-07-28 era a broken request "
                "is lost, and this one is not marked safe to retry, so it was not sent again"
            )
        else:
            return self._fail(
                f"the connection broke before the server sent a resumable event id ({reason}); "
                "the request is not marked safe to retry, so it was not sent again"
            )
        delay = self.backoff.next_delay(now, self.cursor.retry_ms)
        if delay is None:
            return self._fail(
                f"gave up after {self.policy.budget:g}s of failed reconnection attempts "
                f"(first failure: {self._first_failure}; last: {reason})"
            )
        self.phase = Phase.WAITING
        return Wait(delay, reason)

    def wait_over(self) -> Post | Resume:
        """The wait ``broke`` asked for is over: the next attempt."""
        assert self.phase is Phase.WAITING
        return self._resume() if self._resume_after_wait else self._post()

    def session_lost(self, session: str | None) -> Reinitialize | Fail:
        """The server no longer knows the session this request was sent on."""
        if self.method == "initialize" or not self.policy.reinitialize:
            return self._fail("the server ended the session (404) and it cannot be reopened")
        # The server may have run it: only a request it never saw, or a safe one, goes again.
        self._reopen_needs_resend_check = self.phase is Phase.RESUMING or not self.resumable
        self.phase = Phase.RECOVERING
        return Reinitialize(session)

    def session_reopened(self) -> Post | Fail:
        """A new session is open: send the request again on it, or fail it if that is unsafe."""
        if self._reopen_needs_resend_check and not self.safe:
            if not self.resumable:
                return self._fail(
                    "the HTTP+SSE stream dropped while the request was in progress (that transport cannot "
                    "resume) and it is not marked safe to retry, so it was not sent again"
                )
            return self._fail(
                "the session ended while the request was in progress on the server; it is not marked "
                "safe to retry, so it was not sent again"
            )
        if self.resumable:
            self.resends += 1  # the old attempt may still run, under its id, where nobody listens
            self.cursor = Cursor()
            self.backoff.reset()
        return self._post()

    def reopen_failed(self, reason: str) -> Fail:
        """No new session could be opened."""
        return self._fail(reason)

    def _fail(self, message: str) -> Fail:
        self.phase = Phase.FINISHED
        return Fail(message)


# --- messages that expect no answer, and the standalone stream --------------------------------


class OneWayLifecycle:
    """A notification or a response POSTed to the server: retried within the budget, dropped when its
    session is gone (it belonged to that session) or the budget is spent."""

    def __init__(self, policy: ReconnectPolicy, rng: random.Random | None = None) -> None:
        self.backoff = Backoff(policy, rng)

    def head(self, status: int, *, session: str | None) -> Verdict:
        """OK: done. SESSION_GONE: recover the session, then drop the message. UNAVAILABLE: call
        ``broke``. REFUSED: log the server's reason, then drop it."""
        return judge_status(status, Purpose.ONE_WAY, has_session=session is not None)

    def broke(self, now: float) -> float | None:
        """Seconds to wait before trying again, or None to drop the message."""
        return self.backoff.next_delay(now)


class StandaloneLifecycle:
    """The GET stream for what the server sends outside any request: kept open, resumed from its
    cursor, and started afresh (new cursor) when the session changes, for the life of the client."""

    def __init__(self, policy: ReconnectPolicy, rng: random.Random | None = None) -> None:
        self.backoff = Backoff(policy, rng)
        self.cursor = Cursor()
        self.session: str | None = None

    def opening(self, session: str | None) -> str | None:
        """About to GET on ``session``: the ``Last-Event-ID`` to send, if any."""
        if session != self.session:
            self.session, self.cursor = session, Cursor()
        self.cursor.new_response()
        return self.cursor.last_event_id

    def head(self, status: int) -> Verdict:
        """OK: read the stream. NO_STREAM: stop for good. SESSION_GONE: recover, then open again.
        Anything else: call ``broke``."""
        verdict = judge_status(status, Purpose.STANDALONE, has_session=self.session is not None)
        if verdict is Verdict.OK:
            self.backoff.reset()
        return verdict

    def broke(self, now: float) -> float | None:
        """Seconds to wait before opening again (the server's ``retry`` wins), or None to give up."""
        return self.backoff.next_delay(now, self.cursor.retry_ms)
