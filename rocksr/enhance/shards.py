"""``rocksr enhance`` of one stack over many jobs: :class:`Part` (what ``--shard i/N`` enhances)
and :func:`gather_enhance` (the parts -> the output an unsharded run writes).

Shard ``i`` of ``N`` enhances the ``i``-th of ``N`` contiguous runs of the selected pages (their
sizes differ by at most one) into a TIFF *part*. Everything a slice's output depends on is
decided over the whole selection, as in one job: the black/white points of a stack are taken over
every selected page and the field of view on the first, and a slice's noise is seeded by its page
index, not by its place in a part. The part's report records its slices and the slice-to-slice
differences the stack's ``consistency`` needs (the input's across the part's first boundary too).
:func:`gather_enhance` checks that the parts are one run's complete set and writes, with the same
writer, the output and report one job writes: the same bytes, the report's timing aside.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rocksr.enhance.errors import EnhanceError
from rocksr.enhance.inputs import Source
from rocksr.enhance.normalization import Normalizer
from rocksr.enhance.outputs import (
    ENHANCE_TOOL,
    check_holds_stack,
    check_outputs,
    output_paths,
    output_writers,
    read_record,
)
from rocksr.enhance.report import (
    RUN_KEYS,
    consistency,
    mean_abs_diff,
    report_text,
    run_report,
)
from rocksr.errors import one_line

PART = "part"  # the provenance and report key of a part
GATHER = "rocksr gather-enhance"


@dataclass(frozen=True)
class Part:
    """Shard ``index`` of ``count``: the selected slices ``slices`` (positions in the selection)."""

    index: int
    count: int
    slices: range

    @classmethod
    def plan(
        cls, shard: tuple[int, int], src: Source, fmt: str, output: Path, report: object
    ) -> Part:
        """The part of ``src`` that shard ``(i, N)`` enhances; refuses a 2-D input, a part that is
        not a TIFF, a missing ``report`` (it carries what the gather needs) and more shards
        than selected slices."""
        index, count = shard
        if not 1 <= index <= count:
            raise EnhanceError(f"shard {index}/{count}: expected I/N with 1 <= I <= N")
        if not src.stack:
            raise EnhanceError(f"{src.path}: --shard splits a stack's pages; this is one image")
        if fmt != "tiff":
            raise EnhanceError(f"{output}: a shard's part is written as TIFF (.tif)")
        if report is None:
            raise EnhanceError(
                f"{output}: --shard needs --report (the part's report holds what "
                "`rocksr gather-enhance` needs)"
            )
        if count > src.n:
            raise EnhanceError(
                f"{src.path}: the selected pages hold {src.n} slice(s), fewer than the {count} "
                f"shards; use at most {src.n} shards"
            )
        base, extra = divmod(src.n, count)
        start = (index - 1) * base + min(index - 1, extra)
        return cls(index, count, range(start, start + base + (index <= extra)))

    def provenance(self, prov: dict) -> dict:
        """The provenance the part's files carry: the whole run's and which part this is."""
        return {**prov, PART: {"shard": [self.index, self.count], "slices": self.span}}

    @property
    def span(self) -> list[int]:
        return [self.slices.start, self.slices.stop]

    def input_diff_before(self, norm: Normalizer) -> float | None:
        """The normalized input's mean |slice - slice before| at the part's first slice (None
        for the first part); read before any output is written."""
        first = self.slices.start
        return None if first == 0 else mean_abs_diff(norm.slice(first), norm.slice(first - 1))

    def record(self, diffs_out: list[float], diffs_in: list[float], before: float | None) -> dict:
        """The report's ``part``: which part, and the slice-to-slice differences inside it and
        (the input's, ``before``) from the slice before it."""
        return {
            "shard": [self.index, self.count],
            "slices": self.span,
            "output_diffs": diffs_out,
            "input_diffs": diffs_in,
            "input_diff_before": before,
        }


def _read_part_report(path: Path) -> dict:
    what = f"{path}: is not the report of a `rocksr enhance --shard` part"
    try:
        rec = read_record(path, "json")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnhanceError(f"{what} ({exc})") from exc
    if not isinstance(rec, dict) or rec.get("tool") != ENHANCE_TOOL or PART not in rec:
        raise EnhanceError(what)
    problem = _report_problem(rec)
    if problem:
        raise EnhanceError(
            f"{path}: the part report is damaged ({problem}); re-run its `rocksr enhance --shard`"
        )
    return rec


def _ints(value: object, n: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _report_problem(rec: dict) -> str | None:
    """What is wrong with a part report's fields that the gather reads (None: nothing)."""
    part = rec[PART]
    if not isinstance(part, dict):
        return "part is not a mapping"
    if not _ints(part.get("shard"), 2) or not 1 <= part["shard"][0] <= part["shard"][1]:
        return f"shard {part.get('shard')!r}"
    if not _ints(part.get("slices"), 2) or not 0 <= part["slices"][0] < part["slices"][1]:
        return f"slices {part.get('slices')!r}"
    n = part["slices"][1] - part["slices"][0]
    for key in ("output_diffs", "input_diffs"):
        diffs = part.get(key)
        if not isinstance(diffs, list) or len(diffs) != n - 1 or not all(map(_number, diffs)):
            return f"{key} is not a list of {n - 1} number(s)"
    before = part.get("input_diff_before")
    if (before is None) != (part["slices"][0] == 0) or not (before is None or _number(before)):
        return f"input_diff_before {before!r}"
    if not _ints(rec.get("pages"), 2) or not _ints(rec.get("shape"), 3):
        return "pages or shape"
    if not _ints([rec.get("samples"), rec.get("n_tiles_per_slice")], 2):
        return "samples or n_tiles_per_slice"
    if not _number(rec.get("seconds")) or "sampler" not in rec:
        return "seconds or sampler"
    return None


def run_provenance(report: dict) -> dict:
    """The provenance one job writes, from a part's report (run fields and part removed)."""
    return {k: v for k, v in report.items() if k not in RUN_KEYS and k != PART}


def _check_parts(parts: Sequence[Path], reports: Sequence[dict]) -> list[int]:
    """The order of ``parts`` by shard index; refuses anything but one run's complete set of
    contiguous parts, each TIFF carrying its own report's provenance."""
    count = len(parts)
    indexes = []
    for path, rec in zip(parts, reports, strict=True):
        i, n = rec[PART]["shard"]
        if n != count:
            raise EnhanceError(f"{path}: is part {i} of {n}, but {count} part(s) were given")
        indexes.append(i)
    if sorted(indexes) != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(indexes))
        raise EnhanceError(f"parts {missing} of {count} are missing (a part was given twice)")
    base = run_provenance(reports[0])
    for path, rec in zip(parts, reports, strict=True):
        if rec["shape"][1:] != reports[0]["shape"][1:]:
            raise EnhanceError(
                f"{path}: holds slices of {rec['shape'][1:]} px, {parts[0]} of "
                f"{reports[0]['shape'][1:]} (parts of different inputs)"
            )
        prov = run_provenance(rec)
        if prov != base:
            keys = sorted(k for k in base.keys() | prov.keys() if base.get(k) != prov.get(k))
            raise EnhanceError(
                f"{path}: is a part of another run than {parts[0]} (they differ in {keys})"
            )
    order = sorted(range(count), key=lambda k: indexes[k])
    first, last = base["pages"]
    stop = 0
    for k in order:
        lo, hi = reports[k][PART]["slices"]
        if lo != stop or hi <= lo:
            raise EnhanceError(f"{parts[k]}: holds slices {lo}-{hi - 1}, expected from {stop}")
        stop = hi
    if stop != last - first + 1:
        raise EnhanceError(f"the parts hold {stop} slices, the run {last - first + 1}")
    return order


def _part_files(part: Path, rec: dict) -> dict[str, Path]:
    """The part's files by output key, each checked to carry the part's provenance."""
    files = output_paths(part, rec["samples"] > 1)
    prov = {**run_provenance(rec), PART: {k: rec[PART][k] for k in ("shard", "slices")}}
    for path in files.values():
        try:
            found = read_record(path, "tiff")
        except Exception as exc:  # noqa: BLE001 (missing, not a TIFF, no record: not this part)
            raise EnhanceError(f"{path}: cannot read the part ({exc})") from exc
        found = {k: v for k, v in found.items() if k != "array"}
        if found != prov:
            raise EnhanceError(f"{path}: does not carry the provenance its report records")
    return files


def gather_enhance(
    parts: Sequence[str | os.PathLike],
    part_reports: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    report: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict:
    """Assemble the TIFF parts of ``rocksr enhance --shard i/N`` (any order, with their reports)
    into ``output`` (TIFF or OME-Zarr, with ``_mean``/``_std`` for K > 1) as one job writes it;
    returns the report (also written to ``report``): one job's, with ``seconds`` the parts' sum."""

    from rocksr.files import write_text

    t_start = time.perf_counter()
    parts, rep_paths = [Path(p) for p in parts], [Path(p) for p in part_reports]
    if not parts or len(parts) != len(rep_paths):
        raise EnhanceError(f"{len(parts)} part(s) and {len(rep_paths)} report(s): give one each")
    reports = [_read_part_report(p) for p in rep_paths]
    order = _check_parts(parts, reports)
    prov = run_provenance(reports[0])
    files = [_part_files(parts[k], reports[k]) for k in order]
    out_path = Path(output)
    targets = output_paths(out_path, prov["samples"] > 1)
    written = {**targets, **({"report": Path(report)} if report is not None else {})}
    part_paths = [p for f in files for p in f.values()]
    sources = {f"part {p}": p for p in [*part_paths, *rep_paths]}
    fmts = check_outputs(written, sources, overwrite)
    check_holds_stack(fmts["pred"], out_path, True)
    h, w = reports[0]["shape"][-2:]
    shape = (prov["pages"][1] - prov["pages"][0] + 1, h, w)
    stochastic = prov["sampler"] is not None
    diffs_out: list[float] = []
    diffs_in: list[float] = []
    with output_writers(targets, fmts, shape, prov, stochastic) as outs:
        z, prev = 0, None
        for k, part_files in zip(order, files, strict=True):
            rec = reports[k][PART]
            n = rec["slices"][1] - rec["slices"][0]
            slices = _read_part(part_files, n, (h, w))
            first = next(slices)
            if prev is not None:  # the differences across the part's first boundary
                diffs_out.append(mean_abs_diff(first["pred"], prev))
                diffs_in.append(rec["input_diff_before"])
            diffs_out += rec["output_diffs"]
            diffs_in += rec["input_diffs"]
            for arrays in itertools.chain([first], slices):
                for key, o in outs.items():
                    o.write(z, arrays[key])
                z += 1
                prev = arrays["pred"]
    seconds = sum(r["seconds"] for r in reports)  # the parts' compute time
    stack = consistency(diffs_out, diffs_in)
    tiles = reports[0]["n_tiles_per_slice"]
    result = run_report(prov, targets, fmts["pred"], shape, tiles, shape[0], seconds, stack)
    result["shards"] = len(reports)
    result["gather_seconds"] = time.perf_counter() - t_start
    if report is not None:
        write_text(report_text(result), report)
    return result


def _read_part(files: dict[str, Path], n: int, size: tuple[int, int]) -> Iterator[dict]:
    """The ``n`` slices of a part, one ``{key: array}`` at a time; a file that does not hold
    ``n`` slices of ``size`` or does not decode is a one-line error naming it."""
    import tifffile

    tifs: dict[str, tifffile.TiffFile] = {}
    try:
        for key, path in files.items():
            try:
                tifs[key] = tifffile.TiffFile(path)
            except Exception as exc:  # noqa: BLE001 (tifffile raises many types)
                raise EnhanceError(f"{path}: cannot read the part ({one_line(exc)})") from exc
            if len(tifs[key].pages) != n:
                raise EnhanceError(f"{path}: holds {len(tifs[key].pages)} slice(s), not {n}")
        for j in range(n):
            arrays = {}
            for key, tif in tifs.items():
                try:
                    arrays[key] = tif.pages[j].asarray()
                except Exception as exc:  # noqa: BLE001 (damaged data: zlib, tifffile errors)
                    raise EnhanceError(
                        f"{files[key]}: cannot read slice {j} ({one_line(exc)})"
                    ) from exc
                if arrays[key].shape != size:
                    raise EnhanceError(f"{files[key]}: slice {j} is not {size[0]}x{size[1]}")
            yield arrays
    finally:
        for tif in tifs.values():
            tif.close()
