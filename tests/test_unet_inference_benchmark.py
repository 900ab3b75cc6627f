"""benchmarks/unet_inference.py prints old (one call) and new (rocksr's micro-batches) images x
steps per second and the largest output difference, in one run."""

from __future__ import annotations

import subprocess
import sys

from helpers_workflow import REPO


def test_prints_old_and_new_rates_and_the_largest_difference() -> None:
    cmd = [sys.executable, str(REPO / "benchmarks" / "unet_inference.py"), "--size", "32"]
    cmd += ["--batch", "4", "--steps", "2", "--repeats", "1", "--threads", "1"]
    only = ["--only", "rocksr", "microbatch_2", "onnxruntime_one_call"]
    r = subprocess.run([*cmd, *only], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in r.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| variant")
    }
    assert set(rows) == {"one_call", "rocksr", "microbatch_2", "onnxruntime_one_call"}, r.stdout
    assert rows["one_call"][2:] == ["1.00x", "0.00e+00"]
    for name in ("rocksr", "microbatch_2", "onnxruntime_one_call"):
        rate, speedup, diff = rows[name][1:]
        assert float(rate) > 0 and speedup.endswith("x") and float(diff) < 1e-4
