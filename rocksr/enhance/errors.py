"""The error of ``rocksr enhance`` (:class:`EnhanceError`) and the helpers that word it."""

from __future__ import annotations

from typing import Any

from rocksr.errors import RocksrError, one_line  # noqa: F401 (re-exported for enhance)


class EnhanceError(RocksrError, ValueError):
    """A problem with the inputs or options of ``rocksr enhance`` (one line: file + problem)."""


def check_choice(value: Any, allowed: tuple, what: str) -> None:
    """Raise :class:`EnhanceError` unless ``value`` is one of ``allowed`` (option ``what``)."""
    if value not in allowed:
        raise EnhanceError(f"{what} must be one of {', '.join(map(str, allowed))}; got {value!r}")
