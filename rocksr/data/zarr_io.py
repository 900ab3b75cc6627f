"""Removing a store folder safely while zarr may still be writing into it.

zarr 3's synchronous API runs every read and write as a coroutine on its own event-loop thread
and waits for it. When SIGTERM (raised as ``SystemExit``) interrupts that wait in the main
thread, the coroutine goes on: it may create ``zarr.json`` or a chunk file *after* the cleanup
removed the partial folder, leaving a half-written ``.<name>.partial`` behind.
:func:`remove_store_tree` first waits for zarr's pending work, then removes the folder.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)
SETTLE_TIMEOUT_S = 30.0


async def _wait_for_other_tasks() -> None:
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me]
    if others:
        await asyncio.gather(*others, return_exceptions=True)


def settle_zarr_writes(timeout: float = SETTLE_TIMEOUT_S) -> None:
    """Wait until zarr's event loop has no pending reads or writes (no-op when zarr never ran)."""
    zarr_sync = sys.modules.get("zarr.core.sync")  # not imported: zarr never ran here
    loop = getattr(zarr_sync, "loop", [None])[0]  # zarr keeps its loop in a one-item list
    if loop is None or loop.is_closed() or not loop.is_running():
        return
    try:
        asyncio.run_coroutine_threadsafe(_wait_for_other_tasks(), loop).result(timeout)
    except concurrent.futures.TimeoutError:
        log.warning("zarr writes still pending after %.0f s; removing the folder anyway", timeout)
    except RuntimeError as exc:  # the loop closed meanwhile: nothing is left to wait for
        log.debug("zarr's event loop: %s", exc)


def remove_store_tree(path: Path) -> None:
    """Remove ``path`` (a folder, a file or a link) once zarr has no write in flight."""
    settle_zarr_writes()
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
