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
from mcp_sse.cli.runner import implementations, serve, url_for


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
    if served is not None and port != 0 and source is click.core.ParameterSource.DEFAULT:
        # Sessions that survive a restart, by default (docs/durability.md); --event-store memory opts
        # out. Port 0 picks a new address each time, where no client could come back: memory.
        from mcp_sse.cli.state_files import default_event_store

        options["config_event_store"] = default_event_store(served, host, port)
    log_format = options.pop("log_format")
    cfg = config_from(options)
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


def _transport_option(fn: Any) -> Any:
    return click.option(
        "--transport",
        type=click.Choice(["auto", "streamable-http", "sse"]),
        default="auto",
        show_default=True,
        help="Which HTTP transport; auto probes Streamable HTTP and falls back to HTTP+SSE.",
    )(fn)


def _client_options(fn: Any) -> Any:
    fn = _header_options(fn)
    fn = _transport_option(fn)
    fn = click.option(
        "--retry-budget", default=30.0, show_default=True, help="Seconds to keep reconnecting before giving up."
    )(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(fn)
    return fn


def _client_command(run: Any, *args: Any) -> None:
    """Run a client command; any failure becomes one line on stderr and a non-zero exit."""
    from mcp.shared.exceptions import MCPError

    from mcp_sse.cli.client_commands import CommandFailed

    try:
        code = run(*args)
    except Exception as exc:
        leaves = _leaves(exc)
        failed = [e for e in leaves if isinstance(e, CommandFailed | MCPError)]
        if failed:
            reason = failed[0].error.message if isinstance(failed[0], MCPError) else str(failed[0])
            click.echo(f"error: {reason}", err=True)
            sys.exit(1)
        click.echo("error: " + "; ".join(f"{type(e).__name__}: {e}" for e in leaves), err=True)
        sys.exit(2)
    sys.exit(code)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (possibly nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


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
    _client_command(
        run_call, url, tool, pairs, options["as_json"], headers, options["transport"], options["retry_budget"]
    )


@main.command("tools")
@click.argument("url")
@_client_options
def tools_command(url: str, header: tuple[str, ...], bearer: str | None, **options: Any) -> None:
    """List the tools of the MCP server at URL."""
    from mcp_sse.cli.client_commands import parse_headers, run_tools

    headers = parse_headers(header, bearer)
    _client_command(run_tools, url, options["as_json"], headers, options["transport"], options["retry_budget"])


@main.command("connect")
@click.argument("url")
@_header_options
@_transport_option
@click.option("--retry-budget", default=300.0, show_default=True, help="Seconds to keep reconnecting a stream.")
@click.option("--log-level", default="warning", show_default=True, help="Log level (logs go to stderr).")
def connect_command(
    url: str, header: tuple[str, ...], bearer: str | None, transport: str, retry_budget: float, log_level: str
) -> None:
    """Bring the remote MCP server at URL to a host that only speaks stdio."""
    import anyio

    from mcp_sse.cli.bridge import bridge
    from mcp_sse.cli.client_commands import parse_headers
    from mcp_sse.client.connect import Transport
    from mcp_sse.client.policy import ReconnectPolicy
    from mcp_sse.logs import configure

    configure(log_level, "text")  # logs go to stderr: stdout carries the protocol
    headers = parse_headers(header, bearer)
    anyio.run(bridge, url, headers, cast(Transport, transport), ReconnectPolicy(budget=retry_budget))


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
@_server_options
def proxy_command(
    url: str,
    header: tuple[str, ...],
    bearer: str | None,
    transport: str,
    principal_header: str | None,
    host: str,
    port: int,
    log_level: str,
    **config: Any,
) -> None:
    """Front the HTTP MCP server at URL: resumable streams, both transports, Host/Origin checks."""
    from mcp_sse.cli.client_commands import parse_headers
    from mcp_sse.client.connect import Transport
    from mcp_sse.upstream.remote import HTTPUpstream

    upstream = HTTPUpstream(
        url,
        headers=parse_headers(header, bearer),
        transport=cast(Transport, transport),
        principal_header=principal_header,
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
