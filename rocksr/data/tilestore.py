"""The tile dataset: a Zarr v3 store (arrays ``mct``, ``sem``) plus a manifest table.

The store is built in a temporary directory next to its target and renamed into place only when
every tile and the attributes are written; ``attrs["complete"]`` is set, then the digest manifest
(:mod:`rocksr.digests`) is written last. :func:`open_tiles` refuses a store without either and
checks every file's presence and size against the manifest (:func:`verify_store` with
``full=True`` re-hashes them). An existing target is replaced only if rocksr wrote it
(:mod:`rocksr.outputs`). Views are computed and written by a thread pool
(OpenCV and the Zarr codecs release the GIL), one shard at a time, so memory stays at a few
shards whatever the dataset size.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rocksr import digests
from rocksr.config.merge import section_defaults
from rocksr.config.store import Store
from rocksr.data.tiling import TileView, extract_view
from rocksr.data.zarr_io import remove_store_tree
from rocksr.errors import RocksrError, one_line
from rocksr.files import write_table
from rocksr.lifecycle import check_parent
from rocksr.outputs import STORE_MARK, check_store_target

MANIFEST_COLUMNS = [
    "tile_id",
    "sample",
    "grid_row",
    "grid_col",
    "y0",
    "x0",
    "angle",
    "footprint_y0",
    "footprint_x0",
    "footprint_size",
    "view",
    "image_height",
    "image_width",
]


# `workers` is how many threads write tiles: a runtime setting, not part of the config
STORE_DEFAULTS: dict = {**section_defaults(Store), "workers": 2}


log = logging.getLogger(__name__)


class StoreError(RocksrError, RuntimeError):
    """A tile store is missing, incomplete or inconsistent with its manifest."""


@dataclass(frozen=True)
class SamplePair:
    """One registered, normalized 8-bit pair in memory."""

    name: str
    mct: np.ndarray
    sem: np.ndarray
    mask: np.ndarray | None = None  # valid area (None: all of it)


DROPPED_COLUMNS = ["sample", "grid_row", "grid_col", "y0", "x0", "reason"]


def build_manifest(
    samples: Sequence[tuple[str, int, int]],
    size: int,
    stride: int,
    angles: Sequence[float],
    edge_tiles: str,
) -> pd.DataFrame:
    """Manifest rows (one per view) for ``(name, height, width)`` samples, in store order."""
    return plan_dataset(samples, size, stride, angles, edge_tiles)[0]


def plan_dataset(
    samples: Sequence[tuple[str, int, int]],
    size: int,
    stride: int,
    angles: Sequence[float],
    edge_tiles: str,
    masks: dict[str, np.ndarray | None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest, dropped tiles) for ``(name, height, width)`` samples with optional valid-area
    ``masks`` by name: the manifest has one row per view in store order, the dropped table one
    row per base tile with no view and why (:func:`rocksr.data.tiling.plan_grid`)."""
    from rocksr.data.tiling import outside_integral, plan_grid

    frames, dropped = [], []
    for name, h, w in samples:
        mask = (masks or {}).get(name)
        valid = None if mask is None else outside_integral(mask)
        views, gone = plan_grid(h, w, size, stride, list(angles), edge_tiles, valid)
        # the views' fields by name (dataclasses.asdict deep-copies each view: 5x slower)
        columns = list(TileView.__dataclass_fields__)
        df = pd.DataFrame([[getattr(v, c) for c in columns] for v in views], columns=columns)
        df.insert(0, "sample", name)
        df["image_height"] = h
        df["image_width"] = w
        frames.append(df)
        dropped += [{"sample": name, **d} for d in gone]
    manifest = pd.concat(frames, ignore_index=True)
    manifest.insert(0, "tile_id", np.arange(len(manifest), dtype=np.int64))
    return manifest[MANIFEST_COLUMNS], pd.DataFrame(dropped, columns=DROPPED_COLUMNS)


def read_dropped(path: str | os.PathLike) -> pd.DataFrame:
    """Read a dropped-tiles CSV (``dataset/dropped_tiles.csv``) and check its columns."""
    return _read_table(path, DROPPED_COLUMNS, "dropped-tiles table")


def _read_table(path: str | os.PathLike, columns: list[str], what: str) -> pd.DataFrame:
    """A CSV that must exist and hold ``columns`` (a :class:`StoreError` naming it if not)."""
    p = Path(path)
    if not p.is_file():
        raise StoreError(f"{p}: {what} does not exist")
    df = pd.read_csv(p)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise StoreError(f"{p}: {what} lacks columns {missing}")
    return df


def _compressors(name: str, level: int) -> list:
    from zarr.codecs import BloscCodec, ZstdCodec

    if name == "zstd":
        return [ZstdCodec(level=level)]
    if name == "lz4":
        return [BloscCodec(cname="lz4", clevel=level, shuffle="noshuffle")]
    if name == "none":
        return []
    raise ValueError(f"unknown compressor {name!r}; expected zstd, lz4 or none")


def _render_block(
    pairs: dict[str, SamplePair], rows: pd.DataFrame, size: int, interpolation: str
) -> tuple[np.ndarray, np.ndarray]:
    n = len(rows)
    mct = np.empty((n, size, size), dtype=np.uint8)
    sem = np.empty((n, size, size), dtype=np.uint8)
    for i, (sample, y0, x0, angle) in enumerate(
        rows[["sample", "y0", "x0", "angle"]].itertuples(index=False)
    ):
        pair = pairs[sample]
        mct[i] = extract_view(pair.mct, int(y0), int(x0), size, float(angle), interpolation)
        sem[i] = extract_view(pair.sem, int(y0), int(x0), size, float(angle), interpolation)
    return mct, sem


def _tmp_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial")


@contextlib.contextmanager
def building_group(out: str | os.PathLike) -> Iterator:
    """A new Zarr v3 group at ``.<name>.partial`` next to ``out``.

    ``out`` must be absent or a store rocksr wrote (checked before anything is written, and again
    before it is replaced; anything else raises :class:`~rocksr.outputs.UnsafeOutputError`).
    When the block ends normally, ``attrs["complete"]`` is set, the digest manifest is written
    last, and the group is renamed to ``out`` (replacing an old one); on any error the partial
    group is removed. Readers refuse groups without ``complete`` or without the manifest, so no
    half-written store is ever accepted downstream.
    """
    import zarr

    out = Path(out)
    check_store_target(out)
    tmp = _tmp_path(out)
    check_store_target(tmp, partial=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_store_tree(tmp)
    try:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        group.attrs[STORE_MARK] = 1
        yield group
        group.attrs["complete"] = True
        digests.write_digests(tmp)
        check_parent()  # a job killed meanwhile publishes nothing
        check_store_target(out)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old.exists() and not out.exists():
                os.replace(old, out)  # put the previous store back
            raise
    except BaseException:
        with contextlib.suppress(OSError):  # the error being raised matters more
            remove_store_tree(tmp)  # after zarr's writes in flight (a SIGTERM may cut one)
        raise
    # published: removing the replaced store is housekeeping, not a reason to fail the job
    try:
        remove_store_tree(old)
    except OSError as exc:
        log.warning(
            "%s: could not remove the replaced store %s (%s); delete it by hand", out, old, exc
        )


def write_tiles(
    pairs: Sequence[SamplePair],
    manifest: pd.DataFrame,
    out: str | os.PathLike,
    size: int,
    attributes: dict,
    compressor: str = "lz4",
    level: int = 1,
    shard_tiles: int = 64,
    workers: int = 2,
    interpolation: str = "linear",
    progress: bool = True,
) -> None:
    """Render every manifest row of both modalities into a new Zarr store at ``out``."""
    from tqdm import tqdm

    by_name = {p.name: p for p in pairs}
    n = len(manifest)
    if n == 0:
        raise StoreError(f"{out}: no tiles to write (image too small for the tiling?)")
    shard = max(1, min(int(shard_tiles), n))
    # one chunk per tile; shards group `shard` tiles per file so the file count stays small
    use_shards = math.ceil(n / shard) < n
    with building_group(out) as group:
        arrays = {
            key: group.create_array(
                key,
                shape=(n, size, size),
                dtype="uint8",
                chunks=(1, size, size),
                shards=(shard, size, size) if use_shards else None,
                compressors=_compressors(compressor, level),
                fill_value=0,
                dimension_names=("tile", "y", "x"),
            )
            for key in ("mct", "sem")
        }

        def work(start: int) -> int:
            stop = min(start + shard, n)
            mct, sem = _render_block(by_name, manifest.iloc[start:stop], size, interpolation)
            arrays["mct"][start:stop] = mct
            arrays["sem"][start:stop] = sem
            return stop - start

        pool = ThreadPoolExecutor(max_workers=max(1, int(workers)))
        try:
            with tqdm(
                total=n, unit="tile", desc="tiles", disable=not progress, mininterval=2.0
            ) as bar:
                for done in pool.map(work, range(0, n, shard)):
                    bar.update(done)
        finally:  # on an error or SIGTERM, drop the queued shards instead of rendering them
            pool.shutdown(wait=True, cancel_futures=True)
        group.attrs.update({**attributes, "n_tiles": n, "tile_size": size})


VERIFY_SCOPE = "rocksr verify checks the workflow's Zarr stores (tiles.zarr, prediction stores)"
REBUILD = "rebuild it (delete it and re-run the stage that wrote it)"


def check_verifiable(path: str | os.PathLike) -> dict:
    """The group attributes of the store at ``path`` if ``rocksr verify`` can check it; raise
    :class:`StoreError` saying what it is otherwise: missing, a file, not a Zarr group, or an
    OME-Zarr image (``rocksr enhance`` output) that carries no digest manifest."""
    import zarr

    p = Path(path)
    if not p.exists():
        raise StoreError(f"{p}: no such store (the path does not exist)")
    if not p.is_dir():
        raise StoreError(f"{p}: is a file, not a Zarr store; {VERIFY_SCOPE}")
    if not any((p / meta).is_file() for meta in ("zarr.json", ".zgroup")):
        raise StoreError(f"{p}: is a folder without zarr.json, not a Zarr store; {VERIFY_SCOPE}")
    try:
        attrs = dict(zarr.open_group(str(p), mode="r").attrs)
    except Exception as exc:  # noqa: BLE001 (zarr raises many types for a broken store)
        raise StoreError(
            f"{p}: is not a readable Zarr group ({one_line(exc)}); {VERIFY_SCOPE}"
        ) from exc
    if (p / digests.DIGESTS_FILE).exists():
        return attrs
    if attrs.get(STORE_MARK) == "enhance":
        raise StoreError(
            f"{p}: is an OME-Zarr image written by `rocksr enhance`, which records no digest "
            f"manifest to check it against; {VERIFY_SCOPE}, not enhance outputs (re-run "
            "`rocksr enhance` if in doubt)"
        )
    if "ome" in attrs:
        raise StoreError(f"{p}: is an OME-Zarr image not written by rocksr; {VERIFY_SCOPE}")
    return attrs


def _decode_problem(p: Path) -> str | None:
    """The first data file of the store at ``p`` that is missing or does not decode, described
    by array and tile range (None: every chunk of every array is present and decodes)."""
    import zarr

    group = zarr.open_group(str(p), mode="r")
    names = sorted(d.name for d in p.iterdir() if d.is_dir() and (d / "zarr.json").is_file())
    for name in names:
        try:
            arr = group[name]
        except Exception as exc:  # noqa: BLE001 (zarr raises many types for broken metadata)
            return f"{digests.describe(p, f'{name}/zarr.json')} cannot be read ({one_line(exc)})"
        if not isinstance(arr, zarr.Array):
            continue
        outer = arr.metadata.chunk_grid.chunk_shape  # a shard's shape when sharded
        grid = [math.ceil(s / c) for s, c in zip(arr.shape, outer, strict=True)]
        for idx in np.ndindex(*grid):
            key = arr.metadata.encode_chunk_key(idx)
            if not (p / name / key).is_file():
                return f"{digests.describe(p, f'{name}/{key}')} is missing"
            try:
                arr[tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, outer, strict=True))]
            except Exception as exc:  # noqa: BLE001 (codecs raise many types)
                where = digests.describe(p, f"{name}/{key}")
                return f"{where} cannot be decoded ({one_line(exc)})"
    return None


def _no_manifest(p: Path, what: str, decoded: bool) -> StoreError:
    checked = (
        "every chunk decodes, but decoding does not catch every changed byte, so "
        if decoded
        else ""
    )
    return StoreError(
        f"{p}: {what} has no digest manifest ({digests.DIGESTS_FILE}): it was written by an older "
        f"rocksr, not completely, or the manifest was removed; {checked}it cannot be proven "
        f"intact. The safe path: {REBUILD}. Only if you know its data are good, record one with "
        f"`rocksr verify --write-manifest {p}` (it first checks that every chunk decodes)"
    )


def verify_store(path: str | os.PathLike, full: bool = False, what: str = "store") -> None:
    """Check a finished store's files against its digest manifest; raise :class:`StoreError`
    naming the store, the array and the tile range of every problem.

    ``full=False`` (every reader, on open): presence and size of every file. ``full=True``
    (``rocksr verify``): also what the path is (:func:`check_verifiable`) and every file's
    SHA-256; a store without a manifest is decoded in full, to tell a damaged one from one that
    merely cannot be proven intact.
    """
    p = Path(path)
    attrs = check_verifiable(p) if full else {}
    try:
        doc = digests.read_digests(p)
    except ValueError as exc:
        raise StoreError(f"{p}: {exc}; rebuild the {what}") from exc
    if doc is None:
        if not full:
            raise _no_manifest(p, what, decoded=False)
        if not attrs.get("complete", False):
            raise StoreError(
                f"{p}: {what} is incomplete (an interrupted build?) and has no digest manifest; "
                f"{REBUILD}"
            )
        problem = _decode_problem(p)
        if problem:
            raise StoreError(
                f"{p}: damaged {what}: {problem}; it has no digest manifest either; {REBUILD}"
            )
        raise _no_manifest(p, what, decoded=True)
    problems = digests.verify(p, doc, full=full)
    if problems:
        more = f" (and {len(problems) - 5} more problems)" if len(problems) > 5 else ""
        raise StoreError(f"{p}: damaged {what}: " + "; ".join(problems[:5]) + more + f"; {REBUILD}")


def certify_store(path: str | os.PathLike) -> int:
    """Record a digest manifest for a complete store written without one (older rocksr), after
    checking that every data file is present and every chunk decodes. Decoding cannot catch
    every changed byte, so this vouches for the data only as they are now: for a user who knows
    they are good. Returns the number of files recorded; raises :class:`StoreError` (and writes
    nothing) when the store cannot be vouched for."""
    p = Path(path)
    attrs = check_verifiable(p)
    try:
        has_manifest = digests.read_digests(p) is not None
    except ValueError as exc:
        raise StoreError(f"{p}: {exc}; {REBUILD}") from exc
    if has_manifest:
        raise StoreError(f"{p}: already has a digest manifest; use `rocksr verify {p}`")
    if not attrs.get("complete", False):
        raise StoreError(f"{p}: store is incomplete (an interrupted build?); {REBUILD}")
    problem = _decode_problem(p)
    if problem:
        raise StoreError(
            f"{p}: {problem}; refusing to record a digest manifest for a damaged store; {REBUILD}"
        )
    return len(digests.write_digests(p)["files"])


def open_tiles(path: str | os.PathLike):
    """Open a finished tile store read-only; refuse a partial, foreign or damaged one."""
    import zarr

    p = Path(path)
    if not p.exists():
        raise StoreError(f"{p}: tile store does not exist")
    try:
        group = zarr.open_group(str(p), mode="r")
    except Exception as exc:
        raise StoreError(f"{p}: not a readable Zarr store ({exc})") from exc
    if not group.attrs.get("complete", False):
        raise StoreError(f"{p}: tile store is incomplete (an interrupted build?); rebuild it")
    verify_store(p, what="tile store")
    for key in ("mct", "sem"):
        if key not in group:
            raise StoreError(f"{p}: tile store has no array {key!r}")
    if group["mct"].shape != group["sem"].shape:
        raise StoreError(f"{p}: arrays mct and sem differ in shape")
    return group


def write_manifest(manifest: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the manifest CSV atomically."""
    write_table(manifest, path)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV and check its columns."""
    df = _read_table(path, MANIFEST_COLUMNS, "manifest")
    p = Path(path)
    if not np.array_equal(df["tile_id"].to_numpy(), np.arange(len(df))):
        raise StoreError(f"{p}: tile_id must be 0..N-1 in order")
    return df
