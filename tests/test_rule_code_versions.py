"""Each rule's code hash covers every rocksr module its command really runs.

A rule's `code` param is `stage_hash("<stage>")`: the hash of the import closure of
`rocksr.stages.<stage>`, found by reading the source (rocksr.codehash). Here each evaluation
rule's CLI command is run on tiny data in a fresh interpreter (heavy third-party libraries
imported once, then one forked child per command, so every child starts without rocksr), and
every rocksr module that the command loads while it runs (after `rocksr.cli` and the stage
modules it declares are imported) must lie in the static closure of the rule's stage.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
from test_predict import make_checkpoint, make_dataset

from rocksr.codehash import import_closure

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow" / "rules" / "evaluate.smk"

_CHILD = r"""
import json, os, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot, numpy, pandas, scipy.ndimage, torch, zarr, diffusers, tqdm  # noqa
torch.set_num_threads(1)
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        assert not [m for m in sys.modules if m.startswith("rocksr")]
        from rocksr.cli import main
        before = set(sys.modules)
        rc = main(argv)
        mods = sorted(m for m in set(sys.modules) - before if m.startswith("rocksr."))
        os.write(w, json.dumps({"rc": rc, "mods": mods}).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    results[name] = json.loads(data) if data else {"rc": "crashed", "mods": []}
print(json.dumps(results))
"""


def rule_stages() -> dict[str, str]:
    """rule name -> the stage of its `code=stage_hash("<stage>")` or
    `code=kind_hash("<stage>", ...)` param."""
    out = {}
    for block in re.split(r"^rule ", RULES.read_text(), flags=re.M)[1:]:
        name = block.split(":", 1)[0].strip()
        m = re.search(r'(?:stage|kind)_hash\("(\w+)"', block)
        assert m, f"rule {name} has no stage_hash(...) or kind_hash(...) param"
        out[name] = m.group(1)
    return out


# the model kind each command loads by name (its module is part of the rule's hash)
COMMAND_KINDS = {"predict": "ddpm", "predict_cgan": "cgan", "sampler_study": "ddpm"}


def test_stage_hashes_cover_the_modules_each_command_runs(tmp_path: Path) -> None:
    store, manifest, splits = make_dataset(tmp_path)
    ddpm = make_checkpoint(tmp_path / "ddpm.pt", "ddpm")
    cgan = make_checkpoint(tmp_path / "cgan.pt", "cgan")
    hist = tmp_path / "history.csv"
    pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.5]}).to_csv(hist, index=False)
    d = {k: str(v) for k, v in {"store": store, "splits": splits, "manifest": manifest}.items()}
    p = {n: str(tmp_path / f"{n}.zarr") for n in ("ddpm", "cgan", "identity", "histmatch", "mean")}
    common = ["--store", d["store"], "--splits", d["splits"]]
    preds = [f"{n}={path}" for n, path in p.items()]
    commands = {
        "predict": [
            "predict",
            "--checkpoint",
            str(ddpm),
            *common,
            "--out",
            p["ddpm"],
            "--steps",
            "2",
            "--n-samples",
            "2",
            "--device",
            "cpu",
        ],
        "predict_cgan": [
            "predict",
            "--checkpoint",
            str(cgan),
            *common,
            "--out",
            p["cgan"],
            "--device",
            "cpu",
        ],
        **{
            f"baseline_{b}": [
                "baseline",
                "--name",
                b,
                *common,
                "--out",
                p[b],
                "--lut",
                str(tmp_path / "lut.json"),
            ]
            for b in ("identity", "histmatch", "mean")
        },
        "evaluate": [
            "evaluate",
            "--predictions",
            *preds,
            *common,
            "--manifest",
            d["manifest"],
            "--out-per-tile",
            str(tmp_path / "per.csv"),
            "--out-table",
            str(tmp_path / "t.csv"),
            "--out-markdown",
            str(tmp_path / "t.md"),
        ],
        "figures": [
            "figures",
            "--predictions",
            *preds,
            "--models",
            "cgan",
            "ddpm",
            "--histories",
            f"cgan={hist}",
            f"ddpm={hist}",
            "--per-tile",
            str(tmp_path / "per.csv"),
            *common,
            "--out-figure2",
            str(tmp_path / "f2.png"),
            "--out-figure3",
            str(tmp_path / "f3.png"),
            "--out-curves",
            str(tmp_path / "c.png"),
        ],
        "uncertainty_figure": [
            "uncertainty-figure",
            "--predictions",
            f"ddpm={p['ddpm']}",
            *common,
            "--out",
            str(tmp_path / "u.png"),
        ],
        "sampler_study": [
            "sampler-study",
            "--checkpoint",
            str(ddpm),
            *common,
            "--configs",
            '[{"sampler": "ddim", "steps": 2}]',
            "--n-tiles",
            "1",
            "--device",
            "cpu",
            "--out-csv",
            str(tmp_path / "s.csv"),
            "--out-png",
            str(tmp_path / "s.png"),
            "--out-md",
            str(tmp_path / "s.md"),
        ],
    }
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(commands)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    stages = rule_stages()
    assert set(stages) >= {
        "predict",
        "baseline",
        "evaluate",
        "figures",
        "uncertainty_figure",
        "sampler_study",
    }
    for cmd, res in results.items():
        assert res["rc"] == 0, (cmd, r.stderr[-3000:])
        rule = cmd.split("_")[0] if cmd.startswith(("predict", "baseline")) else cmd
        closure = set(import_closure(f"rocksr.stages.{stages[rule]}"))
        if cmd in COMMAND_KINDS:
            closure |= set(import_closure(f"rocksr.kinds.{COMMAND_KINDS[cmd]}"))
        missing = sorted(set(res["mods"]) - closure)
        assert not missing, f"rule {rule}: stage {stages[rule]} misses {missing}"
    # the check has teeth: prediction loads the model code only when it runs
    assert {"rocksr.inference", "rocksr.models.unet"} <= set(results["predict"]["mods"])
