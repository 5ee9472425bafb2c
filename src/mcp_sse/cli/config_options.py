"""Click options generated from ``ServerConfig``: the CLI maps onto the config one to one, so a field
added to the config is an option of every server command (``serve``, ``proxy``, ``demo``) at once."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin, get_type_hints

import click

from mcp_sse.config import ServerConfig, is_repeatable, option_name

F = Callable[..., Any]


def _hint(field: dataclasses.Field[Any]) -> Any:
    return get_type_hints(ServerConfig)[field.name]


def _base(hint: Any) -> tuple[Any, bool]:
    """The non-None type of a hint and whether None is allowed."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


class _OptionalNumber(click.ParamType[Any]):
    """A number, or ``none`` to switch the limit off."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = f"{kind.__name__}|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, self.kind):
            return value
        if str(value).lower() == "none":
            return None
        try:
            return self.kind(value)
        except ValueError:
            self.fail(f"{value!r} is not a {self.kind.__name__} or 'none'", param, ctx)


def config_options(fn: F) -> F:
    """Add one option per ``ServerConfig`` field; the command receives them as ``config_<field>``."""
    for field in reversed(dataclasses.fields(ServerConfig)):
        doc = field.metadata.get("doc", "")
        default = field.default
        base, nullable = _base(_hint(field))
        dest = f"config_{field.name}"
        env = field.metadata.get("env")
        if is_repeatable(field):
            opt = click.option(option_name(field), dest, multiple=True, help=doc + " (repeatable)")
        elif base is bool and nullable:
            flag = field.name.replace("_", "-")
            opt = click.option(f"--{flag}/--no-{flag}", dest, default=None, help=doc)
        elif base is bool:
            opt = click.option(option_name(field), dest, is_flag=True, default=default, help=doc)
        elif env is not None:  # a secret: from the environment, never shown
            opt = click.option(option_name(field), dest, type=base, default=default, envvar=env, help=doc)
        elif nullable:
            kind = _OptionalNumber(base)
            opt = click.option(option_name(field), dest, type=kind, default=default, show_default=True, help=doc)
        else:
            opt = click.option(option_name(field), dest, type=base, default=default, show_default=True, help=doc)
        fn = opt(fn)
    return fn


def config_from(options: dict[str, Any]) -> ServerConfig:
    """Build the config from the generated options (and drop them from ``options``)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(ServerConfig):
        value = options.pop(f"config_{field.name}")
        values[field.name] = tuple(value) if is_repeatable(field) else value
    try:
        return ServerConfig(**values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
