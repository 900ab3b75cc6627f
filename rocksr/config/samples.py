"""The config's ``samples`` value in any of its three forms, expanded to the explicit list.

The workflow understands one form, a list of samples (each ``{name, mct, sem}`` with the optional
``mct_page, sem_page, mct_series, sem_series``, or ``{name, synthetic}``). :func:`expand_samples`
also accepts two shorter forms and turns them into that list:

1. **A list**: returned unchanged (already explicit; relative paths stay as they are, the schema
   and :func:`rocksr.config_checks.precheck_config` check it).
2. **A string**: the path (relative to ``base_dir``) of a sample sheet, the Snakemake-workflows
   convention. ``.tsv`` / ``.txt`` are tab-separated, ``.csv`` comma-separated. The header names
   the columns ``name, mct, sem`` (required) and ``mct_page, sem_page, mct_series, sem_series``
   (optional, non-negative integers; an empty cell means absent), ``mct_scale`` (an integer or
   ``auto``), ``crop`` (``y0 x0 height width``) and ``mask`` (``none``, ``auto_fov`` or a mask
   image path). Lines starting with ``#`` and
   blank lines are skipped. A relative ``mct`` / ``sem`` path resolves against the *sheet's*
   folder and is written out as an absolute path; every listed image must exist.
3. **A mapping** ``{mct: "<glob>", sem: "<glob>"}`` (optionally ``name_from: stem``, the only
   choice, and ``mct_scale``, ``crop``, ``mask`` shared by every pair): the files each glob
   matches (relative to ``base_dir``; ``**`` recurses) are paired by stem, the file name up to
   its first dot (``a.tif`` pairs with ``a.png``, ``a.ome.tif`` is ``a``). The sample name is
   the stem with every character outside ``[A-Za-z0-9_-]`` replaced by ``_``; paths
   are written out absolute and samples are sorted by stem.

Every problem raises a one-line :class:`~rocksr.config.merge.ConfigError` that names the sheet
(and its line) or the glob.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from rocksr.config.mask import MASK_MODES, mask_spec_problem
from rocksr.config.merge import ConfigError, suggest

REQUIRED_COLUMNS = ("name", "mct", "sem")
OPTIONAL_COLUMNS = ("mct_page", "sem_page", "mct_series", "sem_series")
# registration helpers: mct_scale (an integer or auto), crop (y0 x0 height width, space- or
# comma-separated), mask (none, auto_fov or a mask image path, relative to the sheet's folder)
REGISTRATION_COLUMNS = ("mct_scale", "crop", "mask")
ALLOWED_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + REGISTRATION_COLUMNS
DELIMITERS = {".tsv": "\t", ".txt": "\t", ".csv": ","}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# every pair of the glob form shares these (the registration helpers of a sheet row)
GLOB_SHARED = ("mct_scale", "crop", "mask")
GLOB_KEYS = ("mct", "sem", "name_from", *GLOB_SHARED)
MODALITY = {"mct": "micro-CT", "sem": "SEM", "mask": "mask"}
SHOW_AT_MOST = 10


def expand_samples(value: Any, base_dir: Path) -> list[dict]:
    """The explicit sample list for the config's ``samples`` ``value`` (see the module docstring).

    ``base_dir`` is the folder relative sheet paths and globs are taken from (the workflow's
    working directory).
    """
    if isinstance(value, list):
        return value
    base = Path(os.path.abspath(base_dir))
    if isinstance(value, str) and value.strip():
        return read_sheet(base / value)
    if isinstance(value, dict):
        return expand_globs(value, base)
    raise ConfigError(
        f"config: samples: got {value!r}; give a list of samples, the path of a TSV/CSV sample "
        "sheet, or {mct: <glob>, sem: <glob>}"
    )


# --- sample sheets -----------------------------------------------------------------------------


def read_sheet(path: Path) -> list[dict]:
    """The samples of the TSV/CSV sheet at ``path`` (absolute), checked row by row."""
    sheet = Path(os.path.abspath(path))
    where = f"config: samples: sheet {sheet}"
    delimiter = DELIMITERS.get(sheet.suffix.lower())
    if delimiter is None:
        raise ConfigError(
            f"{where}: unknown extension {sheet.suffix!r}; use .tsv or .txt (tab-separated) "
            "or .csv (comma-separated)"
        )
    if not sheet.is_file():
        raise ConfigError(f"{where} does not exist (or is not a file)")
    rows = sheet_rows(sheet, delimiter, where)
    columns = check_header(rows[0][1], f"{where}: line {rows[0][0]}") if rows else []
    if len(rows) < 2:
        raise ConfigError(f"{where} has no samples (a header line and one row per sample)")
    samples = [
        sheet_sample(columns, cells, sheet.parent, f"{where}: line {n}") for n, cells in rows[1:]
    ]
    check_unique_names(samples, [n for n, _ in rows[1:]], where)
    return samples


def sheet_rows(sheet: Path, delimiter: str, where: str) -> list[tuple[int, list[str]]]:
    """``(line number, stripped cells)`` for every row that is not blank or a ``#`` comment."""
    rows = []
    try:
        with open(sheet, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for raw in reader:
                cells = [c.strip() for c in raw]
                if not any(cells) or cells[0].startswith("#"):
                    continue
                rows.append((reader.line_num, cells))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"{where}: cannot be read as text: {e}") from e
    return rows


def check_header(header: list[str], where: str) -> list[str]:
    """The header's column names, refusing unknown, repeated or missing columns."""
    for column in header:
        if column not in ALLOWED_COLUMNS:
            raise ConfigError(
                f"{where}: unknown column {column!r}{suggest(column, ALLOWED_COLUMNS)}; allowed "
                f"columns: {', '.join(ALLOWED_COLUMNS)}"
            )
    repeated = sorted(c for c, k in Counter(header).items() if k > 1)
    if repeated:
        raise ConfigError(f"{where}: column(s) {', '.join(map(repr, repeated))} appear twice")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            f"{where}: missing required column(s) {', '.join(map(repr, missing))}; the header "
            f"must name {', '.join(REQUIRED_COLUMNS)}"
        )
    return header


def sheet_sample(columns: list[str], cells: list[str], folder: Path, where: str) -> dict:
    """One sheet row as a sample dict: paths absolute (from ``folder``), pages as integers."""
    if len(cells) > len(columns):
        raise ConfigError(
            f"{where}: {len(cells)} cells but the header has {len(columns)} columns "
            "(check the delimiter)"
        )
    row = dict(zip(columns, cells + [""] * (len(columns) - len(cells)), strict=True))
    name = row["name"]
    if not name:
        raise ConfigError(f"{where}: empty name; every sample needs a name")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{where}: name {name!r} may only use letters, digits, '_' and '-'")
    sample: dict[str, Any] = {"name": name}
    for key in ("mct", "sem"):
        sample[key] = sheet_image(row[key], key, folder, f"{where} (sample {name!r})")
    for key in OPTIONAL_COLUMNS:
        if row.get(key):
            sample[key] = sheet_integer(row[key], key, f"{where} (sample {name!r})")
    scale = row.get("mct_scale", "")
    if scale:
        label = f"{where} (sample {name!r})"
        sample["mct_scale"] = (
            "auto" if scale == "auto" else sheet_integer(scale, "mct_scale", label)
        )
    if row.get("crop"):
        parts = row["crop"].replace(",", " ").split()
        if len(parts) != 4:
            raise ConfigError(f"{where}: crop {row['crop']!r} needs 4 numbers: y0 x0 height width")
        sample["crop"] = [sheet_integer(v, "crop", f"{where} (sample {name!r})") for v in parts]
    if row.get("mask"):
        sample["mask"] = resolve_mask(row["mask"], folder, f"{where} (sample {name!r})")
    return sample


def resolve_mask(mask: object, folder: Path, where: str) -> str:
    """A ``mask`` value checked: a mode as it is, a mask image as the absolute path of an
    existing file (a relative one taken from ``folder``)."""
    if not isinstance(mask, str) or mask_spec_problem(mask):
        problem = mask_spec_problem(mask) if isinstance(mask, str) else f"mask {mask!r}"
        raise ConfigError(f"{where}: {problem}")
    return mask if mask in MASK_MODES else sheet_image(mask, "mask", folder, where)


def sheet_image(cell: str, key: str, folder: Path, where: str) -> str:
    """The absolute path of an existing image; a relative ``cell`` is taken from ``folder``."""
    if not cell:
        raise ConfigError(f"{where}: empty {key!r}; give the {MODALITY[key]} image path")
    path = Path(os.path.abspath(folder / os.path.expanduser(cell)))
    if not path.is_file():
        raise ConfigError(f"{where}: {key} image {cell!r} does not exist (looked for {path})")
    return str(path)


def sheet_integer(cell: str, key: str, where: str) -> int:
    """A page or series cell as a non-negative integer."""
    try:
        number = int(cell)
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{where}: {key} {cell!r} is not a non-negative integer")
    return number


def check_unique_names(samples: list[dict], lines: list[int], where: str) -> None:
    """Refuse a name used by more than one row, naming it and its lines."""
    seen: dict[str, list[int]] = {}
    for sample, line in zip(samples, lines, strict=True):
        seen.setdefault(sample["name"], []).append(line)
    dup = [f"{n!r} (lines {', '.join(map(str, ls))})" for n, ls in seen.items() if len(ls) > 1]
    if dup:
        raise ConfigError(
            f"{where}: duplicate sample name(s) {'; '.join(dup)}; sample names must be unique"
        )


# --- glob pairs --------------------------------------------------------------------------------


def expand_globs(spec: dict, base: Path) -> list[dict]:
    """Samples from ``{mct: <glob>, sem: <glob>}``: files paired by stem, named by the stem."""
    check_glob_spec(spec)
    sides = {key: stems_of(spec[key], key, base) for key in ("mct", "sem")}
    check_pairs(sides, spec)
    names = {stem: UNSAFE.sub("_", stem) for stem in sides["mct"]}
    check_safe_names(names)
    shared = shared_settings(spec, base)
    return [
        {
            "name": names[stem],
            "mct": str(base / sides["mct"][stem]),
            "sem": str(base / sides["sem"][stem]),
            **shared,
        }
        for stem in sorted(names)
    ]


def shared_settings(spec: dict, base: Path) -> dict:
    """The glob form's ``mct_scale``, ``crop`` and ``mask``, applied to every pair (a mask image
    path is taken from ``base``); their types are checked with the expanded list's schema."""
    shared = {k: spec[k] for k in GLOB_SHARED if spec.get(k) is not None}
    if "mask" in shared:
        shared["mask"] = resolve_mask(shared["mask"], base, "config: samples")
    return shared


def check_glob_spec(spec: dict) -> None:
    """The mapping form has the keys ``mct`` and ``sem`` (strings) and at most ``name_from: stem``."""
    for key in spec:
        if key not in GLOB_KEYS:
            raise ConfigError(
                f"config: samples: unknown key {key!r}{suggest(str(key), GLOB_KEYS)}; the glob "
                f"form takes {', '.join(GLOB_KEYS)}"
            )
    for key in ("mct", "sem"):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            raise ConfigError(
                f"config: samples: give {key!r} as a glob string (e.g. 'data/{key}/*.tif')"
            )
    if spec.get("name_from", "stem") != "stem":
        raise ConfigError(
            f"config: samples: name_from {spec['name_from']!r} is not supported; use 'stem'"
        )


def stem(path: str) -> str:
    """A file name without its extension(s): up to its first dot (``a.ome.tif`` -> ``a``)."""
    return os.path.basename(path).split(".", 1)[0]


def stems_of(pattern: str, key: str, base: Path) -> dict[str, str]:
    """``{stem: path as matched}`` of the files ``pattern`` matches (relative to ``base``)."""
    matched = [
        p for p in sorted(glob.glob(pattern, root_dir=base, recursive=True)) if (base / p).is_file()
    ]
    if not matched:
        raise ConfigError(f"config: samples: {key} glob {pattern!r} matches no file (in {base})")
    by_stem: dict[str, list[str]] = {}
    for p in matched:
        by_stem.setdefault(stem(p), []).append(p)
    if "" in by_stem:
        raise ConfigError(
            f"config: samples: {key} glob {pattern!r} matches {by_stem[''][0]!r}, whose name has "
            "no stem before its extension"
        )
    dup = {s: ps for s, ps in by_stem.items() if len(ps) > 1}
    if dup:
        listed = "; ".join(f"{s!r}: {', '.join(ps)}" for s, ps in sorted(dup.items()))
        raise ConfigError(
            f"config: samples: {key} glob {pattern!r} matches several files with the same "
            f"stem ({listed}); each stem must appear once per side"
        )
    return {s: ps[0] for s, ps in by_stem.items()}


def shortlist(items: list[str]) -> str:
    """Up to :data:`SHOW_AT_MOST` items, then ``and N more``."""
    shown = ", ".join(items[:SHOW_AT_MOST])
    rest = len(items) - SHOW_AT_MOST
    return f"{shown} and {rest} more" if rest > 0 else shown


def check_pairs(sides: dict[str, dict[str, str]], spec: dict) -> None:
    """Refuse files whose stem the other glob does not match, listing them per side."""
    parts = []
    for key, other in (("mct", "sem"), ("sem", "mct")):
        alone = sorted(sides[key][s] for s in sides[key] if s not in sides[other])
        if alone:
            parts.append(
                f"{len(alone)} {key} file(s) ({spec[key]!r}) without a {other} file of the same "
                f"stem ({spec[other]!r}): {shortlist(alone)}"
            )
    if parts:
        raise ConfigError(f"config: samples: unpaired files: {'; '.join(parts)}")


def check_safe_names(names: dict[str, str]) -> None:
    """Refuse two stems that become the same sample name once made safe."""
    by_name: dict[str, list[str]] = {}
    for raw, safe in names.items():
        by_name.setdefault(safe, []).append(raw)
    clash = [
        f"{' and '.join(map(repr, sorted(raws)))} -> {safe!r}"
        for safe, raws in sorted(by_name.items())
        if len(raws) > 1
    ]
    if clash:
        raise ConfigError(
            f"config: samples: file stems clash once made safe sample names ({'; '.join(clash)}); "
            "rename the files so their stems differ in letters, digits, '_' or '-'"
        )
