"""Die with the job: a rocksr process must not outlive the shell (Snakemake job) that started it.

:func:`die_with_parent` asks Linux to send SIGTERM when the parent process exits
(``prctl(PR_SET_PDEATHSIG)``) and remembers the parent; :func:`check_parent` raises when the
parent is gone, and writers call it right before they publish an output, so that a job killed
by its shell never publishes later (elsewhere, where ``prctl`` is missing, this check is all).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

from rocksr.errors import RocksrError

_PR_SET_PDEATHSIG = 1
_parent: int | None = None
_pid: int | None = None  # the process that recorded _parent (forked children skip the check)


class OrphanedError(RocksrError, RuntimeError):
    """The process that started rocksr has exited; nothing is published."""


def die_with_parent() -> None:
    """Terminate (SIGTERM) when the parent exits; remember the parent for :func:`check_parent`."""
    global _parent, _pid
    parent = os.getppid()
    _pid = os.getpid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    _parent = parent
    check_parent()  # the parent may have died before prctl took effect


def check_parent() -> None:
    """Raise :class:`OrphanedError` if the parent recorded by :func:`die_with_parent` is gone."""
    if _parent is not None and os.getpid() == _pid and os.getppid() != _parent:
        raise OrphanedError(
            f"the process that started rocksr (pid {_parent}) has exited; not publishing outputs"
        )


def sigterm_as_exit() -> None:
    """Make SIGTERM raise ``SystemExit(143)`` (so that partial outputs are cleaned up) unless a
    handler is already installed."""

    def handler(signum: int, frame: object) -> None:
        # once: a second SIGTERM (SLURM signals the job step, the shell's death another) must
        # not interrupt the cleanup of partial outputs that the first one started
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, handler)
