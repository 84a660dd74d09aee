"""Experiment configs: the typed dataclasses and their run ids (``configs``), flat field access for flags and
overrides (``fields``) and the type checks driven by annotations (``field_types``)."""
