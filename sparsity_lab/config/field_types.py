"""Type checks and number normalisation of config fields, driven by the fields' annotations.

Refused with one line naming the field: a boolean where a number belongs (``iterations: true``), a string number (``p: "0.5"``)
or a non-finite number anywhere (``--train.lr inf``) is refused with one line naming the field; an
integer given for a float field (``p: 1``) becomes a float before hashing, so ``p: 1`` and ``p: 1.0``
are one run (configs written with floats keep their run ids). Annotations are the strings of
``from __future__ import annotations``: ``int``, ``float``, ``bool``, ``str``, ``float | None``,
``tuple[float, float]``, ``tuple[int, ...]``, ``tuple[tuple[str, float], ...]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sparsity_lab.errors import is_finite_number

_ALLOWED = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string"}


def _split_args(inner: str) -> list[str]:
    """Top-level comma split of ``str,float`` / ``tuple[str,float],...``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    return [*parts, inner[start:]]


def _parse(annotation: str) -> tuple[str, list[str]]:
    """``("optional", [base])``, ``("tuple", [elem, ...])``, ``("varlen", [elem])`` or ``(base, [])``."""
    a = annotation.replace(" ", "")
    if a.endswith("|None"):
        return "optional", [a[: -len("|None")]]
    if a.startswith("tuple[") and a.endswith("]"):
        args = _split_args(a[len("tuple["):-1])
        return ("varlen", args[:1]) if len(args) == 2 and args[1] == "..." else ("tuple", args)
    return a, []


def describe(annotation: str) -> str:
    """What a field of this annotation accepts, in words."""
    form, args = _parse(annotation)
    if form == "optional":
        return f"{describe(args[0])} or none"
    if form == "varlen":
        return f"a list of ({describe(args[0])})"
    if form == "tuple":
        return f"a list of {len(args)}: [{', '.join(describe(a) for a in args)}]"
    return _ALLOWED.get(form, form)


def type_ok(annotation: str, value: Any) -> bool:
    """Whether ``value`` fits the annotation (bools are never numbers; floats must be finite)."""
    form, args = _parse(annotation)
    if form == "optional":
        return value is None or type_ok(args[0], value)
    if form in ("tuple", "varlen"):
        if not isinstance(value, (tuple, list)):
            return False
        elems = args * len(value) if form == "varlen" else args
        return len(elems) == len(value) and all(type_ok(a, v) for a, v in zip(elems, value))
    if form == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if form == "float":
        return is_finite_number(value)
    if form == "bool":
        return isinstance(value, bool)
    if form == "str":
        return isinstance(value, str)
    return True


def normalise(annotation: str, value: Any) -> Any:
    """``value`` with ints of float fields as floats and lists as tuples; the same object if nothing changes."""
    form, args = _parse(annotation)
    if form == "optional":
        return value if value is None else normalise(args[0], value)
    if form in ("tuple", "varlen") and isinstance(value, (tuple, list)):
        elems = args * len(value) if form == "varlen" else args
        if len(elems) != len(value):
            return tuple(value) if isinstance(value, list) else value
        new = tuple(normalise(a, v) for a, v in zip(elems, value))
        return value if isinstance(value, tuple) and all(n is v for n, v in zip(new, value)) else new
    if form == "float" and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def normalise_settings(settings: Any) -> Any:
    """A dataclass (e.g. ``TrainSettings``) with every field normalised; the same object if nothing changes."""
    changes = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        new = normalise(str(f.type), value)
        if new is not value:
            changes[f.name] = new
    return dataclasses.replace(settings, **changes) if changes else settings


def check_types(config: Any, docs: Iterable[Any], error: type[Exception]) -> None:
    """Raise ``error`` naming the first field (``FieldDoc``: dotted name, annotation) whose value does not fit."""
    for doc in docs:
        value = config
        for part in doc.name.split("."):
            value = getattr(value, part)
        if not type_ok(doc.type, value):
            raise error(f"invalid config field {doc.name}={value!r}: allowed {describe(doc.type)}")
