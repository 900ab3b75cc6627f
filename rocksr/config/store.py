"""Defaults of the ``store`` section: the Zarr tile store's compression and shards."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Store:
    compressor: str = "lz4"
    level: int = 1
    shard_tiles: int = 64
