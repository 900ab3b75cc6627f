"""Die with the job: a rocksr process must not outlive the shell (Snakemake job) that started it.

:func:`die_with_parent` asks Linux to send SIGTERM when the parent process exits
(``prctl(PR_SET_PDEATHSIG)``) and remembers the parent; :func:`check_parent` raises when the
parent is gone, and writers call it right before they publish an output, so that a job killed
by its shell never publishes later (elsewhere, where ``prctl`` is missing, this check is all).

A Snakemake killed with SIGKILL leaves its job shells running (they are its children, not its
shell's), so the Snakefile also records the workflow process (:func:`process_identity`:
host, pid and start time, in ``ROCKSR_WORKFLOW_PROCESS``); :func:`die_with_parent` then starts a
watcher that sends the job SIGTERM within about a second of that process's death (training writes
its last state and exits; other stages remove their partial outputs), and :func:`check_parent`
refuses to publish. On another host (a cluster job) the in-job Snakemake records itself instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time

from rocksr.errors import RocksrError

_PR_SET_PDEATHSIG = 1
_parent: int | None = None
_pid: int | None = None  # the process that recorded _parent (forked children skip the check)
WORKFLOW_ENV = "ROCKSR_WORKFLOW_PROCESS"
_workflow: str | None = None  # the identity of the workflow process being watched
WATCH_INTERVAL_S = 1.0
log = logging.getLogger(__name__)


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, Linux ``/proc``), None if gone."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name in (...) may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]  # state, field 22: starttime


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start`` of a process (default: this one), unique even after pid reuse; ""
    where ``/proc`` is missing (the watch is then off)."""
    pid = os.getpid() if pid is None else pid
    start = _start_time(pid)
    return "" if start is None else f"{socket.gethostname()}:{pid}:{start}"


def process_alive(identity: str) -> bool:
    """False when the process named by :func:`process_identity` on this host has exited;
    True while it runs, and for another host's process or an empty identity (not watchable)."""
    host, _, rest = identity.partition(":")
    if not rest or host != socket.gethostname():
        return True
    pid, _, start = rest.partition(":")
    return _start_time(int(pid)) == start


def _watch(identity: str, interval: float) -> None:
    while process_alive(identity):
        time.sleep(interval)
    log.warning("the workflow process %s has exited; stopping this job", identity)
    os.kill(os.getpid(), signal.SIGTERM)


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
    global _workflow
    _workflow = os.environ.get(WORKFLOW_ENV) or None
    check_parent()  # the parent may have died before prctl took effect
    if _workflow:
        threading.Thread(
            target=_watch, args=(_workflow, WATCH_INTERVAL_S), daemon=True, name="rocksr-watch"
        ).start()


def check_parent() -> None:
    """Raise :class:`OrphanedError` if the parent recorded by :func:`die_with_parent` is gone."""
    if _parent is None or os.getpid() != _pid:
        return
    if os.getppid() != _parent:
        raise OrphanedError(
            f"the process that started rocksr (pid {_parent}) has exited; not publishing outputs"
        )
    if _workflow and not process_alive(_workflow):
        raise OrphanedError(
            f"the workflow that started this job ({_workflow}) has exited; not publishing outputs"
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
