"""The config as it enters rocksr: plain data, with what a config file or ``--config`` spells as
text read as the type the schema wants.

Snakemake hands the workflow ``OrderedDict`` sections for a JSON config file (it tries JSON
first, also for a ``.yaml`` file), and ``--config 'ddpm={lr: 1e-3}'`` gives strings for every
nested value (as does YAML for ``1e-3``, which it reads as text). :func:`plain` makes every
mapping a ``dict`` and every sequence a ``list``; :func:`coerce_to_schema` reads a string as the
number, boolean or null the schema wants there (and an integer or a date as the string it wants)
when the value as given is invalid and the reading is valid. What still does not fit is left for
the schema check, which names the key.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any

# a string read as a boolean or as null, where the schema wants one (YAML 1.1's spellings)
BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
NULLS = ("null", "~", "none", "")


def plain(value: Any) -> Any:
    """``value`` with every mapping (``OrderedDict`` too) a ``dict`` and every list or tuple a
    ``list``, recursively; other values as they are."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _deref(schema: dict, root: dict) -> dict:
    """A sub-schema with its local ``$ref`` (``#/definitions/x``) followed."""
    while isinstance(schema, dict) and str(schema.get("$ref", "")).startswith("#/"):
        node: Any = root
        for part in schema["$ref"][2:].split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _valid(value: Any, schema: dict, root: dict) -> bool:
    from jsonschema import Draft202012Validator

    return Draft202012Validator({**schema, "definitions": root.get("definitions", {})}).is_valid(
        value
    )


def _readings(value: Any) -> Iterator[Any]:
    """What a scalar written as text (or a number or date where text is wanted) may mean."""
    if isinstance(value, str):
        text = value.strip()
        for read in (int, float):
            try:
                yield read(text)
            except ValueError:
                pass
        if text.lower() in BOOLEANS:
            yield BOOLEANS[text.lower()]
        if text.lower() in NULLS:
            yield None
    elif isinstance(value, int | datetime.date) and not isinstance(value, bool):
        yield str(value)


def coerce_to_schema(value: Any, schema: dict, root: dict | None = None) -> Any:
    """``value`` (plain data) with each scalar that ``schema`` refuses replaced by the first of
    its :func:`_readings` that ``schema`` accepts (``root``: the whole schema, for ``$ref``)."""
    root = schema if root is None else root
    schema = _deref(schema, root)
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        out = {}
        for key, v in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            out[key] = coerce_to_schema(v, sub, root) if isinstance(sub, dict) else v
        return out
    if isinstance(value, list):
        items = schema.get("items")
        return (
            [coerce_to_schema(v, items, root) for v in value] if isinstance(items, dict) else value
        )
    if _valid(value, schema, root):
        return value
    return next((r for r in _readings(value) if _valid(r, schema, root)), value)
