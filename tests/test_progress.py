"""Progress lines in logs (rocksr.progress): readable with `tail -f`, one per interval."""

from __future__ import annotations

import logging

from rocksr import progress as progress_mod


def test_log_progress_writes_plain_lines_with_rate_and_eta(caplog, monkeypatch) -> None:
    clock = iter([0.0, 10.0, 31.0, 40.0, 62.0, 70.0])
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="rocksr.progress"):
        bar = progress_mod.LogProgress(100, "train ddpm", unit="step")
        bar.set_postfix({"loss": "0.04"})
        for _ in range(4):
            bar.update(10)
        bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3  # at 31 s, at 62 s, and the last one
    assert lines[0].startswith("train ddpm: 20/100 (20%), 0.645 step/s, ETA 2m04s; loss=0.04")
    assert all("\r" not in ln for ln in lines)


def test_progress_is_a_log_writer_off_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(progress_mod.sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(progress_mod.progress(10, "x"), progress_mod.LogProgress)
