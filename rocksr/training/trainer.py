"""The training loop shared by the cGAN and the conditional DDPM, with exact resume.

:class:`Trainer` (``fit`` / ``validate`` / ``save`` / ``resume``) owns data order, the
validation/checkpoint cadence, logging, outputs and SIGTERM; a model-specific *task*
(:mod:`rocksr.training.cgan_task`, :mod:`rocksr.training.ddpm_task`) owns the networks,
optimizers and the maths of one step, one validation pass and one batch of validation samples.
The trainer never imports a task or a network, so that each model's code hash covers only its
own code.

Exact resume: the data order is a pure function of (seed, epoch) (``rocksr.data.EpochSampler``),
training noise comes from a dedicated generator whose state is checkpointed, validation uses a
fresh fixed-seed generator each pass, and all other RNG states (python, numpy, torch, cuda) are
saved too.  On CPU an interrupted + resumed run ends bit-identical to an uninterrupted one.

Several processes (``torchrun``; :mod:`rocksr.training.distributed`) train one run together:
``batch_size`` stays the global batch, rank 0 validates and alone writes state and outputs, and
a run resumes the state of a run with another number of processes.

Timings apart (:mod:`rocksr.timing`): a checkpoint and ``history.csv`` hold no wall-clock value,
so the same config trained in two folders writes them byte for byte. The wall time, images per
second and GPU memory of each history row go to ``history_timing.csv`` beside ``history.csv``
and, with the training wall time so far, to ``state_dir/timing.json``, written with every
checkpoint (a resume continues them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rocksr.checkpoints import load_checkpoint, publish_checkpoint, save_atomic
from rocksr.config.loader import LOADER_KEYS
from rocksr.config.training import RESUMABLE_KEYS
from rocksr.data.torchdata import TileDataset, epoch_seed, make_loader
from rocksr.devices import resolve_device
from rocksr.errors import RocksrError
from rocksr.timing import timing_path
from rocksr.training.distributed import init_distributed
from rocksr.training.renders import save_sample_grid
from rocksr.training.runtime import Runtime, _gpu_mem, _StopFlag, seed_everything
from rocksr.training.state import (
    check_compatible,
    checkpoint_payload,
    diff_keys,
    load_state,
    set_rng_state,
)

log = logging.getLogger(__name__)


# Called after every optimizer step with the global step; tests use it to simulate a kill.
_after_step: Callable[[int], None] | None = None


# what a history row measures of the machine: in history_timing.csv, never in history.csv
TIMING_COLUMNS = ("img_per_s", "wall_s", "gpu_mem_mb", "gpu_peak_mb")


def write_history(history: list[dict], path: Path) -> None:
    """Write history rows (training metrics, or the timing rows) as a CSV, atomically."""
    import pandas as pd

    from rocksr.files import write_table

    write_table(pd.DataFrame(history), path)


class NonFiniteLossError(RocksrError, FloatingPointError):
    """A loss or validation metric became NaN or infinite: training stops, nothing is published."""


def check_finite(values: dict[str, float], where: str, kind: str, *, losses: bool = True) -> None:
    """Raise :class:`NonFiniteLossError` (naming ``where`` and the keys) on a NaN, or an infinite
    loss (``losses``: every value is one; else only keys naming a loss: PSNR may be inf)."""
    bad = {
        k: v
        for k, v in values.items()
        if math.isnan(float(v)) or ((losses or "loss" in k) and math.isinf(float(v)))
    }
    if bad:
        raise NonFiniteLossError(
            f"{kind} training diverged at {where}: "
            + ", ".join(f"{k} = {v}" for k, v in bad.items())
            + "; nothing was published (lower the learning rate, or check the data and config)"
        )


# --------------------------------------------------------------------------- main loop
def _total_steps(cfg: dict, steps_per_epoch: int) -> int:
    max_steps, epochs = cfg.get("max_steps"), cfg.get("epochs")
    cands = []
    if max_steps is not None:
        cands.append(int(max_steps))
    if epochs is not None:
        cands.append(int(epochs) * steps_per_epoch)
    if not cands:
        raise ValueError("set max_steps and/or epochs in the model config")
    return min(cands)


def run_fingerprint(cfg: dict, seed: int, store: str | Path, splits: str | Path) -> str:
    """Hash of what makes two training runs the same experiment: the resolved hyper-parameters
    (every default filled, so spelling out a default changes nothing; not the budget, logging or
    data-loading keys), seed, the split table's bytes and the tile store's provenance."""
    from rocksr.data.tilestore import open_tiles
    from rocksr.files import sha256_file

    attrs = dict(open_tiles(store).attrs)
    hyper = {k: v for k, v in cfg.items() if k not in RESUMABLE_KEYS and k != "data"}
    hyper["data"] = {k: v for k, v in cfg["data"].items() if k not in LOADER_KEYS}
    blob = json.dumps(
        {
            "hyper": hyper,
            "seed": seed,
            "splits": sha256_file(splits),
            "store": {
                k: attrs.get(k)
                for k in ("sources", "tiling", "tile_size", "stride", "angles", "n_tiles")
            },
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class Trainer:
    """Train one task (``task_cls(cfg, runtime, seed)``) on the train split of a tile store.

    Settings are keyword-only.  ``params`` is the model's config section plus ``{"data": ...}``.
    Resumes from ``state_dir/last.pt`` when present and compatible (raises
    ``IncompatibleCheckpointError`` when the architecture changed).  :meth:`fit` writes
    ``best_ckpt`` (a copy of the best-validation checkpoint), the history CSV, its timings
    (``timing_csv``, default ``<history>_timing.csv`` beside it) and validation renders
    (``samples_dir/step_XXXXXXX.png``); on SIGTERM it writes ``last`` and raises
    ``SystemExit(143)``.
    """

    def __init__(
        self,
        task_cls: type,
        *,
        store: str | Path,
        splits: str | Path,
        best_ckpt: str | Path,
        history_csv: str | Path,
        samples_dir: str | Path,
        state_dir: str | Path,
        params: dict,
        seed: int,
        device: str = "auto",
        timing_csv: str | Path | None = None,
    ) -> None:
        self.kind = task_cls.kind
        cfg = self.cfg = task_cls.resolve_config(dict(params))
        self.seed = seed
        self.store, self.splits = store, splits
        self.best_ckpt, self.history_csv = Path(best_ckpt), Path(history_csv)
        self.timing_csv = Path(timing_csv) if timing_csv else timing_path(self.history_csv)
        self.state_dir, self.samples_dir = Path(state_dir), Path(samples_dir)
        self.last_path = self.state_dir / "last.pt"
        self.best_path = self.state_dir / "best.pt"
        self.timing_json = self.state_dir / "timing.json"
        self.dist, device = init_distributed(resolve_device(device))
        self.device = dev = torch.device(device)
        seed_everything(seed)
        self.rt = rt = Runtime(cfg, dev, self.dist)
        self.task = task = task_cls(cfg, rt, seed)
        log.info(
            "%s on %s (precision %s, channels_last %s, compile %s); %s parameters",
            self.kind,
            dev,
            rt.precision,
            rt.channels_last,
            rt.compile,
            {k: sum(p.numel() for p in m.parameters()) for k, m in task.models().items()},
        )
        data_cfg = cfg["data"]
        self.batch_size = bs = int(cfg["batch_size"])  # global: over all processes
        self.dist.local_batch(bs)
        self.train_ds = TileDataset(store, splits, "train")
        self.val_ds = TileDataset(store, splits, "val")
        if len(self.train_ds) == 0:
            raise ValueError(f"{splits}: the train split is empty")
        if self.dist.enabled and len(self.train_ds) < bs:
            raise ValueError(
                f"{splits}: the train split has {len(self.train_ds)} tiles, fewer than one batch "
                f"({bs}): train it in one process"
            )
        self.tile_size = int(self.train_ds[0][0].shape[-1])
        task.check_tiles(self.tile_size, store)
        if hasattr(task, "prepare_data"):  # e.g. the DDPM's prior, fitted on the train split
            task.prepare_data(store, splits)
        from rocksr.data.tilestore import open_tiles

        # what `rocksr enhance` needs to apply the model to new data like the training data
        self.data_record = {
            "tile_size": self.tile_size,
            "normalization": open_tiles(store).attrs.get("normalization"),
        }
        self.train_loader = make_loader(
            self.train_ds,
            bs,
            data_cfg,
            dev,
            seed,
            train=True,
            rank=self.dist.rank,
            world=self.dist.world,
        )
        self.val_loader = (
            make_loader(
                self.val_ds, int(cfg["val_batch_size"] or bs), data_cfg, dev, seed, train=False
            )
            if len(self.val_ds)
            else None
        )
        if self.val_loader is None:
            log.warning("validation split is empty: 'best' will be the last checkpoint")
        self.steps_per_epoch = len(self.train_loader)
        self.total = _total_steps(cfg, self.steps_per_epoch)
        self.val_every = int(cfg["val_every"])
        self.ckpt_every = int(cfg["ckpt_every"])
        self.log_every = int(cfg["log_every"])
        vmb = cfg["val_max_batches"]
        self.val_max_batches = None if vmb is None else int(vmb)
        self.n_renders = int(cfg["n_val_samples"])
        log.info(
            "train %d tiles (%d steps/epoch, batch %d), val %d tiles; %d steps in total",
            len(self.train_ds),
            self.steps_per_epoch,
            bs,
            len(self.val_ds),
            self.total,
        )
        self.fingerprint = run_fingerprint(cfg, seed, store, splits)
        self.gen = torch.Generator(device=dev).manual_seed(seed)
        self.select_mode = getattr(task, "select_mode", "min")
        # everything the loop carries between steps (checkpointed, so resume is exact), incl.
        # the running sums of the current logging window
        self.progress: dict[str, Any] = {
            "step": 0,
            "epoch": 0,
            "batch_in_epoch": 0,
            "best_val": self._worst(),
            "best_step": -1,
            "log_sums": {},
            "log_n": 0,
            "pending_val": False,
        }
        # wall seconds of training so far, validation included, summed over resumptions (the
        # budget table's training time; a resumed job's benchmark counts one attempt): kept in
        # timing.json beside the state, never in a checkpoint
        self.train_wall_s = 0.0
        self._t_wall = time.perf_counter()
        self.history: list[dict] = []  # metrics: in every checkpoint and history.csv
        self.timing: list[dict] = []  # TIMING_COLUMNS per row: timing.json, history_timing.csv
        self._resume_all()
        task.prepare_validation(self.val_ds)
        self.fixed_val = None
        if self.val_loader is not None and self.n_renders > 0:
            pairs = [self.val_ds[i] for i in range(min(self.n_renders, len(self.val_ds)))]
            self.fixed_val = tuple(torch.stack([p[k] for p in pairs]) for k in (0, 1))

    def _worst(self) -> float:
        return -math.inf if self.select_mode == "max" else math.inf

    # ------------------------------------------------------------------ state
    def _resume_all(self) -> None:
        """:meth:`resume` in every process: rank 0 first, which settles the state directory
        (sets aside broken or foreign state) before the others read it."""
        if self.dist.is_main:
            self.resume()
        self.dist.barrier()
        if not self.dist.is_main:
            self.resume()

    def resume(self) -> None:
        """Load ``last`` (or ``best`` when ``last`` is broken) if it belongs to this experiment;
        state of another experiment (other hyper-parameters, seed or data) is moved aside."""
        ckpt, last_broken = load_state(self.last_path)
        best_ok = self.best_path.exists() and load_state(self.best_path)[0] is not None
        if ckpt is None and last_broken and best_ok:
            ckpt = load_checkpoint(self.best_path, map_location="cpu")
            log.warning("resuming from %s (step %d) instead", self.best_path, ckpt["step"])
            resumed_from = self.best_path
        else:
            resumed_from = self.last_path
        if ckpt is not None:
            check_compatible(ckpt, self.kind, self.task.arch, self.task.models(), resumed_from)
            if ckpt.get("fingerprint") != self.fingerprint:
                self._set_aside_state(ckpt, resumed_from)
                ckpt = None
        if ckpt is None and self._restore_kept_state():
            self.resume()  # the kept state of this very experiment
            return
        if ckpt is None:
            if self.best_path.exists():
                self.best_path.unlink()  # stale: belongs to a run whose `last` is gone
            return
        changed = diff_keys(ckpt["config"], self.cfg)
        if changed or ckpt.get("seed") != self.seed:
            log.warning(
                "resuming with a changed (compatible) config: %s%s",
                changed,
                f"; seed {ckpt.get('seed')} -> {self.seed}"
                if ckpt.get("seed") != self.seed
                else "",
            )
        self.task.load(ckpt)
        set_rng_state(ckpt["rng"], self.gen)
        self.progress = {k: ckpt.get(k, v) for k, v in self.progress.items()}
        self.history = [
            {k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in ckpt["history"]
        ]
        self._resume_timing(ckpt)
        if not self.best_path.exists() and self.progress["best_step"] >= 0:
            log.warning(
                "%s is gone; the next improving validation (or the last state) becomes "
                "the best checkpoint",
                self.best_path,
            )
            self.progress["best_val"] = self._worst()
            self.progress["best_step"] = -1
        log.info(
            "resumed from %s at step %d (epoch %d)",
            resumed_from,
            self.progress["step"],
            self.progress["epoch"],
        )

    def _resume_timing(self, ckpt: dict) -> None:
        """The timings of the state resumed at ``ckpt``: ``timing.json`` (rows up to its step),
        or, from a checkpoint written before timings left it, its own."""
        rows, wall = None, None
        if self.timing_json.is_file():
            try:
                saved = json.loads(self.timing_json.read_text())
                rows, wall = list(saved["rows"]), float(saved["train_wall_s"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s is unreadable (%s); timings start over", self.timing_json, exc)
        if rows is None:  # older checkpoints held them
            rows = [
                {"phase": r.get("phase"), "step": r.get("step")}
                | {k: r[k] for k in TIMING_COLUMNS if k in r}
                for r in ckpt["history"]
            ]
            wall = float(ckpt.get("train_wall_s", 0.0))
        self.timing = [r for r in rows if int(r.get("step") or 0) <= int(ckpt["step"])]
        self.train_wall_s = wall or 0.0

    def _kept_name(self, fingerprint: str) -> Path:
        """``<state>.previous-<fingerprint[:16]>`` (``-2``, ``-3``… when taken): never reused."""
        base = f"{self.state_dir.name}.previous-{(fingerprint or 'unknown')[:16]}"
        path, n = self.state_dir.with_name(base), 1
        while path.exists():
            n += 1
            path = self.state_dir.with_name(f"{base}-{n}")
        return path

    def _set_aside_state(self, ckpt: dict, resumed_from: Path) -> None:
        """Keep the state of another experiment (same architecture; other hyper-parameters, seed,
        splits or tiles) under a name of its own, never deleting one, and start over."""
        kept = self._kept_name(str(ckpt.get("fingerprint") or ""))
        log.warning(
            "%s was trained with other hyper-parameters, seed or data (changed: %s); "
            "keeping that state as %s (resumed when its config comes back) and training "
            "from scratch",
            resumed_from,
            diff_keys(ckpt["config"], self.cfg) or "data/seed",
            kept,
        )
        self.state_dir.rename(kept)
        self.state_dir.mkdir(parents=True)

    def _restore_kept_state(self) -> bool:
        """Bring back a state kept by :meth:`_set_aside_state` whose fingerprint is this run's
        (a config changed and changed back); True when one was restored."""
        prefix = f"{self.state_dir.name}.previous-{self.fingerprint[:16]}"
        for kept in sorted(self.state_dir.parent.glob(prefix + "*")):
            ckpt, _ = load_state(kept / "last.pt")
            if ckpt is None or ckpt.get("fingerprint") != self.fingerprint:
                continue
            if self.state_dir.exists():
                if any(self.state_dir.iterdir()):
                    self.state_dir.rename(self._kept_name("partial"))
                else:
                    self.state_dir.rmdir()
            kept.rename(self.state_dir)
            log.warning(
                "%s holds the state of this experiment (step %d): restored as %s",
                kept,
                ckpt["step"],
                self.state_dir,
            )
            return True
        return False

    def wall_s(self) -> float:
        """Training wall seconds so far, over every attempt (updates ``train_wall_s``)."""
        now = time.perf_counter()
        self.train_wall_s += now - self._t_wall
        self._t_wall = now
        return self.train_wall_s

    def record(self, phase: str, step: int, values: dict, **timing: float) -> None:
        """One history row: ``values`` (losses or validation metrics) and the learning rate
        to ``history``; the wall time so far, GPU memory and ``timing`` to ``timing``."""
        key = {"phase": phase, "step": step}
        self.history.append(
            {**key, "epoch": self.progress["epoch"], **values, "lr": self.task.lr()}
        )
        self.timing.append({**key, **timing, "wall_s": self.wall_s(), **_gpu_mem(self.device)})

    def write_histories(self) -> None:
        """``history.csv`` (metrics) and ``history_timing.csv`` (timings); rank 0 only."""
        if not self.dist.is_main:
            return
        write_history(self.history, self.history_csv)
        write_history(self.timing, self.timing_csv)

    def save(self, path: Path) -> None:
        """Write the timings so far to ``timing.json``, then the complete training state to
        ``path`` (both atomically, the state with its digest): a state never has fewer timing
        rows than history rows, whatever interrupts the two writes. Rank 0 only."""
        from rocksr.files import write_text

        if not self.dist.is_main:
            return
        timing = {"train_wall_s": self.wall_s(), "rows": self.timing}
        write_text(json.dumps(timing, indent=1) + "\n", self.timing_json)
        save_atomic(
            checkpoint_payload(
                self.task,
                self.kind,
                self.cfg,
                self.seed,
                self.progress,
                self.gen,
                self.history,
                self.fingerprint,
                self.data_record,
            ),
            path,
        )

    # ------------------------------------------------------------------ validation
    def render(self, step: int) -> None:
        """Validation renders of the fixed validation tiles at ``step`` (rank 0)."""
        if self.fixed_val is not None and self.dist.is_main:
            pred = self.task.predict(self.fixed_val[0])
            save_sample_grid(
                self.samples_dir / f"step_{step:07d}.png",
                self.fixed_val[0],
                pred.cpu(),
                self.fixed_val[1],
                title=f"{self.kind} step {step}",
            )

    def validate(self, step: int) -> None:
        """One validation pass: history row, best checkpoint when improved, renders. With
        several processes rank 0 validates and sends the metrics to the others, which take the
        same decisions (learning rate, best step) from them."""
        t0 = time.perf_counter()
        if self.val_loader is None:
            return
        progress = self.progress
        m = None
        if self.dist.is_main:
            m = self.task.validate(self.val_loader, self.val_max_batches)
        m = self.dist.broadcast(m)
        check_finite(m, f"the validation at step {step}", self.kind, losses=False)
        self.task.after_validation(m)
        score = m[self.task.select_key]
        improved = (
            score > progress["best_val"]
            if self.select_mode == "max"
            else score < progress["best_val"]
        )
        if improved:
            progress["best_val"], progress["best_step"] = float(score), step
        self.record("val", step, m)
        mem = _gpu_mem(self.device)
        log.info(
            "step %d val %s%s (%.1fs)%s",
            step,
            {k: round(v, 5) for k, v in m.items()},
            " *best*" if improved else "",
            time.perf_counter() - t0,
            f"; GPU memory {mem['gpu_mem_mb']:.0f} MiB (peak {mem['gpu_peak_mb']:.0f} MiB)"
            if mem
            else "",
        )
        if improved:
            self.save(self.best_path)
        self.render(step)

    # ------------------------------------------------------------------ training
    def _log_window(self, step: int, out: dict, bar: Any) -> None:
        """Add one step's losses to the logging window; at its end, write a history row."""
        progress = self.progress
        sums = progress["log_sums"]
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + v
        progress["log_n"] += 1
        if step % self.log_every == 0 or step == self.total:
            n = progress["log_n"]
            row = {k: v / n for k, v in sums.items()}
            ips = n * self.batch_size / (time.perf_counter() - self._t_log)
            self.record("train", step, row, img_per_s=ips)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items()})
            log.debug("step %d %s", step, row)
            progress["log_sums"], progress["log_n"] = {}, 0
            self._t_log = time.perf_counter()

    def _after_batch(self, step: int, stop: _StopFlag) -> bool:
        """Epoch bookkeeping, validation and checkpoints after a step; True ends the epoch."""
        progress = self.progress
        if progress["batch_in_epoch"] >= self.steps_per_epoch:
            progress["epoch"] += 1
            progress["batch_in_epoch"] = 0
        if step % self.val_every == 0 or step == self.total:
            if stop.requested:  # checkpoint now, validate first thing on resume
                progress["pending_val"] = True
            else:
                self.validate(step)
        if _after_step is not None:
            _after_step(step)
        if step % self.ckpt_every == 0 or step == self.total or stop.requested:
            self.save(self.last_path)
            self.write_histories()
        return stop.requested or step >= self.total or progress["batch_in_epoch"] == 0

    def _epoch(self, stop: _StopFlag, bar: Any) -> None:
        """Train from the current position to the end of the epoch (or the budget, or SIGTERM)."""
        progress, loader = self.progress, self.train_loader
        # data order (and the loader's worker seeds) = f(seed, epoch): exact resume
        loader.sampler.set_epoch(progress["epoch"], progress["batch_in_epoch"] * self.batch_size)
        loader.generator.manual_seed(epoch_seed(self.seed, progress["epoch"]))
        for mct, sem in loader:
            out = self.task.train_step(self.rt.batch(mct), self.rt.batch(sem), self.gen)
            out = self.dist.mean(out, self.device)  # the losses of the global batch
            stop.requested = self.dist.any(stop.requested, self.device)  # stop together
            progress["step"] += 1
            check_finite(out, f"step {progress['step']}", self.kind)
            progress["batch_in_epoch"] += 1
            bar.update(1)
            self._log_window(progress["step"], out, bar)
            if self._after_batch(progress["step"], stop):
                return
        # the sampler ran dry before the epoch's count: close the epoch
        if progress["batch_in_epoch"]:
            progress["epoch"] += 1
            progress["batch_in_epoch"] = 0

    def fit(self) -> None:
        """Train to the step budget (resuming where the state left off), then publish."""
        from rocksr.progress import progress as progress_bar

        progress = self.progress
        self._t_log = self._t_wall = time.perf_counter()
        bar = progress_bar(
            self.total,
            f"train {self.kind}",
            initial=progress["step"],
            unit="step",
            disable=not self.dist.is_main,
        )
        if progress["pending_val"]:
            progress["pending_val"] = False
            self.validate(progress["step"])
        with _StopFlag() as stop:
            while progress["step"] < self.total and not stop.requested:
                self._epoch(stop, bar)
            stop_exit = stop.requested and progress["step"] < self.total
        bar.close()
        if stop_exit:
            log.warning(
                "stopped at step %d on SIGTERM; %s written, rerun to resume",
                progress["step"],
                self.last_path,
            )
            raise SystemExit(128 + signal.SIGTERM)
        self.publish()

    def publish(self) -> None:
        """Outputs of a finished run (also rewritten when re-run on a finished ``last``);
        rank 0 only."""
        from rocksr.lifecycle import check_parent

        if not self.dist.is_main:
            return
        progress = self.progress
        if not self.last_path.exists():
            self.save(self.last_path)
        check_parent()  # a job whose workflow or shell died publishes nothing
        if self.best_path.exists() and load_state(self.best_path)[0] is None:
            log.warning(
                "publishing the last state (step %d) as the best checkpoint instead",
                progress["step"],
            )
        if not self.best_path.exists():
            publish_checkpoint(self.last_path, self.best_path)
        publish_checkpoint(self.best_path, self.best_ckpt)  # verified before it is copied
        self.write_histories()
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        if not any(self.samples_dir.glob("step_*.png")):
            self.render(progress["step"])
        log.info(
            "done: %d steps; best %s=%.5g at step %d -> %s",
            progress["step"],
            getattr(self.task, "select_key", "val"),
            progress["best_val"],
            progress["best_step"],
            self.best_ckpt,
        )
