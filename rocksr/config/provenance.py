"""Where each value of the config in force comes from: a default, `config.yaml`, a `--configfile`.

Snakemake loads the Snakefile's ``configfile: "config.yaml"`` first and merges every
``--configfile`` onto it key by key (nested sections too), then ``--config``; the schema fills
what none of them sets. So a study config given with ``--configfile`` silently inherits every
key it does not set from ``config.yaml``: :func:`inherited` lists those, and
:func:`resolved_text` writes the whole config in force with each value's source.
"""

from __future__ import annotations

from typing import Any

import yaml

DEFAULT = "default"


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and empty dicts are leaves."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def value_sources(layers: list[tuple[str, dict]]) -> dict[str, str]:
    """Dotted key -> the name of the last layer that sets it (layers in the order applied)."""
    sources: dict[str, str] = {}
    for name, layer in layers:
        for key, value in flatten(layer or {}).items():
            if value == {}:  # Snakemake merges an empty section as a no-op
                continue
            # a later value replaces what was under it, and a leaf that stood for its section
            for old in [k for k in sources if k.startswith(key + ".")]:
                del sources[old]
            parts = key.split(".")
            for i in range(1, len(parts)):
                sources.pop(".".join(parts[:i]), None)
            sources[key] = name
    return sources


def inherited(sources: dict[str, str], base: str) -> list[str]:
    """Keys that only the ``base`` layer sets although later layers exist (sorted)."""
    return sorted(k for k, s in sources.items() if s == base)


def key_list(keys: list[str], shown: int = 6) -> str:
    """``keys`` for a one-line message: all of a few; else the first ``shown`` and the count and
    sections of the rest (an overlay such as configs/studies.yaml inherits almost every key)."""
    if len(keys) <= shown:
        return ", ".join(keys)
    rest = keys[shown:]
    sections = sorted({k.split(".")[0] for k in rest})
    return f"{', '.join(keys[:shown])} and {len(rest)} more (in {', '.join(sections)})"


def resolved_text(config: dict, sources: dict[str, str]) -> str:
    """The config in force, one ``dotted.key: value  # source`` line per value."""
    lines = [
        "# rocksr: every config value in force for this run and where it came from",
        "# (default = the schema / rocksr.config; later files override earlier ones).",
    ]
    for key, value in flatten(config).items():
        src = (
            sources.get(key)
            or next((s for k, s in sources.items() if key.startswith(k + ".")), None)
            or next((s for k, s in sources.items() if k.startswith(key + ".")), DEFAULT)
        )
        text = yaml.safe_dump({key: value}, default_flow_style=True, width=10**9).strip()
        lines.append(f"{text[1:-1]}  # {src}")
    return "\n".join(lines) + "\n"
