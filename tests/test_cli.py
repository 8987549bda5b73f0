"""Tests for the command line (bnviz.cli): end to end in a subprocess, and in-process via main().

Training runs are tiny (digits, 16-unit layers, one epoch) so the whole file stays well under a
minute; the subprocess tests check what a user sees: exit codes, one-line errors, the summary.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bnviz import cli
from bnviz.config import FIELDS, PRESETS, RunConfig
from bnviz.records import group_labels, varied_fields

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "hidden=16,16", "--set", "epochs=1", "--set", "batch_size=64"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Train in-process on one thread, as the subprocesses do (see child_env), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def child_env(data_root: Path) -> dict[str, str]:
    # one thread: these nets are tiny, and on a shared, busy machine torch's default thread
    # pool made them over 10× slower (threads spin-waiting for each other)
    return {
        **os.environ,
        "BNVIZ_DATA": str(data_root),
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }


def bnviz(*args: str, data_root: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m bnviz ARGS` from the repo root, with an empty data cache (no downloads)."""
    return subprocess.run(
        [sys.executable, "-m", "bnviz", *args],
        cwd=ROOT,
        env=child_env(data_root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_main(
    args: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> tuple[int, str, str, dict[str, Any] | None]:
    """main() in-process with --out in tmp_path; returns (code, stdout, stderr, records)."""
    out = tmp_path / "records.json"
    out.unlink(missing_ok=True)
    code = cli.main([*args, "--out", str(out)])
    captured = capsys.readouterr()
    records = json.loads(out.read_text()) if out.exists() else None
    return code, captured.out, captured.err, records


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("bnviz: error: ")
    for n in needles:
        assert n in lines[0]
    assert proc.stdout == ""


# --- train, end to end -----------------------------------------------------------------------


def test_train_set_and_vary_writes_records(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = bnviz(
        "train", *TINY, "--vary", "norm=none,batch", "--out", str(out), "--quiet",
        data_root=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --quiet: no progress output
    runs = json.loads(out.read_text())["runs"]
    assert [r["config"]["norm"] for r in runs] == ["none", "batch"]
    for r in runs:
        assert r["config"]["hidden"] == [16, 16]
        assert r["config"]["epochs"] == 1 and r["config"]["batch_size"] == 64
        assert r["status"] == "finished"
        assert r["history"] and r["layers"] and r["params"]
        assert r["history"][-1]["epoch"] == 1.0
    # the summary: one row per run, labelled by the varied field, and where the file went
    assert "norm=none" in proc.stdout and "norm=batch" in proc.stdout
    assert "device: cpu" in proc.stdout or "device: cuda" in proc.stdout
    assert str(out) in proc.stdout


def test_grid_of_two_vary_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _, records = run_main(
        ["train", *TINY, "--quiet", "--vary", "norm=none,batch", "--vary", "hidden=16,16;8"],
        capsys,
        tmp_path,
    )
    assert code == 0
    assert records is not None
    combos = [(r["config"]["norm"], r["config"]["hidden"]) for r in records["runs"]]
    assert combos == [("none", [16, 16]), ("none", [8]), ("batch", [16, 16]), ("batch", [8])]
    assert "hidden=8, norm=batch" in out


@pytest.mark.parametrize("kind", ["json", "toml"])
def test_config_file(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"cfg.{kind}"
    if kind == "json":
        path.write_text(json.dumps({"hidden": [16, 16], "epochs": 1, "lr": 0.05, "norm": "none"}))
    else:
        path.write_text('hidden = [16, 16]\nepochs = 1\nlr = 0.05\nnorm = "none"\n')
    # --set wins over the file; the file wins over the defaults
    code, _, _, records = run_main(
        ["train", "--quiet", "--config", str(path), "--set", "lr=0.2"], capsys, tmp_path
    )
    assert code == 0
    assert records is not None
    (run,) = records["runs"]
    cfg = run["config"]
    assert (cfg["hidden"], cfg["epochs"], cfg["norm"], cfg["lr"]) == ([16, 16], 1, "none", 0.2)
    assert cfg["batch_size"] == RunConfig().batch_size


def test_preset_uses_its_vary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _, records = run_main(
        ["train", "--quiet", "--preset", "ioffe_fig1", "--set", "epochs=1"], capsys, tmp_path
    )
    assert code == 0
    assert records is not None
    runs = records["runs"]
    assert [r["config"]["norm"] for r in runs] == ["none", "batch"]
    for r in runs:
        cfg = r["config"]
        assert (cfg["hidden"], cfg["activation"], cfg["epochs"]) == ([100, 100, 100], "sigmoid", 1)
    assert "norm=none" in out and "norm=batch" in out


def test_divergence_is_a_result_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a linear net without BN at lr=100 overflows within a few steps, for any seed
    args = ["train", *TINY, "--quiet", "--set", "norm=none", "--set", "activation=linear"]
    code, out, _, records = run_main([*args, "--set", "lr=100"], capsys, tmp_path)
    assert code == 0
    assert records is not None
    assert records["runs"][0]["status"] == "diverged"
    assert "diverged at step" in out


def test_diverged_runs_print_no_numpy_warnings(tmp_path: Path) -> None:
    """A BN run whose statistics overflow (lr=100) and a plain run that diverges: stderr holds
    no RuntimeWarning from summarizing non-finite γ/β/running statistics."""
    proc = bnviz(
        "train",
        "--set",
        "lr=100",
        "--set",
        "epochs=1",
        "--vary",
        "norm=none,batch",
        "--quiet",
        "--out",
        str(tmp_path / "r.json"),
        data_root=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert {r["status"] for r in runs} <= {"finished", "diverged"}
    assert "diverged" in {r["status"] for r in runs}


def test_failed_run_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bnviz.train

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(bnviz.train, "make_stacks", broken)
    code, out, _, records = run_main(["train", *TINY, "--quiet"], capsys, tmp_path)
    assert code == 1
    assert records is not None and records["runs"][0]["status"] == "failed"
    assert "failed" in out and "boom" in out


def test_no_out_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", *TINY, "--quiet"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "run 1" in capsys.readouterr().out  # nothing varies: runs are numbered


def _read_pty(fd: int, until: Callable[[str], bool], timeout: float) -> str:
    """What a child wrote to the terminal `fd`, read until `until(text)` or EOF."""
    text, end = "", time.monotonic() + timeout
    while not until(text):
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; the terminal showed {text[-300:]!r}")
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            text += chunk.decode(errors="replace")
    return text


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT and a terminal are POSIX")
def test_ctrl_c_cancels_and_keeps_records(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "bnviz", "train", "--set", "hidden=16,16", "--set", "epochs=500"]
    # stderr on a terminal, as a user runs it: its progress bar says when records exist.
    master, child = pty.openpty()
    proc = subprocess.Popen(
        [*cmd, "--vary", "norm=none,batch", "--out", str(out)],
        cwd=ROOT,
        env=child_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=child,
        text=True,
    )
    os.close(child)
    try:
        # the first line is printed once the Ctrl-C handler is in place; a test accuracy on
        # the bar once every run has a record
        shown = _read_pty(master, lambda t: re.search(r"test acc +\d+\.\d% +\d", t), 120)
        assert shown.lstrip().startswith("training 2 runs"), shown
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
        stderr = shown + _read_pty(master, lambda t: False, 10)
    finally:
        proc.kill()
        os.close(master)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "cancelled" in stdout
    runs = json.loads(out.read_text())["runs"]
    assert [r["status"] for r in runs] == ["cancelled", "cancelled"]
    assert all(r["history"] for r in runs)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--set", "widht=3"], ["unknown field 'widht'", "hidden"]),
        (["--set", "lr=fast"], ["lr=fast", "a number in"]),
        (["--set", "norm=instance"], ["norm=instance", "model=cnn"]),
        (["--vary", "activation=relu,swish"], ["activation=swish", "one of"]),
        (["--set", "norm=group", "--set", "num_groups=3"], ["num_groups=3", "divide"]),
        (["--config", "does/not/exist.json"], ["does/not/exist.json"]),
        (["--preset", "ioffe"], ["unknown preset 'ioffe'", "ioffe_fig1"]),
        (["--out", "no/such/dir/r.json"], ["no/such/dir"]),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needles: list[str], tmp_path: Path) -> None:
    # these are caught before torch is imported, so a subprocess each is cheap
    assert_one_line_error(bnviz("train", *args, data_root=tmp_path), *needles)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--set", "batch_size=5000"], ["batch_size=5000", "1437"]),
        (["--set", "dataset=mnist"], ["mnist", "download"]),  # not on disk, never fetched
    ],
)
def test_data_problems_are_one_line_exit_2(
    args: list[str],
    needles: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # found by loading the data (torch), so in-process; the data cache is an empty folder
    monkeypatch.setenv("BNVIZ_DATA", str(tmp_path))
    assert cli.main(["train", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("bnviz: error: ") and captured.err.count("\n") == 1
    for n in needles:
        assert n in captured.err


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.toml", "epochs = = 1", "not valid TOML"),
        ("list.json", "[1, 2]", "object of field: value"),
        ("unknown.toml", "epoch = 1", "unknown field 'epoch'"),
        ("cfg.yaml", "epochs: 1", ".json or .toml"),
    ],
)
def test_bad_config_file(
    name: str, text: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bnviz: error: ") and err.count("\n") == 1
    assert needle in err and str(path) in err


def test_argparse_usage_errors_keep_exit_2(tmp_path: Path) -> None:
    proc = bnviz("train", "--set", data_root=tmp_path)
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr


# --- list, download --------------------------------------------------------------------------


def test_list_mentions_everything(capsys: pytest.CaptureFixture[str]) -> None:
    from bnviz.data import DATASETS

    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*FIELDS, *DATASETS, *PRESETS]:
        assert name in out
    for f in FIELDS.values():
        assert f.allowed() in out and f.help in out
    assert "Normalization:" in out
    assert "mnist          download" in out and "digits         offline" in out


def test_download_offline_dataset_uses_no_network(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import urllib.request

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert cli.main(["download", "digits", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "no download" in out
    assert list(tmp_path.iterdir()) == []


def test_download_unknown_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["download", "imagenet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bnviz: error: ") and "imagenet" in err and "cifar10" in err


# --- pieces ----------------------------------------------------------------------------------


def test_build_configs_layers() -> None:
    configs = cli.build_configs(preset="ioffe_fig1", sets=["lr=0.5"], varies=["seed=1,2"])
    # an explicit --vary replaces the preset's comparison; the preset's base stays
    assert [(c.seed, c.lr, c.activation, c.norm) for c in configs] == [
        (1, 0.5, "sigmoid", "batch"),
        (2, 0.5, "sigmoid", "batch"),
    ]
    assert group_labels(configs) == ["seed=1", "seed=2"]
    assert varied_fields(configs) == ["seed"]


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_bar_text_and_throttle() -> None:
    stream, clock = io.StringIO(), FakeClock()
    configs = [RunConfig(epochs=10), RunConfig(epochs=10, norm="none")]
    progress = cli.TrainProgress(configs, cli.LineWriter(stream, enabled=True, clock=clock))
    for i in range(2):
        progress({"type": "status", "run": i, "status": "running", "message": "", "step": 0})
    clock.t = 10.0
    row = {"step": 100, "epoch": 5.0, "test_acc": 0.5}
    progress({"type": "rows", "run": 0, "kind": "history", "rows": [row]})
    text = stream.getvalue().split("\r\x1b[2K")[-1]
    assert "25%" in text and "ETA 0:30" in text and "50.0%" in text
    # within the refresh interval nothing is redrawn
    before = stream.getvalue()
    clock.t += cli.REFRESH_S / 2
    progress({"type": "rows", "run": 1, "kind": "history", "rows": [row]})
    assert stream.getvalue() == before
    # an ended run counts as done
    clock.t += 1
    progress({"type": "status", "run": 1, "status": "diverged", "message": "", "step": 3})
    assert "75%" in stream.getvalue().split("\r\x1b[2K")[-1]


def test_progress_disabled_writes_nothing() -> None:
    stream = io.StringIO()
    line = cli.LineWriter(stream, enabled=False)
    line.draw("x", force=True)
    line.clear()
    assert stream.getvalue() == ""
