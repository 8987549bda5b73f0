"""`python -m bnviz check LESSON [--seeds …]` (bnviz.audit): a lesson's verdict from a shell.

One real training of ioffe_fig1 at two seeds in a subprocess (what a user sees: the table, the
verdict, exit 0); the same lesson with its BN arm swapped for the plain one exits 1; bad input
is one line and exit 2, before any training.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bnviz import audit, checks, cli
from bnviz.lessons import LESSONS

ROOT = Path(__file__).resolve().parents[1]


def bnviz(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bnviz", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_check_prints_each_seed_and_the_verdict() -> None:
    proc = bnviz("check", "ioffe_fig1", "--seeds", "3,4")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "seed 3: holds — After " in out
    assert "seed 4: holds — " in out
    head = next(line for line in out.splitlines() if line.startswith("figure"))
    assert "seed 3" in head and "seed 4" in head
    assert "final test acc: norm=batch" in out and "claim holds" in out
    assert "verdict: the claim HOLDS. Held in 2 of 2 seeds (3, 4): BN − plain" in out
    assert "over 2 seeds" in out and f"rule: {checks.RULE}" in out
    assert "2 per seed × 2 seeds: 3, 4" in proc.stderr  # progress on stderr, not stdout


def test_check_exits_1_when_the_claim_does_not_hold(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lesson's real check, on records whose BN arm is the plain run (its control)."""
    real = checks.CHECKS["ioffe_fig1"]

    def control_arm(records: list) -> checks.Check:
        plain = next(r for r in records if r.config.norm == "none")
        swapped = [
            plain.replace(config=r.config) if r.config.norm == "batch" else r for r in records
        ]
        return real(swapped)

    monkeypatch.setitem(checks.CHECKS, "ioffe_fig1", control_arm)
    code = cli.main(["check", "ioffe_fig1", "--seeds", "5", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "seed 5: does not hold" in out and "verdict: the claim DOES NOT HOLD" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["nonsense"],
            "lesson 'nonsense' is unknown: lessons that train are feature_scaling, faster",
        ),
        (["error_surface"], "computes on its own page"),
        (["faster", "--seeds", "a,b"], "expected seeds such as 0,1,2"),
        (["faster", "--seeds", "5-3"], "the range must go up"),
        (["faster", "--seeds", ","], "at least one seed"),
        (["faster", "--seeds", "0-99"], "at most 20 seeds"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bnviz: error: ") and needle in lines[0]


def test_parse_seeds() -> None:
    assert audit.parse_seeds("100-104") == (100, 101, 102, 103, 104)
    assert audit.parse_seeds("7, 13,20-21,7") == (7, 13, 20, 21)


def test_every_training_lesson_can_be_checked() -> None:
    parser = cli.build_parser()
    for slug in audit.training_lessons():
        assert parser.parse_args(["check", slug]).lesson == slug
        assert LESSONS[slug].configs() == LESSONS[slug].runs.seeded(LESSONS[slug].seeds)
