"""The trainer's state directory: resume, states of other experiments kept aside, save.

:class:`TrainerState` is the part of :class:`rocksr.training.trainer.Trainer` that reads and
writes ``state_dir``: :meth:`~TrainerState.resume` loads ``last.pt`` (or ``best.pt`` when
``last`` is broken) when it belongs to this experiment, i.e. its ``fingerprint`` is
:func:`run_fingerprint` of this run; the state of another experiment (same architecture, other
hyper-parameters, seed or data) is renamed to ``<state>.previous-<fingerprint[:16]>`` and
brought back when that experiment's config returns. :meth:`~TrainerState.save` writes
``timing.json`` and then the complete training state
(:func:`rocksr.training.state.checkpoint_payload`).
The checkpoint format, compatibility check and RNG state live in :mod:`rocksr.training.state`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rocksr.checkpoints import load_checkpoint, save_atomic
from rocksr.config.loader import LOADER_KEYS
from rocksr.config.training import RESUMABLE_KEYS
from rocksr.training.distributed import Dist
from rocksr.training.history import TIMING_COLUMNS
from rocksr.training.state import (
    check_compatible,
    checkpoint_payload,
    diff_keys,
    load_state,
    set_rng_state,
)

# the trainer's log, under the name it always had
log = logging.getLogger("rocksr.training.trainer")


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


class TrainerState:
    """Resume and save of a :class:`~rocksr.training.trainer.Trainer` (a mixin: the trainer sets
    the attributes annotated here; ``wall_s`` comes from
    :class:`~rocksr.training.history.TrainerHistory`)."""

    kind: str
    cfg: dict
    seed: int
    dist: Dist
    task: Any
    gen: torch.Generator
    fingerprint: str
    data_record: dict
    select_mode: str
    state_dir: Path
    last_path: Path
    best_path: Path
    timing_json: Path
    progress: dict[str, Any]
    history: list[dict]
    timing: list[dict]
    train_wall_s: float
    wall_s: Callable[[], float]

    def _worst(self) -> float:
        return -math.inf if self.select_mode == "max" else math.inf

    def _new_progress(self) -> dict[str, Any]:
        """The loop's position at the start of a run."""
        # everything the loop carries between steps (checkpointed, so resume is exact), incl.
        # the running sums of the current logging window
        return {
            "step": 0,
            "epoch": 0,
            "batch_in_epoch": 0,
            "best_val": self._worst(),
            "best_step": -1,
            "log_sums": {},
            "log_n": 0,
            "pending_val": False,
        }

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
        self._load_resumed(ckpt)
        log.info(
            "resumed from %s at step %d (epoch %d)",
            resumed_from,
            self.progress["step"],
            self.progress["epoch"],
        )

    def _load_resumed(self, ckpt: dict) -> None:
        """Take over the state ``ckpt`` of this experiment: models, RNGs, progress, history."""
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
