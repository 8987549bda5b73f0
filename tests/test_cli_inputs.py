"""Bad input to the CLI is one line and exit 2 (the seven inputs of issue #14 and more); the
`runs` command lists, exports and deletes stored groups; `train --store` stores a group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bnviz import cli

DEEP = "[" * 100_000 + "]" * 100_000
BAD_FILES = {  # name: file text
    "inf.json": '{"hidden": [1e999]}',
    "inf.toml": "hidden = [inf]\n",
    "lr400.json": '{"lr": 1' + "1" * 399 + "}",
    "epochs5000.json": '{"epochs": ' + "5" * 5000 + "}",
    "epochs5000.toml": "epochs = " + "5" * 5000 + "\n",
    "deep.json": DEEP,
    "deepvalue.json": '{"hidden": ' + DEEP + "}",
    "deep.toml": "hidden = " + DEEP + "\n",
    "deep900.json": '{"hidden": ' + "[" * 900 + "]" * 900 + "}",
    "nan.json": '{"lr": NaN}',
    "list.json": "[1, 2]",
    "bool.json": '{"epochs": true}',
    "text.toml": 'hidden = "abc"\n',
    "latin1.json": b'{"lr": "\xe9"}',
    "null.json": '{"seed": null}',
}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_config_file_is_one_line_exit_2(name, tmp_path, capsys):
    path = tmp_path / name
    text = BAD_FILES[name]
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, err = run_cli(["train", "--config", str(path), "--quiet"], capsys)
    assert code == 2, err
    assert err.startswith("bnviz: error: ") and err.count("\n") == 1, err
    assert len(err) < 400


@pytest.mark.parametrize(
    "flags",
    [
        ["--out", ""],
        ["--out", "   "],
        ["--set", "batch_size=5000"],
        ["--set", "hidden=4096,4096,4096,4096", "--vary", "seed=1,2,3,4,5,6,7,8"],
        ["--set", "epochs=" + "5" * 5000],
        ["--set", "lr=1" + "0" * 400],
        ["--set", "hidden=" + ",".join(["4096"] * 17)],
        ["--vary", "lr="],
    ],
)
def test_bad_flags_are_one_line_exit_2(flags, capsys):
    code, err = run_cli(["train", "--quiet", *flags], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("bnviz: error: "), err


def test_runs_list_export_delete(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path / "store"))
    code, _ = run_cli(["runs"], capsys)
    assert code == 0
    argv = ["train", "--quiet", "--store", "--set", "hidden=8", "--set", "epochs=1"]
    assert cli.main([*argv, "--vary", "norm=batch,none"]) == 0
    out = capsys.readouterr().out
    assert "stored as group" in out
    assert cli.main(["runs", "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)
    assert group["started_by"] == "cli" and group["state"] == "closed"
    assert [r["status"] for r in group["runs"]] == ["finished", "finished"]
    assert group["runs"][0]["rows"]["history"] > 0
    assert cli.main(["runs"]) == 0
    line = capsys.readouterr().out
    assert group["id"] in line and "2 finished" in line
    out = tmp_path / "g.json"
    assert cli.main(["runs", "export", group["id"][:-2], "--out", str(out)]) == 0
    records = json.loads(out.read_text())
    assert list(records) == ["runs"] and len(records["runs"]) == 2
    assert records["runs"][0]["config"]["norm"] == "batch"
    for argv in (["runs", "export", "nope"], ["runs", "export"], ["runs", "delete"]):
        code, err = run_cli(argv, capsys)
        assert code == 2 and err.count("\n") == 1, err
    assert cli.main(["runs", "delete", group["id"]]) == 0
    assert cli.main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == []


def test_cli_group_is_read_only_on_the_dashboard(tmp_path, monkeypatch):
    from bnviz.jobs import JobManager, NotOwner

    monkeypatch.setenv("BNVIZ_RUNS", str(tmp_path))
    assert cli.main(["train", "--quiet", "--store", "--set", "hidden=8", "--set", "epochs=1"]) == 0
    m = JobManager(runs_dir=tmp_path, warm=False)
    try:
        (gid,) = m.jobs
        assert m.get(gid).owner == "cli" and not m.owns(gid, "a-browser-tab")
        with pytest.raises(NotOwner):
            m.delete(gid, by="a-browser-tab")
    finally:
        m.shutdown()


def test_mps_on_a_machine_without_it_is_a_clean_error(capsys):
    import torch

    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    code, err = run_cli(["train", "--quiet", "--set", "device=mps"], capsys)
    assert code == 2 and "MPS is not available" in err and err.count("\n") == 1


def test_store_path_in_readme_is_this_one():
    assert "python -m bnviz runs" in (Path(__file__).parents[1] / "README.md").read_text()
