"""Typed figure parameters: one dataclass per figure, profile defaults and one-line help per field.

A field is declared with :func:`param`: its help, its choices (if any) and its value per profile
(``smoke``, ``quick``, ``gpu``, ``paper``; ``default`` where a profile names none). This is the ONE
place where profile values live (docs/figures.md "Profiles"). :func:`resolve` turns
``(params class, profile, **overrides)`` into a filled instance and refuses, in one line each,
an unknown profile, an unknown or misspelt name (listing the allowed ones), a wrongly typed value
(naming the parameter and the expected type) and a value outside the field's choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROFILES", "FigureParams", "ParameterError", "describe", "param", "resolve"]

#: The budgets every figure runs under (docs/figures.md "Profiles").
PROFILES = ("smoke", "quick", "gpu", "paper")
_UNSET = object()


class ParameterError(ValueError):
    """A bad figure parameter or profile (one line naming the value and what is allowed)."""


def param(help: str, *, default: Any = _UNSET, choices: tuple[Any, ...] | None = None, **profiles: Any) -> Any:
    """A figure parameter: ``help`` (one line), ``default`` (for profiles not named), per-profile values."""
    unknown = sorted(set(profiles) - set(PROFILES))
    if unknown:
        raise TypeError(f"param: unknown profile(s) {unknown}")
    return field(default=None, metadata={"help": help, "default": default, "profiles": profiles,
                                         "choices": choices})


@dataclass
class FigureParams:
    """Base of every figure's parameters; ``profile`` is set by :func:`resolve`."""

    profile: str = "quick"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fields(cls: type[FigureParams]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.name != "profile"]


def describe(cls: type[FigureParams]) -> list[tuple[str, str, str]]:
    """(name, type, help) of every parameter, in declaration order (the notebook's parameters cell)."""
    hints = typing.get_type_hints(cls)
    return [(f.name, _type_name(hints[f.name]), f.metadata.get("help", "")) for f in _fields(cls)]


def profile_value(f: dataclasses.Field[Any], profile: str) -> Any:
    per = f.metadata.get("profiles", {})
    value = per.get(profile, f.metadata.get("default", _UNSET))
    if value is _UNSET:
        raise ParameterError(f"parameter {f.name!r} has no value for profile {profile!r}")
    return value


def check_profile(profile: Any) -> str:
    if profile not in PROFILES:
        near = difflib.get_close_matches(str(profile), PROFILES, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ParameterError(f"unknown profile {profile!r}{hint}: allowed {', '.join(PROFILES)}")
    return str(profile)


def resolve(cls: type[FigureParams], profile: str, overrides: Mapping[str, Any] | None = None,
            *, figure: str = "") -> FigureParams:
    """``cls`` filled with ``profile``'s values and ``overrides`` (None = keep the profile's value)."""
    check_profile(profile)
    fields = {f.name: f for f in _fields(cls)}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    where = f" of figure {figure!r}" if figure else ""
    for name in given:
        if name not in fields:
            near = difflib.get_close_matches(name, list(fields), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ParameterError(f"unknown parameter {name!r}{where}{hint}: allowed {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in given:
            value = coerce(name, given[name], hints[name], where)
        else:
            value = profile_value(f, profile)
        choices = f.metadata.get("choices")
        if choices is not None and value is not None:
            items = value if isinstance(value, list) else [value]
            bad = [v for v in items if v not in choices]
            if bad:
                raise ParameterError(f"parameter {name}={value!r}{where}: allowed {', '.join(map(str, choices))}")
        values[name] = value
    return cls(profile=profile, **values)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is tuple:
        return "pair of " + _type_name(typing.get_args(tp)[0])
    return "None" if tp is type(None) else getattr(tp, "__name__", str(tp))


def coerce(name: str, value: Any, tp: Any, where: str = "") -> Any:
    """``value`` checked against the annotation ``tp`` (int, float, str, bool, list[...], X | None);
    ints are accepted for floats, nothing else is converted. Raises ParameterError naming ``name``."""
    def bad() -> ParameterError:
        return ParameterError(f"parameter {name}={value!r}{where}: expected {_type_name(tp)}")

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(name, value, arg, where)
            except ParameterError:
                continue
        raise bad()
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise bad()
        (inner, *_) = typing.get_args(tp)
        try:
            return [coerce(name, v, inner, where) for v in value]
        except ParameterError:
            raise bad() from None
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    return value
