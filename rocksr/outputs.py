"""What rocksr may replace: an output path is overwritten only if rocksr recognizably wrote it.

A store path (``--out-store``, ``--out``) may be replaced only when it is absent or a Zarr group
that rocksr wrote (group attributes ``rocksr_store``, or those of stores written before that
attribute existed) holding nothing but Zarr nodes and rocksr's digest manifest. A file path may
be replaced only when it is absent or a regular file. Anything else is refused with a
:class:`UnsafeOutputError` naming the path, before any work is done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rocksr.errors import RocksrError

STORE_MARK = "rocksr_store"
DIGESTS_FILE = "rocksr-digests.json"
# files other tools put into a finished store that rocksr neither writes nor verifies:
# Snakemake touches this marker in every directory() output after the job
TOOL_FILES = frozenset({".snakemake_timestamp"})


class UnsafeOutputError(RocksrError, RuntimeError):
    """An output path holds something rocksr did not write; it is left untouched."""


def _group_attrs(path: Path) -> dict | None:
    """The attributes of the Zarr v3 group at ``path``, or None when it is not one."""
    meta = path / "zarr.json"
    if meta.is_symlink() or not meta.is_file():
        return None
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("node_type") != "group":
        return None
    attrs = doc.get("attributes") or {}
    return attrs if isinstance(attrs, dict) else None


def _is_zarr_node_dir(path: Path) -> bool:
    """A directory that is a Zarr array/group (has zarr.json), not a link."""
    return path.is_dir() and not path.is_symlink() and (path / "zarr.json").is_file()


def store_problem(path: str | os.PathLike, partial: bool = False) -> str | None:
    """Why ``path`` is not a rocksr store that may be replaced (None: it may be).

    ``partial``: also accept a half-written store (a group directory with rocksr's mark or no
    attributes yet), as left by an interrupted build at ``.<name>.partial``.
    """
    p = Path(path)
    if p.is_symlink():
        return "is a symbolic link"
    if not p.exists():
        return None
    if not p.is_dir():
        return "is a file, not a rocksr Zarr store"
    attrs = _group_attrs(p)
    if partial:
        # ``.<name>.partial`` is rocksr's own scratch folder (its hidden name says so); an
        # interrupted build may leave it in any state (no zarr.json yet, a half-written
        # manifest), and a retry must be able to clear it. Refuse only a foreign Zarr group.
        if attrs and STORE_MARK not in attrs and "rocksr_version" not in attrs:
            return "is a Zarr store not written by rocksr (no rocksr attributes)"
        return None
    if attrs is None:
        return "is a folder that is not a Zarr store written by rocksr"
    legacy = "rocksr_version" in attrs or {"tile_ids", "arrays"} <= set(attrs)
    if not (STORE_MARK in attrs or legacy):
        return "is a Zarr store not written by rocksr (no rocksr attributes)"
    foreign = sorted(
        e.name
        for e in p.iterdir()
        if e.name not in ("zarr.json", DIGESTS_FILE, *TOOL_FILES) and not _is_zarr_node_dir(e)
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        return f"holds files rocksr did not write ({shown})"
    return None


def check_store_target(path: str | os.PathLike, partial: bool = False) -> None:
    """Raise :class:`UnsafeOutputError` unless ``path`` is absent or a replaceable rocksr store."""
    problem = store_problem(path, partial=partial)
    if problem:
        raise UnsafeOutputError(
            f"{path}: {problem}; refusing to replace it (move it away or choose another output path)"
        )


def check_file_target(path: str | os.PathLike) -> None:
    """Raise :class:`UnsafeOutputError` unless ``path`` is absent or a regular file."""
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise UnsafeOutputError(f"{p}: is a dangling symbolic link; refusing to write through it")
    if p.exists() and not p.is_file():
        raise UnsafeOutputError(
            f"{p}: is a folder (or not a regular file); refusing to replace it with a file "
            "(move it away or choose another output path)"
        )
