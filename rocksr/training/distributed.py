"""Multi-process (data-parallel) training under ``torchrun``: one process per GPU (or per CPU
worker with gloo), every process holding the whole model.

:func:`init_distributed` reads torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)
and starts the process group (nccl on CUDA, gloo on CPU); without torchrun it returns the
single-process :data:`SINGLE`, for which every method below is the identity, so the trainer and
the tasks have one code path.

An N-process run is the same experiment as a 1-process run with the same config:

* the global batch is ``batch_size``; each rank trains on its contiguous ``batch_size / N`` part
  of each global batch of the single-process order (``rocksr.data.torchdata.EpochSampler``);
* training randomness (crop offsets, diffusion t and noise) is drawn for the whole global batch
  from the same generator on every rank, and each rank keeps its part (:meth:`Dist.local`), so
  the union of the ranks' draws is the single-process draw;
* gradients are averaged by DistributedDataParallel (the mean of the ranks' mean losses is the
  global mean loss), and the logged losses are averaged over the ranks (:meth:`Dist.mean`);
* validation runs on rank 0 alone and its metrics are broadcast (:meth:`Dist.broadcast`), so
  every rank takes the same learning-rate and best-checkpoint decisions;
* rank 0 alone writes checkpoints, history, timings and renders.

The results equal the single-process ones up to the order of float summation (all-reduce).
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

# rank 0 validates and renders alone while the others wait in the next collective: a DDPM
# validation that samples many tiles can take long
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class Dist:
    """This process's place in the training job: ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_batch(self, batch_size: int) -> int:
        """This rank's part of a global batch of ``batch_size`` (it must divide evenly)."""
        if batch_size % self.world:
            raise ValueError(
                f"batch_size {batch_size} is not divisible by the {self.world} training "
                "processes (the global batch is split evenly over them)"
            )
        return batch_size // self.world

    def local(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of ``x``, drawn for the whole global batch (dim 0)."""
        if not self.enabled:
            return x
        b = self.local_batch(x.shape[0])
        return x[self.rank * b : (self.rank + 1) * b]

    def wrap(self, m: nn.Module, device: torch.device) -> nn.Module:
        """``m`` in DistributedDataParallel (gradients averaged over the ranks in backward)."""
        if not self.enabled:
            return m
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # buffers (spectral-norm vectors, EMA) evolve identically on every rank: no broadcast
        return DistributedDataParallel(m, device_ids=ids, broadcast_buffers=False)

    def mean(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        """``values`` averaged over the ranks (the same keys on each)."""
        if not self.enabled or not values:
            return values
        keys = list(values)  # the same order on every rank: the same task code made them
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return {k: v / self.world for k, v in zip(keys, t.tolist(), strict=True)}

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is True on any (e.g. a SIGTERM seen by one)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)], device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable)."""
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


SINGLE = Dist()


def init_distributed(device: str) -> tuple[Dist, str]:
    """(this process's :class:`Dist`, its device) from torchrun's environment; starts the process
    group (nccl on CUDA, gloo on CPU) when there is more than one process. Under torchrun a CUDA
    device becomes ``cuda:<LOCAL_RANK>``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE, device
    dist = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if torch.device(device).type == "cuda":
        device = f"cuda:{dist.local_rank}"
        torch.cuda.set_device(torch.device(device))
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
        log.info("rank %d of %d (%s) on %s", dist.rank, world, backend, device)
    if not dist.is_main:  # one log: rank 0's (the others say only what goes wrong)
        logging.getLogger("rocksr").setLevel(logging.WARNING)
    return dist, device


def shutdown_distributed() -> None:
    """End the process group started by :func:`init_distributed`, if any."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
