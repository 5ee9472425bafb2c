"""``mcp-sse``: serve an MCP server over every HTTP era, or run the demo."""

from __future__ import annotations

import json
import logging
import socket
import sys
import tempfile
from typing import Any, cast

import click

from mcp_sse.cli.config_options import config_from, config_options
from mcp_sse.cli.loader import LoadError, load_target
from mcp_sse.cli.runner import implementations, is_worker, serve, serve_workers, url_for


@click.group()
@click.version_option(package_name="mcp-sse")
def main() -> None:
    """mcp-sse: the MCP HTTP transport with resumable SSE streams."""


def _server_options(fn: Any) -> Any:
    fn = config_options(fn)
    fn = click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")(fn)
    fn = click.option("--port", default=8000, show_default=True, type=int, help="Port; 0 picks a free one.")(fn)
    fn = click.option("--log-level", default="warning", show_default=True, help="Log level.")(fn)
    fn = click.option(
        "--workers",
        default=1,
        show_default=True,
        type=click.IntRange(min=1),
        help="Worker processes on one port; above 1, each is a node of the --redis cluster.",
    )(fn)
    fn = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json: one object per line, with session and request ids as fields.",
    )(fn)
    return fn


def _announce(path: str, title: str, extra: Any = None, dashboard: bool = False, store: str = "memory") -> Any:
    def on_ready(sock: socket.socket) -> None:
        url = url_for(sock, path)
        base = url.rsplit(path, 1)[0]
        loop, parser = implementations()
        click.echo(f"{title} listening ({loop} event loop, {parser} parser)")
        click.echo(f"  Streamable HTTP: {url}")
        click.echo(f"  HTTP+SSE:        {base}/sse")
        if dashboard:
            click.echo(f"  Browser page:    {base}/dashboard")
        click.echo(f"  Event log:       {store}")
        sys.stdout.flush()
        if extra is not None:
            extra(url)

    return on_ready


def _run(
    server: Any,
    host: str,
    port: int,
    log_level: str,
    title: str,
    on_ready_extra: Any = None,
    served: str | None = None,
    **options: Any,
) -> None:
    from mcp_sse.addresses import is_loopback_address
    from mcp_sse.logs import configure
    from mcp_sse.server.app import create_app

    source = click.get_current_context().get_parameter_source("config_event_store")
    clustered = options.get("config_redis") is not None
    if served is not None and port != 0 and source is click.core.ParameterSource.DEFAULT and not clustered:
        # Sessions that survive a restart, by default (docs/durability.md); --event-store memory opts
        # out. Port 0 picks a new address each time, where no client could come back: memory.
        from mcp_sse.cli.state_files import default_event_store

        options["config_event_store"] = default_event_store(served, host, port)
    log_format = options.pop("log_format")
    workers = options.pop("workers")
    cfg = config_from(options)
    if workers > 1 and not is_worker():
        if cfg.redis is None and not cfg.modern_only:
            raise click.UsageError(
                f"--workers {workers} needs --redis redis://HOST:PORT/DB: a session lives in one worker, and "
                'the others must find it (docs/deploy.md, "A cluster"); or serve only the stateless era '
                "with --modern-only"
            )
        configure(log_level, log_format)
        announce = _announce(cfg.path, f"{title} ({workers} workers)", on_ready_extra, cfg.dashboard, cfg.event_store)
        serve_workers(workers, host, port, on_ready=announce)
        return
    app = create_app(server, cfg)
    # After the server is built: MCPServer() installs its own root handler at INFO; ours replaces it.
    configure(log_level, log_format)
    if app.authenticator is None and not is_loopback_address(host):
        logging.getLogger("mcp_sse").warning(
            "listening on %s without --auth-token, --token-file or --jwks-url/--jwt-key: anyone who "
            "can reach this address can use the server",
            host,
        )
    serve(
        app,
        host,
        port,
        on_ready=_announce(cfg.path, title, on_ready_extra, cfg.dashboard, cfg.event_store),
        log_level=log_level,
        log_config=None,
    )


@main.command("serve", context_settings={"allow_interspersed_args": False})
@click.option("--app", "app_spec", default=None, help="FILE.py:ATTR or module:ATTR naming an mcp server (in-process).")
@click.option("--shared", is_flag=True, help="With a command: one server process for all sessions (ids remapped).")
@click.option("--env", "env_pairs", multiple=True, help="With a command: K=V added to its environment (repeatable).")
@click.option("--cwd", default=None, help="With a command: its working directory.")
@_server_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def serve_command(
    app_spec: str | None,
    shared: bool,
    env_pairs: tuple[str, ...],
    cwd: str | None,
    command: tuple[str, ...],
    host: str,
    port: int,
    log_level: str,
    **config: Any,
) -> None:
    """Serve an MCP server over Streamable HTTP and HTTP+SSE.

    Either an official-SDK server in-process (--app), or any stdio MCP server given as a command
    after --, e.g. ``mcp-sse serve -- npx -y @modelcontextprotocol/server-everything``.
    """
    if (app_spec is None) == (not command):
        raise click.UsageError("give either --app FILE.py:ATTR or a stdio server command after --")
    if app_spec is not None:
        try:
            server: Any = load_target(app_spec)
        except LoadError as exc:
            raise click.ClickException(str(exc)) from None
        title = f"mcp-sse serving {app_spec}"
    else:
        from mcp_sse.upstream.stdio import SharedStdioUpstream, StdioUpstream, stdio_command

        env: dict[str, str] = {}
        for pair in env_pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{pair!r} is not K=V", param_hint="--env")
            env[key] = value
        stdio = stdio_command(command, env, cwd)
        server = SharedStdioUpstream(stdio) if shared else StdioUpstream(stdio)
        title = f"mcp-sse serving `{stdio}`" + (" (one shared process)" if shared else " (one process per session)")
    _run(server, host, port, log_level, title, served=app_spec or " ".join(command), **config)


@main.command("demo")
@click.option("--root", type=click.Path(exists=True, file_okay=False), default=None, help="Folder to search.")
@click.option("--scan-delay-ms", default=5.0, show_default=True, help="Pause per scanned file, to watch progress.")
@_server_options
def demo_command(root: str | None, scan_delay_ms: float, host: str, port: int, log_level: str, **options: Any) -> None:
    """Search docs and code over resumable streams: progress and matches arrive as they are found."""
    from pathlib import Path

    from mcp_sse.demo.server import build_demo_server

    server = build_demo_server(Path(root) if root else None, scan_delay_ms)
    options["config_dashboard"] = True  # the demo always has its browser page
    source = click.get_current_context().get_parameter_source("config_event_store")
    with tempfile.TemporaryDirectory(prefix="mcp-sse-demo-") as scratch:
        if source is click.core.ParameterSource.DEFAULT:
            # The most durable store we have, run as a deployment would; the file goes with the demo.
            options["config_event_store"] = f"sqlite:{Path(scratch) / 'events.db'}"
        _run(server, host, port, log_level, "mcp-sse demo", on_ready_extra=_demo_help, **options)


def _demo_help(url: str) -> None:
    click.echo("")
    click.echo("Try it (progress bar, matches as they are found, then the ranked result):")
    click.echo(f"  mcp-sse call {url} search_docs --arg query='resume Last-Event-ID'")
    click.echo(f"  mcp-sse call {url} search_code --arg query=ReplayGap --arg limit=5")
    click.echo("Watch a dropped stream resume with nothing lost: restart with --drop-every 50.")
    click.echo("")
    click.echo("Hosts that speak HTTP (e.g. VS Code .vscode/mcp.json):")
    click.echo("  " + json.dumps({"servers": {"mcp-sse-demo": {"type": "http", "url": url}}}))
    click.echo("Hosts that only speak stdio (e.g. Claude Desktop claude_desktop_config.json):")
    click.echo("  " + json.dumps({"mcpServers": {"mcp-sse-demo": {"command": "mcp-sse", "args": ["connect", url]}}}))
    sys.stdout.flush()


def _header_options(fn: Any) -> Any:
    """--header and --bearer: what every command that speaks to a server sends with each request."""
    fn = click.option("--header", "header", multiple=True, help="Extra request header NAME: VALUE (repeatable).")(fn)
    return click.option("--bearer", default=None, help="Send Authorization: Bearer TOKEN.")(fn)


def _login_options(fn: Any) -> Any:
    """OAuth login (cli/login.py): on by default, off with --no-oauth or a static Authorization."""
    options = [
        click.option("--oauth/--no-oauth", "oauth", default=True, help="Log in with OAuth when the server asks (401)."),
        click.option("--scope", default=None, help="OAuth scopes to ask for, beside those the server names."),
        click.option("--client-id", default=None, help="A client registered with the authorization server."),
        click.option(
            "--client-secret",
            default=None,
            envvar="MCP_SSE_CLIENT_SECRET",
            help="Its secret (or MCP_SSE_CLIENT_SECRET).",
        ),
        click.option("--client-metadata-url", default=None, help="HTTPS URL of this client's metadata document."),
        click.option("--callback-port", type=int, default=None, help="Loopback port for the login's redirect."),
        click.option(
            "--grant",
            type=click.Choice(["authorization_code", "client_credentials"]),
            default="authorization_code",
            show_default=True,
            help="client_credentials: a machine's login, no browser (--client-id, --client-secret or --client-key).",
        ),
        click.option(
            "--client-key",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="PEM key (private_key_jwt).",
        ),
        click.option("--client-key-algorithm", default="ES256", show_default=True, help="The key's JWS algorithm."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _login_from(options: dict[str, Any]) -> Any:
    """The LoginOptions the command line gave (None: OAuth is off); takes the options it reads."""
    from pathlib import Path

    from mcp_sse.cli.login import LoginOptions

    enabled = options.pop("oauth")
    login = LoginOptions(
        scope=options.pop("scope"),
        client_id=options.pop("client_id"),
        client_secret=options.pop("client_secret"),
        client_metadata_url=options.pop("client_metadata_url"),
        callback_port=options.pop("callback_port"),
        grant=options.pop("grant"),
        client_key=Path(key) if (key := options.pop("client_key")) else None,
        client_key_algorithm=options.pop("client_key_algorithm"),
    )
    return login if enabled else None


def _transport_option(fn: Any) -> Any:
    return click.option(
        "--transport",
        type=click.Choice(["auto", "streamable-http", "sse"]),
        default="auto",
        show_default=True,
        help="Which HTTP transport; auto probes Streamable HTTP and falls back to HTTP+SSE.",
    )(fn)


def _upstream_era_option(fn: Any) -> Any:
    return click.option(
        "--upstream-era",
        type=click.Choice(["auto", "sessions", "stateless"]),
        default="auto",
        show_default=True,
        help="What the upstream speaks: auto asks it once; stateless bridges session clients to a 2026-07-28-only "
        "server.",
    )(fn)


def _client_options(fn: Any) -> Any:
    fn = _header_options(fn)
    fn = _login_options(fn)
    fn = _transport_option(fn)
    fn = click.option(
        "--retry-budget", default=30.0, show_default=True, help="Seconds to keep reconnecting before giving up."
    )(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(fn)
    return fn


def _client_command(run: Any, *args: Any) -> None:
    """Run a client command; any failure becomes one line on stderr and a non-zero exit."""
    from mcp.shared.exceptions import MCPError

    from mcp_sse.cli.client_commands import CommandFailed, leaves

    try:
        code = run(*args)
    except Exception as exc:
        inner = leaves(exc)
        failed = [e for e in inner if isinstance(e, CommandFailed | MCPError)]
        if failed:
            reason = failed[0].error.message if isinstance(failed[0], MCPError) else str(failed[0])
            click.echo(f"error: {reason}", err=True)
            sys.exit(1)
        click.echo("error: " + "; ".join(f"{type(e).__name__}: {e}" for e in inner), err=True)
        sys.exit(2)
    sys.exit(code)


@main.command("call")
@click.argument("url")
@click.argument("tool")
@click.option("--arg", "pairs", multiple=True, help="A tool argument key=value (repeatable); typed by the schema.")
@_client_options
def call_command(
    url: str, tool: str, pairs: tuple[str, ...], header: tuple[str, ...], bearer: str | None, **options: Any
) -> None:
    """Call TOOL on the MCP server at URL, showing progress and logs as they stream."""
    from mcp_sse.cli.client_commands import parse_headers, run_call

    headers = parse_headers(header, bearer)
    login = _login_from(options)
    _client_command(
        run_call, url, tool, pairs, options["as_json"], headers, options["transport"], options["retry_budget"], login
    )


@main.command("tools")
@click.argument("url")
@_client_options
def tools_command(url: str, header: tuple[str, ...], bearer: str | None, **options: Any) -> None:
    """List the tools of the MCP server at URL."""
    from mcp_sse.cli.client_commands import parse_headers, run_tools

    headers = parse_headers(header, bearer)
    login = _login_from(options)
    _client_command(run_tools, url, options["as_json"], headers, options["transport"], options["retry_budget"], login)


@main.command("connect")
@click.argument("url")
@_header_options
@_login_options
@_transport_option
@_upstream_era_option
@click.option("--retry-budget", default=300.0, show_default=True, help="Seconds to keep reconnecting a stream.")
@click.option("--log-level", default="warning", show_default=True, help="Log level (logs go to stderr).")
def connect_command(
    url: str,
    header: tuple[str, ...],
    bearer: str | None,
    transport: str,
    upstream_era: str,
    retry_budget: float,
    log_level: str,
    **login_options: Any,
) -> None:
    """Bring the remote MCP server at URL to a host that only speaks stdio."""
    import anyio

    from mcp_sse.cli.bridge import UpstreamEra, bridge
    from mcp_sse.cli.client_commands import parse_headers
    from mcp_sse.client.connect import Transport
    from mcp_sse.client.policy import ReconnectPolicy
    from mcp_sse.logs import configure

    configure(log_level, "text")  # logs go to stderr: stdout carries the protocol
    headers = parse_headers(header, bearer)
    login = _login_from(login_options)
    policy = ReconnectPolicy(budget=retry_budget)
    era = cast(UpstreamEra, upstream_era)
    anyio.run(bridge, url, headers, cast(Transport, transport), policy, login, era)


@main.command("proxy")
@click.argument("url")
@_header_options
@_transport_option
@click.option(
    "--principal-header",
    default=None,
    metavar="NAME",
    help="Send each session's authenticated principal upstream in this header (for an upstream that trusts us).",
)
@_upstream_era_option
@_server_options
def proxy_command(
    url: str,
    header: tuple[str, ...],
    bearer: str | None,
    transport: str,
    principal_header: str | None,
    upstream_era: str,
    host: str,
    port: int,
    log_level: str,
    **config: Any,
) -> None:
    """Front the HTTP MCP server at URL: resumable streams, both transports, Host/Origin checks."""
    from mcp_sse.cli.client_commands import parse_headers
    from mcp_sse.client.connect import Transport
    from mcp_sse.upstream.remote import HTTPUpstream, UpstreamEra

    upstream = HTTPUpstream(
        url,
        headers=parse_headers(header, bearer),
        transport=cast(Transport, transport),
        principal_header=principal_header,
        era=cast(UpstreamEra, upstream_era),
    )
    _run(upstream, host, port, log_level, f"mcp-sse proxying {url}", served=url, **config)


@main.command("bench", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench_command(args: tuple[str, ...]) -> None:
    """Run every benchmark beside the official SDK (bench/all.py; --quick, --only, --json)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    if not (root / "bench" / "all.py").is_file():
        raise click.ClickException(
            "the benchmarks run from a source checkout of mcp-sse (bench/ is not installed with the package)"
        )
    sys.exit(subprocess.run([sys.executable, "-m", "bench.all", *args], cwd=root, check=False).returncode)


@main.group("auth")
def auth_group() -> None:
    """The OAuth logins kept for connect, call and tools (one per server URL, files mode 0600)."""


@auth_group.command("list")
def auth_list_command() -> None:
    """Show the logins kept: server, scope, when the access token expires, whether it refreshes."""
    import time

    from rich.console import Console
    from rich.table import Table

    from mcp_sse.cli.token_store import auth_dir, list_logins

    logins = list_logins()
    if not logins:
        click.echo(f"no logins kept (in {auth_dir()})")
        return
    table = Table(title=f"logins in {auth_dir()}")
    for column in ("server", "scope", "access token", "refresh", "client"):
        table.add_column(column, overflow="fold")
    for login in logins:
        if login.expires_at is None:
            expiry = "no expiry given"
        elif login.expires_at < time.time():
            expiry = "expired"
        else:
            expiry = f"expires in {int(login.expires_at - time.time())} s"
        table.add_row(
            login.server_url, login.scope or "", expiry, "yes" if login.refreshable else "no", login.client_id or ""
        )
    Console(soft_wrap=True).print(table)


@auth_group.command("logout")
@click.argument("url")
def auth_logout_command(url: str) -> None:
    """Forget the login kept for URL (its tokens and client registration)."""
    from mcp_sse.cli.token_store import forget

    if not forget(url):
        raise click.ClickException(f"no login kept for {url} (see: mcp-sse auth list)")
    click.echo(f"forgot the login for {url}")


@auth_group.command("login")
@click.argument("url")
@_header_options
@_login_options
@_transport_option
def auth_login_command(
    url: str, header: tuple[str, ...], bearer: str | None, transport: str, **login_options: Any
) -> None:
    """Log in to the MCP server at URL now (connect, call and tools then reuse the login)."""
    from mcp_sse.cli.client_commands import parse_headers, run_login

    login = _login_from(login_options)
    if login is None:
        raise click.ClickException("auth login with --no-oauth does nothing")
    _client_command(run_login, url, parse_headers(header, bearer), transport, login)


@main.command("doctor")
@click.argument("url")
@_header_options
@click.option(
    "--stream-wait",
    default=20.0,
    show_default=True,
    help="Seconds to wait for a first event before calling it buffered.",
)
@click.option("--idle-seconds", default=0.0, show_default=True, help="Hold an idle stream this long (0: skip).")
def doctor_command(
    url: str, header: tuple[str, ...], bearer: str | None, stream_wait: float, idle_seconds: float
) -> None:
    """Probe the MCP deployment at URL and print a checklist with fixes; non-zero exit when broken."""
    import anyio
    from rich.console import Console
    from rich.table import Table

    from mcp_sse.cli.client_commands import parse_headers
    from mcp_sse.doctor import diagnose

    report = anyio.run(
        lambda: diagnose(url, headers=parse_headers(header, bearer), stream_wait=stream_wait, idle_seconds=idle_seconds)
    )
    colours = {"OK": "green", "INFO": "cyan", "WARN": "yellow", "FAIL": "red"}
    table = Table(title=f"mcp-sse doctor {url}", show_lines=False)
    for column in ("check", "status", "finding", "fix"):
        table.add_column(column, overflow="fold")
    for finding in report.findings:
        status = f"[{colours[finding.status]}]{finding.status}[/]"
        table.add_row(finding.check, status, finding.detail, finding.fix)
    Console(soft_wrap=True).print(table)
    sys.exit(1 if report.failed else 0)
