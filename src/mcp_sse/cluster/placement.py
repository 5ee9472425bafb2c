"""Where a request for a session is served: a pure decision, no I/O (tests/cluster/test_placement.py).

Ownership lives in Redis (``cluster/directory.py``): the answer to "claim this session, or tell me
who has it" is an ``Owner``. A node serves what it owns; anything else goes to the owner, once:
a request that was already forwarded to us (``hopped``) and finds another owner is told to come
back (503 with ``Retry-After``), never forwarded again, so two nodes that disagree for a moment
cannot bounce a request between them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ForwardTo", "Owner", "RetryLater", "ServeHere", "place"]


@dataclass(frozen=True, slots=True)
class Owner:
    """The node that owns a session, and the URL other nodes reach it at."""

    node: str
    address: str


@dataclass(frozen=True, slots=True)
class ServeHere:
    """This node owns the session. ``revive``: it does not run it yet (it just claimed it from a
    node that is gone, or the session was kept by a stopped node): whatever this node remembers of
    it is stale, and the session is brought back from the store."""

    revive: bool


@dataclass(frozen=True, slots=True)
class ForwardTo:
    """Another node owns the session. ``drop_local``: this node still runs a copy (it owned the
    session once, then lost it while it looked dead); that copy ends, the store keeps the session."""

    owner: Owner
    drop_local: bool


@dataclass(frozen=True, slots=True)
class RetryLater:
    reason: str


Placement = ServeHere | ForwardTo | RetryLater


def place(me: str, owner: Owner, *, hopped: bool, held_here: bool) -> Placement:
    if owner.node == me:
        return ServeHere(revive=not held_here)
    if hopped:
        return RetryLater("the session moved to another node while this request was on its way")
    return ForwardTo(owner, drop_local=held_here)
