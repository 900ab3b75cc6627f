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

This module holds the loop (:class:`Trainer`: set-up, validation, epochs, ``fit``, publish);
resume, kept states and save are :mod:`rocksr.training.trainer_state`, the history, timings
and logging window :mod:`rocksr.training.history` (both mixed into :class:`Trainer`).
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rocksr.checkpoints import publish_checkpoint
from rocksr.data.torchdata import TileDataset, epoch_seed, make_loader
from rocksr.devices import resolve_device
from rocksr.errors import RocksrError
from rocksr.timing import timing_path
from rocksr.training.distributed import init_distributed
from rocksr.training.history import TIMING_COLUMNS, TrainerHistory, write_history
from rocksr.training.lr_schedule import lr_factor
from rocksr.training.renders import save_sample_grid
from rocksr.training.runtime import Runtime, StopFlag, gpu_memory, seed_everything
from rocksr.training.state import load_state
from rocksr.training.trainer_state import TrainerState, run_fingerprint

__all__ = [
    "TIMING_COLUMNS",
    "NonFiniteLossError",
    "Trainer",
    "check_finite",
    "run_fingerprint",
    "write_history",
]

log = logging.getLogger(__name__)


# Called after every optimizer step with the global step; tests use it to simulate a kill.
# Read at call time from this module, so setting ``trainer._after_step`` takes effect.
_after_step: Callable[[int], None] | None = None


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


class Trainer(TrainerState, TrainerHistory):
    """Train one task (``task_cls(cfg, runtime, seed)``) on the train split of a tile store.

    Settings are keyword-only.  ``params`` is the model's config section plus ``{"data": ...}``.
    Resumes from ``state_dir/last.pt`` when present and compatible (raises
    ``IncompatibleCheckpointError`` when the architecture changed).  :meth:`fit` writes
    ``best_ckpt`` (a copy of the best-validation checkpoint), the history CSV, its timings
    (``timing_csv``, default ``<history>_timing.csv`` beside it) and validation renders
    (``samples_dir/step_XXXXXXX.png``); on SIGTERM it writes ``last`` and raises
    ``SystemExit(143)``.  Resume and save: :class:`~rocksr.training.trainer_state.TrainerState`;
    history and timings: :class:`~rocksr.training.history.TrainerHistory`.
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
        self.cfg = task_cls.resolve_config(dict(params))
        self.seed = seed
        self.store, self.splits = store, splits
        self._setup_paths(best_ckpt, history_csv, samples_dir, state_dir, timing_csv)
        self._setup_runtime(task_cls, device)
        self._setup_data()
        self._setup_loaders()
        self.fingerprint = run_fingerprint(self.cfg, seed, store, splits)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.select_mode = getattr(self.task, "select_mode", "min")
        self.progress = self._new_progress()
        self._init_history()
        self._resume_all()
        self._setup_validation()

    # ------------------------------------------------------------------ setup
    def _setup_paths(
        self,
        best_ckpt: str | Path,
        history_csv: str | Path,
        samples_dir: str | Path,
        state_dir: str | Path,
        timing_csv: str | Path | None,
    ) -> None:
        """The output files and the state directory's files."""
        self.best_ckpt, self.history_csv = Path(best_ckpt), Path(history_csv)
        self.timing_csv = Path(timing_csv) if timing_csv else timing_path(self.history_csv)
        self.state_dir, self.samples_dir = Path(state_dir), Path(samples_dir)
        self.last_path = self.state_dir / "last.pt"
        self.best_path = self.state_dir / "best.pt"
        self.timing_json = self.state_dir / "timing.json"

    def _setup_runtime(self, task_cls: type, device: str) -> None:
        """Processes and device, the seeded RNGs, the runtime and the task."""
        self.dist, device = init_distributed(resolve_device(device))
        self.device = dev = torch.device(device)
        seed_everything(self.seed)
        self.rt = rt = Runtime(self.cfg, dev, self.dist)
        self.task = task = task_cls(self.cfg, rt, self.seed)
        # the configured rate of every parameter group, before a resume loads a scheduled one
        optimizers = getattr(task, "optimizers", lambda: [])()
        self._base_lrs = [[float(g["lr"]) for g in o.param_groups] for o in optimizers]
        self.warmup = int(self.cfg.get("warmup_steps", 0) or 0)
        self.lr_decay = self.cfg.get("lr_decay", "none")
        if (self.warmup or self.lr_decay != "none") and not optimizers:
            raise ValueError(
                f"{self.kind}: warmup_steps and lr_decay need the task's optimizers() method"
            )
        log.info(
            "%s on %s (precision %s, channels_last %s, compile %s); %s parameters",
            self.kind,
            dev,
            rt.precision,
            rt.channels_last,
            rt.compile,
            {k: sum(p.numel() for p in m.parameters()) for k, m in task.models().items()},
        )

    def _setup_data(self) -> None:
        """The train and validation datasets, checked against the batch size and the task."""
        store, splits = self.store, self.splits
        self.batch_size = bs = int(self.cfg["batch_size"])  # global: over all processes
        self.dist.local_batch(bs)
        in_memory = self.cfg["data"].get("in_memory", "auto")
        self.train_ds = TileDataset(store, splits, "train", in_memory=in_memory)
        self.val_ds = TileDataset(store, splits, "val", in_memory=in_memory)
        if len(self.train_ds) == 0:
            raise ValueError(f"{splits}: the train split is empty")
        if self.dist.enabled and len(self.train_ds) < bs:
            raise ValueError(
                f"{splits}: the train split has {len(self.train_ds)} tiles, fewer than one batch "
                f"({bs}): train it in one process"
            )
        self.tile_size = int(self.train_ds[0][0].shape[-1])
        self.task.check_tiles(self.tile_size, store)
        if hasattr(self.task, "prepare_data"):  # e.g. the DDPM's prior, fitted on the train split
            self.task.prepare_data(store, splits)
        from rocksr.data.tilestore import open_tiles

        # what `rocksr enhance` needs to apply the model to new data like the training data
        self.data_record = {
            "tile_size": self.tile_size,
            "normalization": open_tiles(store).attrs.get("normalization"),
        }

    def _setup_loaders(self) -> None:
        """The data loaders, the step budget and the validation/checkpoint/logging cadence."""
        cfg, data_cfg, bs, dev = self.cfg, self.cfg["data"], self.batch_size, self.device
        self.train_loader = make_loader(
            self.train_ds,
            bs,
            data_cfg,
            dev,
            self.seed,
            train=True,
            rank=self.dist.rank,
            world=self.dist.world,
        )
        self.val_loader = (
            make_loader(
                self.val_ds, int(cfg["val_batch_size"] or bs), data_cfg, dev, self.seed, train=False
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
            "train %d tiles (%d steps/epoch, batch %d over %d process(es)), val %d tiles; "
            "%d steps in total",
            len(self.train_ds),
            self.steps_per_epoch,
            bs,
            self.dist.world,
            len(self.val_ds),
            self.total,
        )

    def _setup_validation(self) -> None:
        """The task's validation set-up and the fixed validation tiles of the renders."""
        self.task.prepare_validation(self.val_ds)
        self.fixed_val = None
        if self.val_loader is not None and self.n_renders > 0:
            pairs = [self.val_ds[i] for i in range(min(self.n_renders, len(self.val_ds)))]
            self.fixed_val = tuple(torch.stack([p[k] for p in pairs]) for k in (0, 1))

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
        mem = gpu_memory(self.device)
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
    def _after_batch(self, step: int, stop: StopFlag) -> bool:
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

    def _set_learning_rate(self, step: int) -> None:
        """Every optimizer's rate for the step after ``step``: the configured rate times
        :func:`~rocksr.training.lr_schedule.lr_factor` (warm-up, ``lr_decay``), or left as
        it is where that is None."""
        factor = lr_factor(step, self.total, self.warmup, self.lr_decay)
        if factor is None:
            return
        for opt, bases in zip(self.task.optimizers(), self._base_lrs, strict=True):
            for group, base in zip(opt.param_groups, bases, strict=True):
                group["lr"] = base * factor

    def _epoch(self, stop: StopFlag, bar: Any) -> None:
        """Train from the current position to the end of the epoch (or the budget, or SIGTERM)."""
        progress, loader = self.progress, self.train_loader
        # data order (and the loader's worker seeds) = f(seed, epoch): exact resume
        loader.sampler.set_epoch(progress["epoch"], progress["batch_in_epoch"] * self.batch_size)
        loader.generator.manual_seed(epoch_seed(self.seed, progress["epoch"]))
        for mct, sem in loader:
            self._set_learning_rate(progress["step"])
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
        with StopFlag() as stop:
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
