"""The digest manifest of a Zarr store: what rocksr wrote, so that readers can tell if it is intact.

``<store>/rocksr-digests.json`` lists every file of the store (relative path, size in bytes,
SHA-256) and is written **last**, after all data and attributes, just before the store is
renamed into place: a store without it is incomplete by construction. Readers compare the file
list and sizes with the disk when they open a store (one ``stat`` per file, no decoding);
:func:`verify` with ``full=True`` (``rocksr verify STORE``) also re-hashes every file. Each
problem is described by array and tile range (``array 'mct', data file c/3/0/0, tiles 48-63``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from rocksr.files import sha256_file
from rocksr.outputs import DIGESTS_FILE, TOOL_FILES

FORMAT = "rocksr-digests/1"


def disk_files(root: Path) -> dict[str, int]:
    """``{relative posix path: size}`` of every regular file under ``root`` but the manifest."""
    out: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if rel != DIGESTS_FILE and rel not in TOOL_FILES:
                out[rel] = full.stat().st_size
    return out


def write_digests(root: str | os.PathLike) -> dict:
    """Hash every file of the store at ``root`` and write the manifest (atomically, fsynced)."""
    root = Path(root)
    files = {
        rel: {"size": size, "sha256": sha256_file(root / rel)}
        for rel, size in sorted(disk_files(root).items())
    }
    doc = {"format": FORMAT, "files": files}
    from rocksr.files import atomic_file

    with atomic_file(root / DIGESTS_FILE, fsync=True) as tmp, open(tmp, "w") as fh:
        json.dump(doc, fh, indent=0, sort_keys=True)
    return doc


def read_digests(root: str | os.PathLike) -> dict | None:
    """The manifest of the store at ``root``; None when it has none; ValueError when unreadable."""
    path = Path(root) / DIGESTS_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"its digest manifest {DIGESTS_FILE} is unreadable ({exc})") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("format") != FORMAT
        or not isinstance(doc.get("files"), dict)
    ):
        raise ValueError(f"its digest manifest {DIGESTS_FILE} is not in format {FORMAT}")
    return doc


def _json(path: Path) -> dict:
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict):
            return doc
    return {}


def describe(root: str | os.PathLike, rel: str) -> str:
    """Where a store file belongs: ``array 'mct', data file c/3/0/0 (tiles 48-63)``."""
    root = Path(root)
    parts = rel.split("/")
    if parts == ["zarr.json"]:
        return "the store's group metadata zarr.json"
    array = parts[0]
    if parts[1:] == ["zarr.json"]:
        return f"array {array!r}, metadata zarr.json"
    key = "/".join(parts[1:])
    meta = _json(root / array / "zarr.json")
    nums = [int(x) for x in re.split(r"[/.]", key)[1:] if x.isdigit()]
    try:
        shape = meta["shape"]
        chunk = meta["chunk_grid"]["configuration"]["chunk_shape"]
        first, n = nums[0] * chunk[0], shape[0]
        last = min(first + chunk[0], n) - 1
    except (KeyError, IndexError, TypeError):
        return f"array {array!r}, file {key}"
    ids = _json(root / "zarr.json").get("attributes", {}).get("tile_ids")
    span = f"{first}-{last}" if last > first else f"{first}"
    if isinstance(ids, list) and len(ids) == n and array != "tile_ids":
        return f"array {array!r}, data file {key} (rows {span}, tile_ids {ids[first]}-{ids[last]})"
    return f"array {array!r}, data file {key} (tiles {span})"


def verify(root: str | os.PathLike, doc: dict, full: bool = False) -> list[str]:
    """Problems of the store at ``root`` against its manifest ``doc`` (empty list: intact).

    Always: every listed file exists with its recorded size, and no unlisted file was added.
    ``full``: also every file's SHA-256.
    """
    root = Path(root)
    want: dict[str, dict] = {rel: rec for rel, rec in doc["files"].items() if rel not in TOOL_FILES}
    have = disk_files(root)
    problems = []
    for rel, rec in want.items():
        if rel not in have:
            problems.append(f"{describe(root, rel)} is missing")
        elif have[rel] != int(rec["size"]):
            problems.append(
                f"{describe(root, rel)} has {have[rel]} bytes, {rec['size']} were "
                "written (truncated or overwritten)"
            )
        elif full and sha256_file(root / rel) != rec["sha256"]:
            problems.append(
                f"{describe(root, rel)} does not match its recorded SHA-256 (corrupted)"
            )
    problems += [
        f"{describe(root, rel)} was not written by rocksr (an added file)"
        for rel in sorted(set(have) - set(want))
    ]
    return problems
