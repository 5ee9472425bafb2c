"""One typed configuration object for the server side, with defaults that are safe.

The CLI maps onto these fields one to one; docs generate the reference from the field metadata.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from typing import Any, get_origin, get_type_hints

__all__ = ["MiB", "ServerConfig", "is_repeatable", "option_name"]

KiB = 1024
MiB = 1024 * KiB


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


def _is_token(value: str) -> bool:
    """What an ``Authorization: Bearer`` value can carry unchanged (visible ASCII, RFC 6750 b64token
    and more): a space or a control character would never compare equal after a client sent it."""
    return bool(value) and all("!" <= char <= "~" for char in value)


REDIS_SCHEMES = ("redis", "rediss", "unix")
"""URL schemes of an ``event_store`` that names a Redis server."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Every knob of the server transport; the defaults are what a careful operator would pick."""

    path: str = field(default="/mcp", metadata=_doc("The Streamable HTTP endpoint (also answered with a trailing /)."))
    sse_path: str = field(default="/sse", metadata=_doc("The 2024-11-05 HTTP+SSE stream endpoint."))
    messages_path: str = field(
        default="/messages", metadata=_doc("Where 2024-11-05 clients POST (announced in the endpoint event).")
    )
    modern_only: bool = field(
        default=False,
        metadata=_doc(
            "Serve only the stateless 2026-07-28 era: GET, DELETE and HTTP+SSE answer 405, session headers "
            "are ignored. Needs an upstream that serves that era (an SDK server)."
        ),
    )
    json_response: bool = field(
        default=False, metadata=_doc("Answer POSTed requests with one JSON body instead of an SSE stream.")
    )
    session_idle_timeout: float | None = field(
        default=1800.0, metadata=_doc("Seconds without any HTTP activity after which a session is ended; None: never.")
    )
    max_sessions: int | None = field(
        default=10_000, metadata=_doc("Open sessions at most; more get 503 with Retry-After. None: no limit.")
    )
    max_body_bytes: int = field(default=4 * MiB, metadata=_doc("Largest POST body accepted; larger gets 413."))
    max_header_bytes: int = field(
        default=32 * KiB,
        metadata=_doc("Largest total size of a request's headers (names and values); larger gets 431."),
    )
    body_timeout: float = field(
        default=30.0, metadata=_doc("Seconds a client may take to send a request's body; slower gets 408.")
    )
    keepalive_interval: float = field(
        default=15.0, metadata=_doc("Seconds between SSE keepalive comments on an otherwise silent stream.")
    )
    retry_ms: int = field(
        default=1000, metadata=_doc("The SSE retry field sent to 2025-11-25 clients: how long they wait to reconnect.")
    )
    max_events_per_session: int = field(
        default=10_000, metadata=_doc("Events the log keeps per session for replay; the oldest go first.")
    )
    max_event_bytes_per_session: int = field(
        default=16 * MiB, metadata=_doc("Bytes of event payload the log keeps per session for replay.")
    )
    event_store: str = field(
        default="memory",
        metadata=_doc(
            "Where the event log lives: 'memory' (in the process); 'sqlite:PATH', a SQLite file that "
            "survives a crash of the process (one process per file); or 'redis://HOST:PORT/DB' "
            "(also rediss:// and unix://), a Redis server that survives the process and that several "
            "processes can share. `mcp-sse serve` and `proxy` default to a SQLite file of their own in "
            "the user's state directory (~/.local/state/mcp-sse), so sessions survive a restart; "
            "create_app() defaults to 'memory'."
        ),
    )
    redis: str | None = field(
        default=None,
        metadata=_doc(
            "Serve as one node of a cluster: 'redis://HOST:PORT/DB' is the Redis every node (and worker) "
            "shares. The event log and session state live there (it is the event store), each session is "
            "owned by one node at a time, a request for another node's session is forwarded to it, and a "
            "dead node's sessions are taken over by the next node that needs them (docs/deploy.md)."
        ),
    )
    cluster_address: str | None = field(
        default=None,
        metadata=_doc(
            "With --redis: the URL other nodes reach this one at, for the requests of sessions it owns. "
            "Default: the address it listens on (a wildcard host becomes this machine's name)."
        ),
    )
    spare_processes: int = field(
        default=1,
        metadata=_doc(
            "`serve -- CMD` (a process per session): processes kept started for 2026-07-28 clients, each "
            "ready to become the upstream session of a new set of client capabilities without waiting for "
            "a process to start (one is started with the server)."
        ),
    )
    shutdown_grace: float = field(
        default=10.0,
        metadata=_doc(
            "Seconds a stopping server waits for the calls in progress to finish (their streams already "
            "ended with a retry, so clients resume elsewhere or after the restart) before it answers the "
            "rest with an error. In a cluster its sessions go to other nodes only after that."
        ),
    )
    event_store_max_age: float | None = field(
        default=86_400.0,
        metadata=_doc(
            "Seconds a durable event store (sqlite:, redis://) keeps an event; older ones are purged at "
            "start and periodically (in Redis: a session's keys expire that long after its last write), "
            "so sessions that ended in a crash do not stay. None: no limit (Redis: a day)."
        ),
    )
    slow_consumer_timeout: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds a connected client may stop draining its stream while the server waits for it; "
            "then it is cut off and the event log's bounds apply."
        ),
    )
    auth_token: str | None = field(
        default=None,
        repr=False,  # a secret: never in a log line or a traceback
        metadata={
            **_doc(
                "A shared secret: every request except /healthz and CORS preflights must carry "
                "`Authorization: Bearer <token>`, or is answered 401. For a server that other local "
                "processes or other hosts can reach; compared in constant time, never taken from the URL. "
                "The command line also reads it from MCP_SSE_AUTH_TOKEN (kept out of the process list)."
            ),
            "env": "MCP_SSE_AUTH_TOKEN",
        },
    )
    token_file: str | None = field(
        default=None,
        metadata={
            **_doc(
                "A file of bearer tokens, one `TOKEN PRINCIPAL [SCOPE...]` a line, read again when it "
                "changes: each request must carry one of them, and its session belongs to that principal. "
                "The command line also reads it from MCP_SSE_TOKEN_FILE."
            ),
            "env": "MCP_SSE_TOKEN_FILE",
        },
    )
    jwks_url: str | None = field(
        default=None,
        metadata=_doc(
            "Accept JWT access tokens signed by a key of this JWKS (the authorization server's "
            "jwks_uri), checked for issuer, audience, expiry and not-before."
        ),
    )
    jwt_key: str | None = field(
        default=None, metadata=_doc("Accept JWT access tokens signed by this PEM public key file (instead of a JWKS).")
    )
    issuer: str | None = field(default=None, metadata=_doc("The `iss` a JWT access token must carry."))
    audiences: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "An `aud` a JWT access token may carry (repeatable). Default: the server's resource URL "
            "(--resource-url), as RFC 8707 asks."
        ),
    )
    token_leeway: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds of clock difference allowed when checking a token's expiry and not-before; a "
            "stream opened with a token ends this long after it expires."
        ),
    )
    required_scopes: tuple[str, ...] = field(
        default=(), metadata=_doc("A scope every token must have (repeatable); without it: 403 insufficient_scope.")
    )
    authorization_servers: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "An OAuth authorization server's issuer URL, named in the protected resource metadata "
            "(repeatable; RFC 9728)."
        ),
    )
    resource_url: str | None = field(
        default=None,
        metadata=_doc(
            "The URL clients use to reach the MCP endpoint, as the protected resource metadata's "
            "`resource` and the default JWT audience. Default: from each request's Host and path."
        ),
    )
    requests_per_second_per_caller: float | None = field(
        default=None,
        metadata=_doc(
            "Requests a caller (its principal, else its client address) may make per second, with "
            "bursts of twice that; beyond it: 429 with Retry-After. None: no limit."
        ),
    )
    sessions_per_caller: int | None = field(
        default=None, metadata=_doc("Sessions one caller may hold at once; beyond it: 429. None: no limit.")
    )
    streams_per_caller: int | None = field(
        default=None, metadata=_doc("GET streams one caller may hold open at once; beyond it: 429. None: no limit.")
    )
    dns_rebinding_protection: bool | None = field(
        default=None,
        metadata=_doc("Check Host and Origin. None: on when the request arrived on a loopback address."),
    )
    allowed_hosts: tuple[str, ...] = field(
        default=(), metadata=_doc("Extra Host names (without port) accepted besides the loopback names.")
    )
    allowed_origins: tuple[str, ...] = field(
        default=(), metadata=_doc("Extra Origins (scheme://host[:port]) accepted besides local or same-origin ones.")
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "A proxy (address or CIDR network) whose Forwarded / X-Forwarded-For/Host/Proto headers "
            "are believed (repeatable): they then give the client address (logs, limits), the Host "
            "checked and the resource URL. From any other peer they are ignored."
        ),
    )
    drop_every: int | None = field(
        default=None,
        metadata=_doc("Cut each SSE connection after this many events, to watch clients resume (demos, tests)."),
    )
    retry_after_seconds: int = field(
        default=5, metadata=_doc("The Retry-After value sent with 503 when the session limit is reached.")
    )
    dashboard: bool = field(
        default=False,
        metadata=_doc(
            "Serve a browser page at / (and /dashboard): live sessions, streams, events per second and "
            "replays over EventSource, and a box that calls the server's search tools."
        ),
    )

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError("path must start with /")
        if self.max_header_bytes <= 0:
            raise ValueError("max_header_bytes must be positive")
        if self.token_leeway < 0:
            raise ValueError("token_leeway must not be negative")
        if self.body_timeout <= 0:
            raise ValueError("body_timeout must be positive")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if self.auth_token is not None and not _is_token(self.auth_token):
            raise ValueError("auth_token must be non-empty printable ASCII without spaces")
        if sum(x is not None for x in (self.auth_token, self.token_file, self.jwks_url, self.jwt_key)) > 1:
            raise ValueError("give one of auth_token, token_file, jwks_url and jwt_key")
        if self.session_idle_timeout is not None and self.session_idle_timeout <= 0:
            raise ValueError("session_idle_timeout must be positive or None")
        for name in ("requests_per_second_per_caller", "sessions_per_caller", "streams_per_caller"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy.strip(), strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {proxy!r} is not an address or a CIDR network") from None
        if self.max_sessions is not None and self.max_sessions <= 0:
            raise ValueError("max_sessions must be positive or None")
        if self.spare_processes < 0:
            raise ValueError("spare_processes must not be negative")
        if self.shutdown_grace < 0:
            raise ValueError("shutdown_grace must not be negative")
        if self.keepalive_interval <= 0:
            raise ValueError("keepalive_interval must be positive")
        if self.slow_consumer_timeout <= 0:
            raise ValueError("slow_consumer_timeout must be positive")
        if self.drop_every is not None and self.drop_every <= 0:
            raise ValueError("drop_every must be positive or None")
        if self.max_events_per_session <= 0 or self.max_event_bytes_per_session <= 0:
            raise ValueError("event log bounds must be positive")
        if self.redis is not None:
            scheme, _, rest = self.redis.partition(":")
            if scheme not in REDIS_SCHEMES or not rest.startswith("//"):
                raise ValueError(f"redis must be a 'redis://HOST:PORT/DB' URL, not {self.redis!r}")
            if self.event_store not in ("memory", self.redis):
                raise ValueError("with redis, the event store is that Redis: leave event_store out")
            object.__setattr__(self, "event_store", self.redis)
        if self.cluster_address is not None and not self.cluster_address.startswith(("http://", "https://")):
            raise ValueError(f"cluster_address must be an http:// or https:// URL, not {self.cluster_address!r}")
        kind, _, path = self.event_store.partition(":")
        redis = kind in REDIS_SCHEMES and path.startswith("//")
        if self.event_store != "memory" and not redis and not (kind == "sqlite" and path and path != ":memory:"):
            raise ValueError(
                "event_store must be 'memory', 'sqlite:PATH' (PATH a file) or 'redis://HOST:PORT/DB', "
                f"not {self.event_store!r}"
            )
        if self.event_store_max_age is not None and self.event_store_max_age <= 0:
            raise ValueError("event_store_max_age must be positive or None")


def is_repeatable(config_field: dataclasses.Field[Any]) -> bool:
    """A tuple field: on the command line, an option given once per value."""
    return get_origin(get_type_hints(ServerConfig)[config_field.name]) is tuple


def option_name(config_field: dataclasses.Field[Any]) -> str:
    """The command-line option of a field (``max_sessions`` is ``--max-sessions``; a repeatable one
    is named in the singular: ``--allowed-host A --allowed-host B``), for the CLI and for the
    configuration reference alike."""
    name = config_field.name.replace("_", "-")
    if is_repeatable(config_field):
        name = name.removesuffix("s")
    return f"--{name}"
