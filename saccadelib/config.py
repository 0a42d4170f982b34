"""The one override parser: ``KEY=VALUE`` settings from the command line or a notebook's parameters
applied to a frozen config dataclass.

A key names a field (``glimpses``) or a field of a nested config (``loss.kl_weight``). A string value is
parsed as the field's declared type: ``bool`` (true/false, 1/0, yes/no, on/off), ``int``, ``float``,
``str``, ``X | None`` ("none" or "null" is None), and ``tuple[X, ...]`` (comma-separated). A float
must be finite: nan and inf are refused. A value that
is not a string is used as it is (tuples from lists). Unknown keys and unparsable values raise a
``ValueError`` that names the setting and what it takes.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from functools import lru_cache

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@lru_cache(maxsize=None)
def _field_types(cls) -> dict:
    return typing.get_type_hints(cls)


def _parse(text: str, kind, key: str):
    """``text`` as a value of type ``kind`` (a resolved annotation)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if text.strip().lower() in ("none", "null") and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _parse(text, options[0], key) if len(options) == 1 else text
    if origin is tuple:
        item = args[0] if args else str
        return tuple(_parse(part.strip(), item, key) for part in text.split(",") if part.strip())
    try:
        if kind is bool:
            if text.strip().lower() in _TRUE:
                return True
            if text.strip().lower() in _FALSE:
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):  # nan and inf parse, and would fail only mid-run
                raise ValueError(f"setting {key}: expected a finite number, got {text!r}")
            return value
    except ValueError as err:
        if "finite" in str(err):
            raise
        raise ValueError(f"setting {key}: expected {kind.__name__}, got {text!r}") from None
    return text


def _convert(value, kind, key: str):
    if isinstance(value, str):
        return _parse(value, kind, key)
    if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)):
        item = (typing.get_args(kind) or (str,))[0]
        return tuple(_parse(v, item, key) if isinstance(v, str) else v for v in value)
    return value


def apply_overrides(config, overrides: dict | None, prefix: str = ""):
    """A copy of the frozen dataclass ``config`` with ``overrides`` ({"loss.kl_weight": "5", ...}) set."""
    if not overrides:
        return config
    cls = type(config)
    kinds = _field_types(cls)
    direct, nested = {}, {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in kinds or head.startswith("_"):
            valid = ", ".join(sorted(f.name for f in dataclasses.fields(cls)))
            raise ValueError(f"unknown setting {prefix + key!r} for {cls.__name__}; valid: {valid}")
        if rest:
            nested.setdefault(head, {})[rest] = value
        elif dataclasses.is_dataclass(getattr(config, head)) and isinstance(value, dict):
            nested.setdefault(head, {}).update(value)
        else:
            direct[head] = _convert(value, kinds[head], prefix + key)
    for head, sub in nested.items():
        current = getattr(config, head)
        # a dict field holds another config's settings (e.g. a study's TrainConfig settings): merged as given
        direct[head] = {**current, **sub} if isinstance(current, dict) else \
            apply_overrides(current, sub, prefix=f"{prefix}{head}.")
    try:
        return dataclasses.replace(config, **direct)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{cls.__name__}: {err}") from None


def to_dict(config) -> dict:
    """A config as plain JSON types (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls, values: dict):
    """The config ``cls`` from a dict such as ``to_dict`` writes (nested configs included); unknown keys
    are refused, missing ones take today's defaults."""
    return apply_overrides(cls(), dict(values))
