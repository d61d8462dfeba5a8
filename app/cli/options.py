"""Typer options made from declared settings (training.settings): one option per setting,
with its help text, default, range and environment variable, so a new setting needs no edit
here or in the command."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from training.settings import Declared, declared


def _is_list(d: Declared) -> bool:
    return isinstance(d.default, tuple | list)


def _option_type(d: Declared) -> Any:
    """What the option parses: lists as comma-separated text, Literal choices as text, a
    path as text (a Path would turn the URL s3://bucket into s3:/bucket)."""
    if _is_list(d) or typing.get_origin(d.type) is typing.Literal or d.type is Path:
        return str
    return d.type


def _default(d: Declared) -> Any:
    return ",".join(map(str, d.default)) if _is_list(d) else d.default


def parameter(d: Declared) -> inspect.Parameter:
    """The keyword parameter Typer turns into ``d``'s option."""
    numeric = d.type in (int, float)
    option = typer.Option(
        *([d.spec.flag] if d.spec.flag else []),
        help=d.spec.help,
        envvar=d.spec.envvar,
        min=d.spec.min if numeric else None,
        max=d.spec.max if numeric else None,
    )
    annotation = Annotated[_option_type(d), option]  # type: ignore[valid-type]
    return inspect.Parameter(
        d.name, inspect.Parameter.KEYWORD_ONLY, default=_default(d), annotation=annotation
    )


def parse_list(d: Declared, value: Any) -> tuple[Any, ...]:
    """A comma-separated option back to the values its setting holds (its default's type:
    integers, or names)."""
    kind = type(d.default[0]) if d.default else str
    try:
        items = tuple(kind(v.strip()) for v in str(value).split(",") if v.strip())
    except ValueError:
        items = ()
    if not items:
        what = "integers" if kind is int else "names"
        raise typer.BadParameter(f"{d.option}: expected comma-separated {what}, got {value!r}")
    return items


def values_of(settings: type, given: dict[str, Any]) -> dict[str, Any]:
    """The command's keyword values as the settings hold them (lists parsed)."""
    out = dict(given)
    for d in declared(settings):
        if _is_list(d) and d.name in out:
            out[d.name] = parse_list(d, out[d.name])
        elif d.type is Path and out.get(d.name) is not None:
            out[d.name] = Path(out[d.name])
    return out


def with_settings(
    settings: type, command: Callable[..., None], extra: Sequence[inspect.Parameter] = ()
) -> Callable[..., None]:
    """``command`` (called with every setting by name) with one option per setting of
    ``settings`` (and ``extra``), as Typer reads a signature."""
    params = [parameter(d) for d in declared(settings)] + list(extra)

    def run(**values: Any) -> None:
        command(**values)

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    run.__doc__ = command.__doc__
    run.__name__ = command.__name__
    return run
