"""Argument types shared by the stage commands (light: imported by the CLI at start-up)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from rocksr.config.pair_settings import PairSettings


def json_arg(text: str):
    """A JSON command-line value."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text[:80]!r}") from exc


def pair_settings_arg(text: str) -> PairSettings:
    """A sample's pair settings as JSON (:class:`rocksr.config.pair_settings.PairSettings`)."""
    try:
        return PairSettings.from_json(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def shard_arg(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``1 <= i <= n`` (argparse type of ``--shard``)."""
    index, sep, count = text.partition("/")
    try:
        parsed = (int(index), int(count))
    except ValueError:
        parsed = (0, 0)
    if not sep or not 1 <= parsed[0] <= parsed[1]:
        raise argparse.ArgumentTypeError(f"expected i/n with 1 <= i <= n, got {text!r}")
    return parsed


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def named_paths(items: Sequence[str]) -> dict[str, str]:
    """``["name=path", ...]`` -> ``{name: path}``, refusing items without a name."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"expected NAME=PATH, got {item!r}")
        out[name] = path
    return out
