"""How a training setting is declared, once: a dataclass field made with ``setting()``.

Its help text, default and allowed values (``min``, ``max``, ``choices``) live on the field;
everything else derives from the declarations: the ``textcls train`` options (app.cli.options),
``validate``, the ``params`` that metadata.json records (``recorded_params``) and the
configuration ``textcls retrain`` trains a candidate with (``config_from_params``). A new
setting is one field in ``training.config.TrainConfig`` or ``training.params.ModelParams``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Choices = Sequence[str] | Callable[[], Sequence[str]]
_KEY = "textcls"


class SettingError(ValueError):
    """A setting has a value it does not allow; the message names the flag."""


@dataclass(frozen=True, kw_only=True)
class Spec:
    """What a field's declaration says beyond its type and default."""

    help: str
    min: float | None = None
    max: float | None = None
    choices: Choices | None = None
    flag: str | None = None  # the option's declaration, e.g. "--verbose/--quiet" (default: --name)
    envvar: str | None = None
    # Recorded in metadata.json's params (a training parameter, not where the data is).
    recorded: bool = True
    # A retrain trains like the serving version with it (off: it depends on the machine).
    reused: bool = True


def setting(default: Any = dataclasses.MISSING, **spec: Any) -> Any:
    """A dataclass field carrying its Spec; a list or tuple default becomes a factory."""
    metadata = {_KEY: Spec(**spec)}
    if isinstance(default, list | tuple):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def group(factory: Callable[[], Any]) -> Any:
    """A field holding a nested settings dataclass (its fields are settings of their own)."""
    return dataclasses.field(default_factory=factory, metadata={_KEY: None})


@dataclass(frozen=True)
class Declared:
    """One leaf setting: its name, the path to it, its resolved type, default and Spec."""

    name: str
    path: tuple[str, ...]
    type: Any
    default: Any
    spec: Spec

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> list[str] | None:
        """The values it may take: its ``choices``, or its Literal type's; None: any."""
        choices = self.spec.choices
        if callable(choices):
            return list(choices())
        if choices is not None:
            return list(choices)
        if typing.get_origin(self.type) is typing.Literal:
            return [str(a) for a in typing.get_args(self.type)]
        return None


def declared(cls: type) -> Iterator[Declared]:
    """Every setting of the dataclass ``cls``, nested groups' included, in declaration order."""
    yield from _walk(cls, ())


def _walk(cls: type, path: tuple[str, ...]) -> Iterator[Declared]:
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        if _KEY not in f.metadata:
            continue
        spec = f.metadata[_KEY]
        if spec is None:
            yield from _walk(type(getattr(instance, f.name)), (*path, f.name))
        else:
            yield Declared(f.name, (*path, f.name), hints[f.name], getattr(instance, f.name), spec)


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def _set(obj: Any, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        obj = getattr(obj, part)
    setattr(obj, path[-1], value)


def check_value(d: Declared, value: Any) -> None:
    """SettingError when ``value`` is outside what ``d`` allows."""
    allowed = d.allowed()
    items = list(value) if isinstance(value, tuple | list) else [value]
    if allowed is not None:
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise SettingError(
                f"unknown {d.option} {unknown[0]!r}; use one of {', '.join(allowed)}"
            )
        if len(set(items)) < len(items):
            shown = ",".join(map(str, items))
            raise SettingError(f"{d.option} {shown!r} names a value twice")
    if isinstance(value, bool) or not isinstance(value, int | float):
        values = list(value) if isinstance(value, tuple | list) else []
    else:
        values = [value]
    for v in values:
        if d.spec.min is not None and v < d.spec.min:
            raise SettingError(f"{d.option} {value!r} is below its minimum {d.spec.min:g}")
        if d.spec.max is not None and v > d.spec.max:
            raise SettingError(f"{d.option} {value!r} is above its maximum {d.spec.max:g}")


def validate(cfg: Any) -> None:
    """Check every declared setting of ``cfg`` against its declaration, then the rules
    between settings (``cfg.check()``, when its class has one)."""
    for d in declared(type(cfg)):
        check_value(d, _get(cfg, d.path))
    between = getattr(cfg, "check", None)
    if callable(between):
        between()


def from_values(cls: type, values: Mapping[str, Any]) -> Any:
    """A ``cls`` with the settings named in ``values`` (by field name) set; others default."""
    cfg = cls()
    settings = list(declared(cls))
    unknown = set(values) - {d.name for d in settings}
    if unknown:
        raise TypeError(f"{cls.__name__} has no setting {', '.join(sorted(unknown))}")
    for d in settings:
        if d.name in values:
            _set(cfg, d.path, _typed(d, values[d.name]))
    return cfg


def _typed(d: Declared, value: Any) -> Any:
    """A value read back from JSON as the field holds it (lists to tuples)."""
    return tuple(value) if isinstance(d.default, tuple) and isinstance(value, list) else value


def recorded_params(cfg: Any) -> dict[str, Any]:
    """The recorded settings of ``cfg`` by name, JSON-ready (tuples as lists)."""
    out: dict[str, Any] = {}
    for d in declared(type(cfg)):
        if d.spec.recorded:
            value = _get(cfg, d.path)
            out[d.name] = list(value) if isinstance(value, tuple) else value
    return out


def config_from_params(cls: type, params: Mapping[str, Any], **run: Any) -> Any:
    """A ``cls`` that trains like a version whose metadata.json recorded ``params``: every
    recorded, reused setting found there is copied; ``run`` sets the rest by name."""
    reused = {
        d.name: params[d.name]
        for d in declared(cls)
        if d.spec.recorded and d.spec.reused and d.name in params
    }
    return from_values(cls, {**reused, **run})
