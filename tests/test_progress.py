"""Progress: bars with an ETA on a terminal, one line per group otherwise, silence with
--quiet. (Steps from worker processes: tests/test_faults.py, with a worker that dies.)"""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
from helpers import cli

from modecov.config import suite
from modecov.progress import Progress, choose_mode


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


CONFIGS = suite("smoke")
"""gan, nsgan (20 steps each) and the two reference samplers on ring8."""


def finished(cfg):
    return SimpleNamespace(config=cfg, wall_time=1.25)


@pytest.mark.parametrize(
    ("quiet", "stream", "mode"),
    [
        pytest.param(True, Tty(), "quiet", id="quiet-on-a-terminal"),
        pytest.param(False, Tty(), "bars", id="terminal"),
        pytest.param(False, io.StringIO(), "lines", id="pipe"),
        pytest.param(True, io.StringIO(), "quiet", id="quiet-pipe"),
    ],
)
def test_mode_follows_the_terminal_and_quiet(quiet, stream, mode):
    assert choose_mode(quiet=quiet, stream=stream) == mode


def test_lines_mode_prints_one_line_per_finished_group():
    stream = io.StringIO()
    with Progress(CONFIGS, mode="lines", stream=stream) as progress:
        progress.step(0, 10)  # no step output off a terminal
        for i, cfg in enumerate(CONFIGS):
            progress.done(i, finished(cfg))
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(CONFIGS)
    for k, (line, cfg) in enumerate(zip(lines, CONFIGS), 1):
        assert line.startswith(f"[{k}/{len(CONFIGS)}] {cfg.variant} on {cfg.dataset}, seeds 0,1:")
        assert "1.2s" in line


def test_quiet_mode_writes_nothing():
    stream = Tty()
    with Progress(CONFIGS, mode="quiet", stream=stream) as progress:
        progress.step(0, 5)
        progress.done(0, finished(CONFIGS[0]))
    assert stream.getvalue() == ""


def test_bars_count_steps_of_every_group_with_an_eta():
    stream = Tty()
    trained = [c for c in CONFIGS if not c.is_reference]
    with Progress(CONFIGS, mode="bars", stream=stream) as progress:
        suite_bar = progress._suite
        assert suite_bar.total == sum(c.steps for c in trained) == 40
        progress.step(0, 5)
        progress.step(1, 7)
        progress.step(0, 12)
        progress.step(0, 12)  # a repeated report adds nothing
        assert suite_bar.n == 19
        assert {i: b.n for i, b in progress._bars.items()} == {0: 12, 1: 7}
        progress.done(0, finished(CONFIGS[0]))  # the rest of group 0 counts when it finishes
        assert suite_bar.n == 27 and 0 not in progress._bars
        for i in (1, 2, 3):
            progress.done(i, finished(CONFIGS[i]))
        assert suite_bar.n == 40 and not progress._bars
    text = stream.getvalue()
    assert "gan on ring8" in text and "nsgan on ring8" in text
    assert "suite 4/4 groups" in text
    assert re.search(r"\d+/40 \[\d\d:\d\d<\d\d:\d\d", text), "no elapsed<remaining ETA"


def test_cli_prints_a_line_per_group_off_a_terminal_and_nothing_when_quiet(tmp_path, capsys):
    rc, out, err = cli(capsys, "run", "--suite", "smoke", "--workers", "1", "--out", tmp_path / "a")
    assert rc == 0 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"modecov: {len(CONFIGS)} groups to run, 0 already stored")
    assert [line.split("]")[0] for line in lines[1:]] == [f"[{k}/4" for k in range(1, 5)]
    rc, out, err = cli(capsys, "run", "--suite", "smoke", "--workers", "1", "--quiet",
                       "--out", tmp_path / "b")  # fmt: skip
    assert (rc, out, err) == (0, "", "")
