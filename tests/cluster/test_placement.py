"""Where a request for a session is served, with no Redis and no socket (``cluster/placement.py``)."""

from __future__ import annotations

from mcp_sse.cluster.placement import ForwardTo, Owner, RetryLater, ServeHere, place

ME = "node-a"
PEER = Owner("node-b", "http://10.0.0.2:8000")


def test_a_session_this_node_runs_is_served_here() -> None:
    assert place(ME, Owner(ME, "http://me"), hopped=False, held_here=True) == ServeHere(revive=False)


def test_a_session_this_node_just_claimed_is_brought_back_from_the_store() -> None:
    """Its owner died (or stopped): nothing this node remembers of it can be trusted."""
    assert place(ME, Owner(ME, "http://me"), hopped=False, held_here=False) == ServeHere(revive=True)


def test_another_nodes_session_is_forwarded_to_it() -> None:
    assert place(ME, PEER, hopped=False, held_here=False) == ForwardTo(PEER, drop_local=False)


def test_a_stale_copy_here_ends_when_another_node_owns_the_session() -> None:
    """This node was taken for dead and its session claimed: its copy must not answer any more."""
    assert place(ME, PEER, hopped=False, held_here=True) == ForwardTo(PEER, drop_local=True)


def test_a_forwarded_request_is_never_forwarded_again() -> None:
    """Two nodes that disagree for a moment would bounce it: the client is told to come back."""
    placed = place(ME, PEER, hopped=True, held_here=False)
    assert isinstance(placed, RetryLater)
    assert place(ME, Owner(ME, "http://me"), hopped=True, held_here=True) == ServeHere(revive=False)


def test_a_node_tells_its_peers_where_it_listens() -> None:
    from mcp_sse.cluster.node import ClusterNode

    node = ClusterNode("redis://r/0")
    node.listening_at("http://127.0.0.1:8000")
    assert node.address == "http://127.0.0.1:8000"
    configured = ClusterNode("redis://r/0", "http://10.0.0.5:9000")
    configured.listening_at("http://0.0.0.0:8000")
    assert configured.address == "http://10.0.0.5:9000", "a configured address wins"
    worker = ClusterNode("redis://r/0", "http://10.0.0.5:9000")
    worker.listening_at("http://0.0.0.0:41234", own_port=True)
    assert worker.address == "http://10.0.0.5:41234", "a worker: the configured host, its own port"
