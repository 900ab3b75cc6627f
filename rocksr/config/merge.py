"""Fill a config section from its typed defaults, refusing keys the section does not have."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from typing import Any

from rocksr.errors import RocksrError


class ConfigError(RocksrError, ValueError):
    """A configuration value or key that rocksr cannot use."""


def suggest(key: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the valid key closest to a misspelt ``key``, else ``""``."""
    near = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def merge_known(defaults: dict[str, Any], given: dict[str, Any] | None, what: str) -> dict:
    """``defaults`` updated with ``given``, recursively where a default is itself a dict of
    known keys; an unknown key is a :class:`ConfigError` naming ``what.key``."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for key, value in (given or {}).items():
        if key not in defaults:
            raise ConfigError(
                f"{what}: unknown key {key!r}{suggest(key, sorted(defaults))}; "
                f"known keys: {', '.join(sorted(defaults))}"
            )
        d = defaults[key]
        if isinstance(d, dict) and d and isinstance(value, dict):
            out[key] = merge_known(d, value, f"{what}.{key}")
        else:
            out[key] = value
    return out


def section_defaults(section: type) -> dict[str, Any]:
    """The defaults of a typed section (a dataclass) as a plain nested dict."""
    return dataclasses.asdict(section())


def resolve(section: type, given: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """``given`` with every missing key of ``section`` filled from its defaults."""
    return merge_known(section_defaults(section), given, what)
