"""Progress a user can see: a bar on a terminal, a plain line at a fixed interval in a log.

On a terminal (stderr is a TTY) :func:`progress` is tqdm's bar. Otherwise (a Snakemake job,
whose stderr goes to ``results/<run>/logs/<rule>.log``) it writes one line per interval (and a
last one) through :mod:`logging`, e.g. ``train ddpm: 250/1500 (17%), 7.1 step/s, ETA 2m56s;
loss=0.0412``, so ``tail -f`` shows readable progress instead of one carriage-returned line.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger(__name__)

# seconds between two progress lines in a log
LOG_EVERY_S = 30.0


def _duration(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


class LogProgress:
    """tqdm's ``update``/``set_postfix``/``close`` as periodic log lines."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        initial: int = 0,
        unit: str = "it",
        every_s: float = LOG_EVERY_S,
        disable: bool = False,
    ) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every_s
        self.n = self.start_n = initial
        self.disable = disable
        self.t0 = self.last = time.monotonic()
        self.postfix = ""

    def set_postfix(self, values: dict[str, Any] | None = None, **kw: Any) -> None:
        items = {**(values or {}), **kw}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.disable and now - self.last >= self.every:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        done = self.n - self.start_n
        rate = done / max(now - self.t0, 1e-9)
        text = f"{self.desc}: {self.n}"
        if self.total:
            text += f"/{self.total} ({100 * self.n / self.total:.0f}%)"
        text += f", {rate:.3g} {self.unit}/s"
        if self.total and rate > 0:
            text += f", ETA {_duration((self.total - self.n) / rate)}"
        if self.postfix:
            text += f"; {self.postfix}"
        log.info(text)

    def close(self) -> None:
        if not self.disable:
            self._line(time.monotonic())


def progress(
    total: int | None, desc: str, *, initial: int = 0, unit: str = "it", disable: bool = False
) -> Any:
    """A progress bar on a terminal, periodic log lines otherwise (see the module docstring)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=disable,
        )
    return LogProgress(total, desc, initial=initial, unit=unit, disable=disable)
