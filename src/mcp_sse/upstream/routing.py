"""Where each message between clients and a stdio server process goes, as a pure table.

A stdio child knows nothing of sessions or HTTP streams: it sees one JSON-RPC peer. The table keeps
what is needed to route its messages back (``docs/architecture.md``, "stdio upstreams"):

- every client request is given an id of the child's own (``"1"``, ``"2"``, ...) and, when it has
  one, a progress token of the child's own; so two clients (``--shared``) that both send id 1, or
  reuse a progress token, never collide, and a response goes back to exactly the request it answers;
- a request of the child (sampling, elicitation, roots) is given an id the client answers to, and
  the answer goes back under the child's id;
- our own requests (the initialize a restarted child needs) are answered to us, not to a client;
- a notification tied to a request (progress by its token, cancelled by its id) goes to that
  request's session and stream; one tied to nothing goes, in a child of one session, to that
  session (to its one request in flight when there is exactly one); in a shared child, a log or a
  request goes to the one session with requests in flight or nowhere (never guessed: it could show
  one user another's data), and a list-changed notification goes to every session.

No I/O: messages (decoded JSON objects) in, ``Route`` values out. The stdio upstream carries them
out. Tests: tests/upstream/test_routing.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from mcp_sse.wire.jsonrpc import CONNECTION_CLOSED, INTERNAL_ERROR, Kind, RequestId, classify, error_message

__all__ = ["Broadcast", "Deliver", "Malformed", "Refuse", "Route", "RoutingTable"]

INTERNAL_PREFIX = "mcp-sse-"
"""Ids and tokens the table makes up for the child start with this; a client's never reach it."""


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send ``message`` to the session ``session``, on the stream of ``related`` (its standalone
    stream when None). ``kind`` and ``request_id`` describe it for the session's bookkeeping."""

    session: str
    message: dict[str, Any]
    kind: Kind
    request_id: RequestId | None = None
    related: RequestId | None = None


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer the child's request ``message`` with this error (nobody can be told it came)."""

    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``message`` (a notification tied to no request) to every session of a shared child:
    each client's view changed (``list_changed`` and the like)."""

    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    """The child wrote something that is not a JSON-RPC message: no client gets it (log it)."""

    message: dict[str, Any]


Route = Deliver | Refuse | Broadcast | Malformed | None
"""None: nothing to send (an answer to our own request, a message tied to nothing that is dropped)."""


@dataclass(slots=True)
class _Request:
    session: str
    client_id: RequestId
    client_token: Any = None
    child_token: str | None = None


class RoutingTable:
    """The routes of one child. ``shared``: it serves several sessions at once (``--shared``)."""

    def __init__(self, *, shared: bool) -> None:
        self.shared = shared
        self.sessions: set[str] = set()
        self._requests: dict[str, _Request] = {}  # child-side id -> where it came from
        self._by_client: dict[tuple[str, RequestId], str] = {}  # (session, client id) -> child-side id
        self._tokens: dict[str, str] = {}  # child-side progress token -> child-side request id
        self._child_requests: dict[str, tuple[str, Any]] = {}  # id shown to the client -> (session, child's id)
        self._internal: set[str] = set()  # our own requests still unanswered
        self._ids = itertools.count(1)

    # --- sessions ----------------------------------------------------------------------------

    def add_session(self, session: str) -> None:
        self.sessions.add(session)

    def remove_session(self, session: str) -> list[str]:
        """Forget a session; the child-side ids of its requests still in flight (to cancel them)."""
        self.sessions.discard(session)
        gone = [child_id for child_id, request in self._requests.items() if request.session == session]
        for child_id in gone:
            self._forget(child_id)
        for shown, (owner, _) in list(self._child_requests.items()):
            if owner == session:
                del self._child_requests[shown]
        return gone

    def in_flight(self, session: str | None = None) -> int:
        return sum(1 for request in self._requests.values() if session is None or request.session == session)

    # --- from a client to the child ------------------------------------------------------------

    def from_client(self, session: str, message: dict[str, Any]) -> dict[str, Any] | None:
        """The message as the child must see it; None when it must not reach the child (an answer
        to a request the child never made, a cancellation of a request it does not have)."""
        kind = _kind(message)
        if kind is Kind.REQUEST:
            return self._client_request(session, message)
        if kind in (Kind.RESPONSE, Kind.ERROR):
            target = self._child_requests.get(str(message.get("id")))
            if target is None or target[0] != session:
                return None
            del self._child_requests[str(message.get("id"))]
            return dict(message, id=target[1])
        if message.get("method") == "notifications/cancelled":
            params = message.get("params")
            if not isinstance(params, dict):
                return None
            cancelled = params.get("requestId")
            child_id = self._by_client.get((session, cancelled)) if isinstance(cancelled, str | int) else None
            if child_id is None:
                return None
            # A cancelled request is over for its client (a server need not answer it): it no longer
            # counts as in flight, so it neither owns the child's next question nor leaks.
            self._forget(child_id)
            return dict(message, params=dict(params, requestId=child_id))
        return message

    def _client_request(self, session: str, message: dict[str, Any]) -> dict[str, Any]:
        child_id = f"{next(self._ids)}"
        client_id = message["id"]
        request = _Request(session, client_id)
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        message = dict(message, id=child_id)
        if token is not None and isinstance(params, dict) and isinstance(meta, dict):
            request.client_token = token
            request.child_token = f"{INTERNAL_PREFIX}{child_id}"
            self._tokens[request.child_token] = child_id
            message["params"] = dict(params, _meta=dict(meta, progressToken=request.child_token))
        previous = self._by_client.get((session, client_id))
        if previous is not None:  # the edge refuses an id in flight; if one slips through, the newer wins
            self._forget(previous)
        self._requests[child_id] = request
        self._by_client[(session, client_id)] = child_id
        return message

    def own_request(self, message: dict[str, Any]) -> dict[str, Any]:
        """A request of ours for the child (the initialize a restarted child needs): its answer is
        ours (``route`` gives None for it), never a client's."""
        child_id = f"{INTERNAL_PREFIX}{next(self._ids)}"
        self._internal.add(child_id)
        return dict(message, id=child_id)

    def owns(self, child_id: Any) -> bool:
        return str(child_id) in self._internal

    # --- from the child to the clients ---------------------------------------------------------

    def route(self, message: dict[str, Any]) -> Route:
        """Where a message of the child goes (nowhere when it is not JSON-RPC: clients get none of that)."""
        kind = _kind(message)
        if kind is None:
            return Malformed(message)
        if kind in (Kind.RESPONSE, Kind.ERROR):
            child_id = str(message.get("id"))
            if child_id in self._internal:
                self._internal.discard(child_id)
                return None
            request = self._forget(child_id)
            if request is None:
                return None  # an answer to nothing in flight (a request the client cancelled, or a confused child)
            assert kind is not None
            return Deliver(request.session, dict(message, id=request.client_id), kind, request.client_id)
        method = message.get("method")
        raw_params = message.get("params")
        params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        if method == "notifications/progress":
            token_of = self._tokens.get(str(params.get("progressToken")))
            request = self._requests.get(token_of) if token_of is not None else None
            if request is None:
                return None  # progress of a request already answered
            out = dict(message, params=dict(params, progressToken=request.client_token))
            return Deliver(request.session, out, Kind.NOTIFICATION, None, request.client_id)
        if method == "notifications/cancelled":
            request = self._requests.get(str(params.get("requestId")))
            if request is None:
                return None
            out = dict(message, params=dict(params, requestId=request.client_id))
            return Deliver(request.session, out, Kind.NOTIFICATION, None, request.client_id)
        owner = self._owner()
        if kind is Kind.REQUEST:
            if owner is None:
                reason = "mcp-sse --shared cannot tell which client this request is for; run one process per session"
                return Refuse(error_message(INTERNAL_ERROR, reason, message.get("id")))
            session, related = owner
            shown = f"{INTERNAL_PREFIX}{next(self._ids)}"
            self._child_requests[shown] = (session, message.get("id"))
            return Deliver(session, dict(message, id=shown), Kind.REQUEST, shown, related)
        if self.shared and method != "notifications/message":
            return Broadcast(message)
        if owner is None:
            return None  # a log several clients could own: dropped, never guessed
        session, related = owner
        return Deliver(session, message, Kind.NOTIFICATION, None, related)

    def child_exited(self, code: int | None) -> list[Deliver]:
        """The child is gone: an error for every request it had, and everything it owed forgotten."""
        routes = []
        for child_id in list(self._requests):
            request = self._forget(child_id)
            assert request is not None
            error = error_message(
                CONNECTION_CLOSED, f"the MCP server process exited (code {code}) before answering", request.client_id
            )
            routes.append(Deliver(request.session, error, Kind.ERROR, request.client_id))
        self._child_requests.clear()
        self._internal.clear()
        return routes

    # --- inside --------------------------------------------------------------------------------

    def _owner(self) -> tuple[str, RequestId | None] | None:
        """The session a message tied to no request belongs to, and its request when just one is
        in flight: a child of one session's session; in a shared child, the one session with
        requests in flight, or None."""
        busy = {request.session for request in self._requests.values()}
        if self.shared:
            if len(busy) != 1:
                return None
            session = next(iter(busy))
        elif len(self.sessions) == 1:
            session = next(iter(self.sessions))
        else:
            return None
        mine = [request.client_id for request in self._requests.values() if request.session == session]
        return session, (mine[0] if len(mine) == 1 else None)

    def _forget(self, child_id: str) -> _Request | None:
        request = self._requests.pop(child_id, None)
        if request is not None:
            self._by_client.pop((request.session, request.client_id), None)
            if request.child_token is not None:
                self._tokens.pop(request.child_token, None)
        return request


def _kind(message: dict[str, Any]) -> Kind | None:
    try:
        return classify(message).kind
    except ValueError:
        return None
