"""Hold a JSON document to the TypedDicts that describe it (every key known, every value of its declared type)."""

from __future__ import annotations

import types
import typing

from typing_extensions import get_type_hints, is_typeddict  # NotRequired stripped on Python 3.10 too


def check(value: object, hint: object, where: str = "$") -> list[str]:
    """The places where ``value`` does not match ``hint`` (an empty list when it does)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is object or hint is typing.Any:
        return []
    if hint is type(None) or hint is None:
        return [] if value is None else [f"{where}: {value!r} is not null"]
    if origin in (typing.Union, types.UnionType):
        failures = [check(value, a, where) for a in args]
        return [] if any(not f for f in failures) else [f"{where}: {value!r} matches none of {args}"]
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        hints = get_type_hints(hint)
        out = [f"{where}.{k}: undeclared key" for k in value if k not in hints]
        out += [f"{where}.{k}: missing" for k in hint.__required_keys__ if k not in value]
        for k, v in value.items():
            if k in hints:
                out += check(v, hints[k], f"{where}.{k}")
        return out
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        return [e for k, v in value.items() for e in check(v, args[1], f"{where}[{k!r}]")]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [e for i, v in enumerate(value) for e in check(v, args[0], f"{where}[{i}]")]
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)  # type: ignore[arg-type]
    return [] if ok else [f"{where}: {value!r} is not {getattr(hint, '__name__', hint)}"]
