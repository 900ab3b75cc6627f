"""Torch Dataset over the tile store (Zarr v3 ``mct``/``sem`` uint8 (N,S,S)) and a split table.

Data order is a pure function of (seed, epoch): ``EpochSampler`` draws the permutation (and, when
augmentation is on, one of the 8 dihedral transforms per sample) from a generator seeded with
(seed, epoch), and can start part-way through an epoch, so a resumed run sees exactly the batches
an uninterrupted run would.  Augmentation is carried in the index, ``(tile_row, transform)``, so
workers need no randomness of their own.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from rocksr.config.loader import Data
from rocksr.config.merge import resolve
from rocksr.data.splits import split_tile_ids
from rocksr.data.values import to_unit_range


def dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """k in 0..7: rot90 by k%4 quarter turns, then a left-right flip if k >= 4."""
    a = np.rot90(a, k % 4)
    return np.fliplr(a) if k >= 4 else a


# data.in_memory "auto": a split whose tiles (both modalities) fit in this many bytes is read once
# into memory, in each process that reads it (each DataLoader worker, each torchrun rank): the
# demo's 651 training tiles take 21 MB, and reading them tile by tile from Zarr cost a fifth of
# a training step on 2 CPU cores (docs/benchmarks.md, "Training throughput")
IN_MEMORY_AUTO_BYTES = 512 * 2**20


def read_rows(array, rows: np.ndarray, block: int = 256) -> np.ndarray:
    """``array[rows]`` (first axis) read in contiguous blocks of about ``block`` rows, aligned
    to the array's shards (or chunks), skipping blocks with no wanted row: as fast as Zarr's
    orthogonal selection and without its memory (+400 MB for the demo's 21 MB of tiles)."""
    rows = np.asarray(rows, np.int64)
    unit = int((getattr(array, "shards", None) or array.chunks)[0])
    step = max(unit, -(-block // unit) * unit)
    out = np.empty((rows.size, *array.shape[1:]), array.dtype)
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    for lo in range(0, int(array.shape[0]), step):
        wanted = (ordered >= lo) & (ordered < lo + step)
        if wanted.any():
            part = np.asarray(array[lo : min(lo + step, int(array.shape[0]))])
            out[order[wanted]] = part[ordered[wanted] - lo]
    return out


class TileDataset(Dataset):
    """(mct, sem) pairs of one split, float32 (1,S,S) in [-1,1].

    The Zarr group is opened lazily in each process (first ``__getitem__``), so the object is cheap
    to pickle into DataLoader workers.  Index with an int (position in the split) or with
    ``(position, transform)`` where transform in 0..7 is applied identically to both images.
    With ``in_memory`` (true, or "auto": see :data:`IN_MEMORY_AUTO_BYTES`) the whole split is
    read at the first ``__getitem__`` in one batched read; the values are the same.
    """

    def __init__(
        self,
        store: str | Path,
        splits: str | Path,
        split: str,
        ids: np.ndarray | None = None,
        *,
        in_memory: bool | str = False,
    ) -> None:
        self.store = str(store)
        self.split = split
        self.ids = (
            split_tile_ids(splits, split, allow_empty=True)
            if ids is None
            else np.asarray(ids, np.int64)
        )
        if in_memory not in (True, False, "auto"):
            raise ValueError(f"data.in_memory must be true, false or auto, got {in_memory!r}")
        self.in_memory = in_memory
        self._group = None
        self._tiles = None  # (mct, sem) uint8 (n,S,S) of every id, once read (in_memory)
        self._use_tiles: bool | None = None  # cached(), decided at the first item

    def __len__(self) -> int:
        return int(self.ids.size)

    def _open(self):
        if self._group is None:
            from rocksr.data.tilestore import open_tiles

            self._group = open_tiles(self.store)
        return self._group

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_group"] = None
        state["_tiles"] = state["_use_tiles"] = None  # each worker decides and reads its own
        return state

    def _read(self, rows: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = self._open()
        try:
            if np.isscalar(rows):
                return np.asarray(g["mct"][rows]), np.asarray(g["sem"][rows])
            return read_rows(g["mct"], rows), read_rows(g["sem"], rows)
        except Exception as exc:  # noqa: BLE001 (codecs raise many types for damaged data)
            from rocksr.data.tilestore import StoreError

            what = f"tile {rows}" if np.isscalar(rows) else f"the {self.split} tiles"
            raise StoreError(
                f"{self.store}: {what} cannot be read ({type(exc).__name__}: {exc}); the "
                f"store is damaged: run `rocksr verify {self.store}` and rebuild it"
            ) from exc

    def cached(self) -> bool:
        """Whether this split's tiles are read once into memory: ``in_memory`` true, or
        ``auto`` and both modalities of the split take at most :data:`IN_MEMORY_AUTO_BYTES`."""
        if self.in_memory != "auto":
            return bool(self.in_memory)
        g = self._open()
        size = int(np.prod(g["mct"].shape[1:])) * g["mct"].dtype.itemsize
        return 2 * size * len(self) <= IN_MEMORY_AUTO_BYTES

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        pos, k = (index, 0) if np.isscalar(index) else (int(index[0]), int(index[1]))
        if self._use_tiles is None:  # once per process, not at every item
            self._use_tiles = bool(len(self)) and self.cached()
            if self._use_tiles:
                self._tiles = self._read(self.ids)
        if self._use_tiles:
            mct, sem = self._tiles[0][pos], self._tiles[1][pos]
        else:
            mct, sem = self._read(int(self.ids[pos]))
        if k:
            mct, sem = dihedral(mct, k), dihedral(sem, k)
        return to_unit_range(mct), to_unit_range(sem)


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed that depends only on (seed, epoch)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


class EpochSampler(Sampler):
    """Shuffled order of an epoch = f(seed, epoch); ``start`` skips the first samples (resume).

    With ``world`` > 1 (multi-process training) process ``rank`` yields its contiguous
    ``batch_size / world`` part (``world`` divides ``batch_size``: the trainer checks it) of
    each complete global batch of ``batch_size`` of that same
    order (an incomplete last batch is dropped, as the single-process loader drops it), so the
    processes together see exactly the batches of a single-process run.
    """

    def __init__(
        self,
        n: int,
        seed: int,
        shuffle: bool = True,
        augment: bool = False,
        *,
        batch_size: int = 1,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.n, self.seed, self.shuffle, self.augment = int(n), int(seed), shuffle, augment
        self.batch_size, self.rank, self.world = int(batch_size), int(rank), int(world)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def order(self, epoch: int) -> list:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        perm = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        if not self.augment:
            return perm.tolist()
        ks = torch.randint(0, 8, (self.n,), generator=g)
        return list(zip(perm.tolist(), ks.tolist(), strict=True))

    def __iter__(self) -> Iterator:
        rest = self.order(self.epoch)[self.start :]
        if self.world == 1:
            return iter(rest)
        bs, b = self.batch_size, self.batch_size // self.world
        lo = self.rank * b
        return iter(
            [x for i in range(len(rest) // bs) for x in rest[i * bs + lo : i * bs + lo + b]]
        )

    def __len__(self) -> int:
        rest = max(0, self.n - self.start)
        return (
            rest if self.world == 1 else rest // self.batch_size * (self.batch_size // self.world)
        )


def seed_worker(worker_id: int) -> None:
    """Seed numpy/python in each worker from torch's per-worker seed (set from the loader's
    generator), open the store there rather than in the parent, and ignore SIGTERM: SLURM signals
    every process of the job, and the trainer must be able to finish its last batch and write its
    checkpoint (workers exit with the main process anyway)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    s = torch.initial_seed() % 2**32
    np.random.seed(s)  # noqa: NPY002 (global state, for third-party code)
    random.seed(s)
    info = get_worker_info()
    if info is not None and hasattr(info.dataset, "_open"):
        info.dataset._open()


def loader_kwargs(data_cfg: dict | None, device: str | torch.device) -> dict:
    """num_workers, pin_memory ('auto' = on for CUDA), persistent_workers from the ``data`` section."""
    cfg = resolve(Data, data_cfg, "data")
    nw = int(cfg["num_workers"])
    pin = cfg["pin_memory"]
    if pin == "auto":
        pin = torch.device(device).type == "cuda"
    kw = {"num_workers": nw, "pin_memory": bool(pin)}
    if nw > 0:
        kw["persistent_workers"] = bool(cfg["persistent_workers"])
        kw["prefetch_factor"] = int(cfg["prefetch_factor"])
        kw["worker_init_fn"] = seed_worker
    return kw


def make_loader(
    dataset: TileDataset,
    batch_size: int,
    data_cfg: dict | None,
    device: str | torch.device,
    seed: int,
    train: bool,
    *,
    rank: int = 0,
    world: int = 1,
) -> DataLoader:
    """DataLoader with an ``EpochSampler`` (shuffled + optional flips/rot90 for train; in order for
    eval).  Call ``loader.sampler.set_epoch(epoch, start)`` before iterating a training epoch.
    With ``world`` > 1 (training only) it yields process ``rank``'s part, ``batch_size / world``,
    of each global batch of ``batch_size``."""
    cfg = resolve(Data, data_cfg, "data")
    sampler = EpochSampler(
        len(dataset),
        seed,
        shuffle=train,
        augment=bool(train and cfg["train_flips"]),
        batch_size=batch_size,
        rank=rank,
        world=world,
    )
    drop_last = train and len(dataset) >= batch_size
    g = torch.Generator().manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size // world,
        sampler=sampler,
        drop_last=drop_last,
        generator=g,
        **loader_kwargs(cfg, device),
    )
