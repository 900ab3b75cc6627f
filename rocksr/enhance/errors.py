"""rocksr.enhance.errors."""

from __future__ import annotations

from typing import Any

from rocksr.errors import RocksrError


class EnhanceError(RocksrError, ValueError):
    """A problem with the inputs or options of ``rocksr enhance`` (one line: file + problem)."""


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


def _choice(value: Any, allowed: tuple, what: str) -> None:
    if value not in allowed:
        raise EnhanceError(f"{what} must be one of {', '.join(map(str, allowed))}; got {value!r}")
