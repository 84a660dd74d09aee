"""Config fields as command-line flags: ``run``'s flags are generated from the config dataclasses
(``config.fields.flat_fields``), parsed by the field's type, and turned back into a config."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from sparsity_lab.config.configs import CONFIG_TYPES, ConfigError
from sparsity_lab.config.fields import FieldDoc, config_with, flat_fields

#: ``--batch-seeds`` choices mapped to ``run_many(batch_seeds=...)``.
BATCH_SEEDS: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true/false")


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def parse_value(doc: FieldDoc, text: str) -> Any:
    """Convert a flag's text to the field's type (``FieldDoc.type`` is the annotation, e.g. ``float | None``)."""
    annotation = doc.type.replace(" ", "")
    if "|None" in annotation and text.strip().lower() in ("none", "null"):
        return None
    base = annotation.replace("|None", "")
    try:
        if base == "bool":
            return _parse_bool(text)
        if base in ("int", "float", "str"):
            return {"int": int, "float": float, "str": str}[base](text)
        return _tuples(yaml.safe_load(text))  # tuples and anything else: YAML, e.g. "[[fc3.*, 0.1]]"
    except (ValueError, TypeError, yaml.YAMLError) as err:
        raise ConfigError(f"invalid config field {doc.name}={text!r}: expected {doc.type} ({err})") from None


def _fields_by_name() -> dict[str, dict[str, FieldDoc]]:
    """``{field name: {kind: FieldDoc}}`` over every config kind, in declaration order."""
    out: dict[str, dict[str, FieldDoc]] = {}
    for kind, cls in CONFIG_TYPES.items():
        for doc in flat_fields(cls):
            out.setdefault(doc.name, {})[kind] = doc
    return out


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--<field>`` flag per config field (``--train.lr`` for nested ones), help = field help + default(s)."""
    kinds = list(CONFIG_TYPES)
    groups = {"all": parser.add_argument_group("config fields of every kind")}
    for kind in kinds:
        groups[kind] = parser.add_argument_group(f"config fields of --kind {kind} only")
    for name, docs in _fields_by_name().items():
        first = next(iter(docs.values()))
        defaults = {kind: doc.default for kind, doc in docs.items()}
        if len(set(map(repr, defaults.values()))) == 1:
            default = f"default: {first.default!r}"
        else:
            default = "default: " + ", ".join(f"{kind} {value!r}" for kind, value in defaults.items())
        group = groups["all"] if len(docs) == len(kinds) else groups[next(iter(docs))]
        group.add_argument(f"--{name}", dest=f"field:{name}", default=argparse.SUPPRESS,
                           metavar=first.type.replace(" ", "").upper().split("[")[0].replace("|NONE", "|none"),
                           help=f"{first.help} ({default})".replace("%", "%%"))


def config_from_flags(kind: str, args: argparse.Namespace) -> Any:
    """The config of ``kind`` with the given flags applied; unknown kinds or fields raise ``ConfigError``."""
    if kind not in CONFIG_TYPES:
        raise ConfigError(f"invalid config field kind={kind!r}: allowed one of {sorted(CONFIG_TYPES)}")
    fields = {doc.name: doc for doc in flat_fields(CONFIG_TYPES[kind])}
    values = {}
    for dest, text in vars(args).items():
        if dest.startswith("field:"):
            name = dest[len("field:"):]
            if name not in fields:
                raise ConfigError(f"config field --{name} does not exist for --kind {kind}; "
                                  f"fields of {kind}: {sorted(fields)}")
            values[name] = parse_value(fields[name], text)
    return config_with(CONFIG_TYPES[kind](), **values)
