"""Benchmark: build the dataset at the study's geometry from a synthetic 6100x6100 pair.

Prints wall time, tiles/s, peak RSS, store size on disk, and, in the same run, the per-view time
of the naive path (scikit-image ``rotate`` of the whole footprint, then crop) on a subsample,
so the speed-up is a ratio measured on this machine.

    python benchmarks/build_dataset.py [--size 6100] [--tile 512] [--stride 128] [--angles 18]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(size: int, work: str) -> None:
    from rocksr.data.synthetic import generate_pair
    from rocksr.files import write_image

    mct, sem = generate_pair(size, size, seed=1)
    write_image(Path(work) / "mct.tif", mct)
    write_image(Path(work) / "sem.tif", sem)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=6100)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--angles", type=int, default=18, help="number of angles, 360/n apart")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--naive-views", type=int, default=40)
    ap.add_argument(
        "--workdir", default=None, help="where to write the store (default: a temp dir)"
    )
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--compressor", default="lz4", choices=["lz4", "zstd", "none"])
    ap.add_argument("--level", type=int, default=1)
    a = ap.parse_args()

    from rocksr.data.tiling import extract_view, extract_view_naive
    from rocksr.stages.build_dataset import build_dataset

    work = Path(a.workdir or tempfile.mkdtemp(prefix="rocksr-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # generated in a child process so that the peak RSS below is the build's alone
    with ProcessPoolExecutor(1) as pool:
        pool.submit(_generate, a.size, str(work)).result()
    t_gen = time.perf_counter() - t0
    print(f"synthetic {a.size}x{a.size} pair generated in {t_gen:.1f} s (not part of the build)")

    angles = [360.0 * i / a.angles for i in range(a.angles)]
    tiling = {"size": a.tile, "stride": a.stride, "angles": angles, "edge_tiles": "unrotated"}
    rss_before = peak_rss_mib()
    t0 = time.perf_counter()
    manifest = build_dataset(
        [("bench", str(work / "mct.tif"), str(work / "sem.tif"))],
        work / "tiles.zarr",
        work / "manifest.csv",
        tiling,
        {"workers": a.workers, "compressor": a.compressor, "level": a.level},
        progress=False,
    )
    t_build = time.perf_counter() - t0
    n = len(manifest)
    size_gib = du(work / "tiles.zarr") / 2**30
    raw_gib = 2 * n * a.tile * a.tile / 2**30

    # naive path on a subsample of rotated views, same run, same machine
    from rocksr.data.images import read_image

    img = read_image(work / "mct.tif")
    rot = manifest[(manifest["view"] == "rotated") & (manifest["angle"] % 90 != 0)]
    sub = rot.sample(min(a.naive_views, len(rot)), random_state=0)
    t0 = time.perf_counter()
    for r in sub.itertuples():
        extract_view_naive(img, r.y0, r.x0, a.tile, r.angle)
    t_naive = (time.perf_counter() - t0) / len(sub)
    t0 = time.perf_counter()
    for r in sub.itertuples():
        extract_view(img, r.y0, r.x0, a.tile, r.angle)
    t_fast = (time.perf_counter() - t0) / len(sub)
    # the build writes 2 views (mct + sem) per manifest row
    t_build_per_view = t_build / (2 * n)

    print(f"views (manifest rows): {n} ({manifest['view'].value_counts().to_dict()})")
    print(
        f"build wall time:       {t_build:.1f} s  ({n / t_build:.0f} tiles/s, {2 * n / t_build:.0f} views/s incl. both modalities)"
    )
    print(f"peak RSS:              {peak_rss_mib():.0f} MiB (before build: {rss_before:.0f} MiB)")
    print(f"store on disk:         {size_gib:.2f} GiB (uncompressed {raw_gib:.2f} GiB)")
    print(f"naive view (skimage rotate of footprint + crop): {t_naive * 1e3:.2f} ms/view")
    print(f"fast view  (OpenCV inverse warp, one thread):    {t_fast * 1e3:.2f} ms/view")
    print(f"build, end to end, per view:                     {t_build_per_view * 1e3:.3f} ms/view")
    print(
        f"speed-up vs naive: {t_naive / t_fast:.1f}x per view (kernel), {t_naive / t_build_per_view:.1f}x end to end"
    )
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
