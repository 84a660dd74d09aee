"""Flat access to a config's fields: ``flat_fields`` (dotted names, types, defaults and help, from which the
command-line flags and the report's overrides are generated), ``config_with`` (a copy with dotted overrides)
and ``config_from_dict`` (a stored ``config.json`` back to its typed config)."""

from __future__ import annotations

import dataclasses
from dataclasses import fields
from typing import TYPE_CHECKING, Any, NamedTuple

from sparsity_lab.errors import ConfigError

if TYPE_CHECKING:
    from sparsity_lab.config.configs import ExperimentConfig


class FieldDoc(NamedTuple):
    name: str
    type: str
    default: Any
    help: str


def flat_fields(cls: type[ExperimentConfig]) -> list[FieldDoc]:
    """Every field with its type, default and help; nested train fields as ``train.<name>``."""
    default = cls()
    docs: list[FieldDoc] = []
    for f in fields(cls):
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            for sub in fields(value):
                docs.append(FieldDoc(f"{f.name}.{sub.name}", str(sub.type), getattr(value, sub.name),
                                     sub.metadata.get("help", "")))
        else:
            docs.append(FieldDoc(f.name, str(f.type), value, f.metadata.get("help", "")))
    return docs


def config_with(config: ExperimentConfig, **overrides: Any) -> ExperimentConfig:
    """A copy with fields replaced; dotted names (``train.lr``) or ``train_lr`` reach nested settings."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    names = {f.name for f in fields(config)}
    for key, value in overrides.items():
        if key not in names and key.startswith("train_"):  # load_results' flattened column names
            key = "train." + key[len("train_"):]
        if "." in key:
            outer, inner = key.split(".", 1)
            sub = getattr(config, outer, None)
            if not dataclasses.is_dataclass(sub) or inner not in {f.name for f in fields(sub)}:
                raise ConfigError(f"unknown config field {key!r} for {config.kind}; "
                                  f"known: {[d.name for d in flat_fields(type(config))]}")
            nested.setdefault(outer, {})[inner] = value
        elif key in names:
            current = getattr(config, key)
            if dataclasses.is_dataclass(current) and not isinstance(value, type(current)):
                raise ConfigError(f"invalid config field {key}={value!r}: allowed a mapping of "
                                  f"{key}.<field> values, e.g. {{{key}: {{epochs: 3}}}}")
            top[key] = value
        else:
            raise ConfigError(f"unknown config field {key!r} for {config.kind}; "
                              f"known: {[d.name for d in flat_fields(type(config))]}")
    for outer, values in nested.items():
        top[outer] = dataclasses.replace(getattr(config, outer), **values)
    return dataclasses.replace(config, **top)


def _flatten(config: ExperimentConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": _jsonable(v) for k, v in dataclasses.asdict(value).items()})
        else:
            out[f.name] = _jsonable(value)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
