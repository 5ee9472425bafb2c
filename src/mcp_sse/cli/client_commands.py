"""``mcp-sse call`` and ``mcp-sse tools``: our client transport, for a person at a terminal.

Progress goes to a progress bar and logs to lines on stderr, so stdout holds only the result.
A failure is one line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import click
import mcp_types as types
from mcp import Client
from mcp.shared.exceptions import MCPError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mcp_sse.cli.login import LoginOptions, auth_for
from mcp_sse.client import ClientStats, ReconnectPolicy, connect

stderr = Console(stderr=True, soft_wrap=True)  # never hard-wrap lines someone may pipe or grep


class CommandFailed(Exception):
    """A one-line reason to exit non-zero."""


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_headers(header: tuple[str, ...], bearer: str | None) -> dict[str, str]:
    """``--header NAME:VALUE`` (each ``${VAR}`` in a value replaced by that environment variable,
    so a secret stays out of a host's config file) and ``--bearer``."""
    headers: dict[str, str] = {}
    for item in header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME: VALUE", param_hint="--header")
        headers[name.strip()] = _ENV_REFERENCE.sub(_from_environment, value.strip())
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return headers


def _from_environment(reference: re.Match[str]) -> str:
    value = os.environ.get(reference.group(1))
    if value is None:
        raise click.BadParameter(f"the environment variable {reference.group(1)} is not set", param_hint="--header")
    return value


def coerce_arguments(pairs: tuple[str, ...], schema: dict[str, Any] | None) -> dict[str, Any]:
    """``key=value`` pairs typed by the tool's input schema (JSON when the schema does not say)."""
    properties = (schema or {}).get("properties") or {}
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CommandFailed(f"--arg {pair!r} is not key=value")
        kind = (properties.get(key) or {}).get("type")
        arguments[key] = _coerce(key, raw, kind)
    return arguments


def _coerce(key: str, raw: str, kind: Any) -> Any:
    try:
        if kind == "string":
            return raw
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind == "boolean":
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        return json.loads(raw)
    except ValueError:
        if kind in (None, "object", "array") and kind is None:
            return raw
        raise CommandFailed(f"--arg {key}={raw!r} is not a valid {kind}") from None


async def _with_client(
    url: str,
    headers: dict[str, str],
    transport: str,
    budget: float,
    body: Callable[[Client, ClientStats], Awaitable[int]],
    login: LoginOptions | None = None,
) -> int:
    stats = ClientStats(on_resumed=_say_resumed)
    policy = ReconnectPolicy(budget=budget)

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        data = params.data if isinstance(params.data, str) else json.dumps(params.data)
        stderr.print(f"[dim]{params.level}[/dim] {escape(data)}", highlight=False, markup=True)

    auth = await auth_for(url, headers, login)
    started = False

    async def attempt(mode: str) -> int:
        nonlocal started
        streams = connect(url, headers=headers, transport=transport, policy=policy, stats=stats, auth=auth)  # type: ignore[arg-type]
        async with Client(streams, logging_callback=on_log, log_level="debug", mode=mode) as client:
            started = True
            return await body(client, stats)

    try:
        # A session first: its streams resume after a drop, where a broken 2026-07-28 request is
        # lost. A server that refuses the handshake (one that speaks only the stateless era) gets
        # the SDK's Client in auto mode, which asks for that era (server/discover).
        try:
            return await attempt("legacy")
        except Exception as exc:  # the SDK's task groups may wrap the refusal in a group
            if started or not any(isinstance(leaf, MCPError) for leaf in leaves(exc)):
                raise
        return await attempt("auto")
    except MCPError as exc:
        raise CommandFailed(str(exc.error.message)) from None


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``, however deeply grouped (the SDK's task groups wrap them)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def run_call(
    url: str,
    tool: str,
    pairs: tuple[str, ...],
    as_json: bool,
    headers: dict[str, str],
    transport: str,
    budget: float,
    login: LoginOptions | None = None,
) -> int:
    async def body(client: Client, stats: ClientStats) -> int:
        listed = await client.list_tools()
        match = next((t for t in listed.tools if t.name == tool), None)
        if match is None:
            names = ", ".join(t.name for t in listed.tools) or "none"
            raise CommandFailed(f"the server has no tool {tool!r} (it has: {names})")
        arguments = coerce_arguments(pairs, match.input_schema)
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=stderr, transient=False) as bar:
            task = bar.add_task(tool, total=None)

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                bar.update(task, completed=progress, total=total, description=message or tool)

            result = await client.call_tool(tool, arguments, progress_callback=on_progress)
        if stats.resumes or stats.reinitializations:
            stderr.print(
                f"reconnected {stats.reconnects} time(s), resumed {stats.resumes} time(s), {stats.lost} event(s) "
                f"lost, {stats.duplicates_dropped} duplicate(s) dropped, {stats.reinitializations} new session(s)",
                highlight=False,
            )
        if as_json:
            click.echo(result.model_dump_json(by_alias=True, exclude_none=True))
        else:
            for item in result.content:
                click.echo(item.text if isinstance(item, types.TextContent) else item.model_dump_json(by_alias=True))
        if result.is_error:
            raise CommandFailed(_first_text(result) or "the tool reported an error")
        return 0

    return anyio.run(_with_client, url, headers, transport, budget, body, login)


def run_tools(
    url: str, as_json: bool, headers: dict[str, str], transport: str, budget: float, login: LoginOptions | None = None
) -> int:
    async def body(client: Client, stats: ClientStats) -> int:
        listed = await client.list_tools()
        if as_json:
            click.echo(listed.model_dump_json(by_alias=True, exclude_none=True))
            return 0
        for tool in listed.tools:
            params = ", ".join((tool.input_schema.get("properties") or {}).keys())
            click.echo(f"{tool.name}({params})" + (f"  {tool.description.splitlines()[0]}" if tool.description else ""))
        return 0

    return anyio.run(_with_client, url, headers, transport, budget, body, login)


def run_login(url: str, headers: dict[str, str], transport: str, login: LoginOptions) -> int:
    async def body(client: Client, stats: ClientStats) -> int:
        stderr.print(f"logged in to {url}", highlight=False)
        return 0

    return anyio.run(_with_client, url, headers, transport, 30.0, body, login)


def _say_resumed(after_event_id: str, lost: int) -> None:
    stderr.print(f"[yellow]resumed after event {after_event_id}, {lost} lost[/yellow]", highlight=False)


def _first_text(result: types.CallToolResult) -> str | None:
    for item in result.content:
        if isinstance(item, types.TextContent):
            return item.text
    return None
