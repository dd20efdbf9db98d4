"""Typed, frozen configuration helpers shared by scenarios, worlds and trainers.

Every config in the project is a frozen dataclass whose fields carry a docstring-like
``metadata={"help": ...}``. ``build_config`` turns a plain mapping (from Python keyword
arguments, a TOML/YAML file or the CLI) into such a dataclass: an unknown key is an error that
lists the valid keys, and string values from the command line are coerced to the field's type.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is invalid."""


def field(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse wording
    """A dataclass field with a help text, used by the CLI and the docs."""
    return dataclasses.field(default=default, metadata={"help": help})


def field_help(cls: type, name: str) -> str:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get("help", "")
    raise KeyError(name)


def _coerce(value: Any, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, args[0], key)
    if origin is typing.Literal:
        allowed = typing.get_args(typ)
        if value not in allowed:
            raise ConfigError(f"config key {key!r} must be one of {allowed}, got {value!r}")
        return value
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"config key {key!r} expects a boolean, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r} expects an integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                try:  # "1e6" or "1_000_000.0" from a command line
                    as_float = float(value)
                except ValueError:
                    as_float = None
                if as_float is not None and as_float.is_integer():
                    return int(as_float)
        if isinstance(value, int):
            return value
        raise ConfigError(f"config key {key!r} expects an integer, got {value!r}")
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r} expects a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key {key!r} expects a number, got {value!r}") from None
    if typ is str:
        return str(value)
    return value


def build_config(cls: type[T], values: Mapping[str, Any] | None = None, base: T | None = None) -> T:
    """Build ``cls`` from ``values`` (on top of ``base`` if given), rejecting unknown keys."""
    values = dict(values or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in values if k not in names)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {unknown} for {cls.__name__}; valid keys: {sorted(names)}"
        )
    hints = typing.get_type_hints(cls)
    coerced = {k: _coerce(v, hints[k], k) for k, v in values.items()}
    if base is not None:
        return dataclasses.replace(base, **coerced)
    return cls(**coerced)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds (used in __post_init__ checks)."""
    if not condition:
        raise ConfigError(message)
