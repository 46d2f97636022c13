"""``jinit init-bench``: bad sizes refused before any process starts; a tiny run measures both
contenders on the same model and writes its rows atomically as JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from jinit.cli import app


def _invoke(*argv: str):
    return CliRunner().invoke(app, ["init-bench", *argv])


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--devices", "3"], "even number of devices"),
        (["--layers", "0,2"], "positive integers"),
        (["--layers", "a"], "positive integers"),
        (["--width", "100"], "multiple of 8"),
        (["--heads", "3"], "must divide --width"),
        (["--dtype", "int32"], "float dtype"),
        (["--out", "/nonexistent-folder/rows.json"], "existing folder"),
    ],
)
def test_bad_input_is_refused_first(argv, words):
    res = _invoke(*argv)
    assert res.exit_code == 2
    assert words in " ".join(res.output.split())


def test_a_tiny_run_measures_both_contenders(tmp_path):
    out = tmp_path / "rows.json"
    res = _invoke(
        "--layers", "1,3", "--width", "16", "--ffn", "32", "--vocab", "32", "--heads", "2",
        "--devices", "2", "--out", str(out), "--leaves",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert [(r["layers"], r["contender"]) for r in rows] == [
        (1, "jinit"), (1, "flax"), (3, "jinit"), (3, "flax"),
    ]  # fmt: skip
    for a, b in zip(rows[::2], rows[1::2], strict=True):
        assert a["params"] == b["params"] and a["param_bytes"] == b["param_bytes"]
    # each device holds half the sharded kernels: a shard is between 1/2 and all of the bytes
    for r in rows:
        assert r["param_bytes"] / 2 <= r["shard_bytes"] < r["param_bytes"]
        assert r["device_peak_bytes"] >= r["shard_bytes"] and r["wall_s"] >= r["compile_s"] > 0
    assert rows[2]["groups"] == rows[0]["groups"]  # depth adds no program
    assert "init-bench" in res.output and "device÷shard" in res.output
    # the second initialisation (programs compiled) is measured apart from the first
    assert all(r["host_again_bytes"] >= 0 for r in rows) and "again÷params" in res.output
    assert all(r["again_s"] > 0 for r in rows)
    assert all(isinstance(r["peak_reset"], bool) for r in rows)
    # --leaves: jinit's per-leaf table of the deepest model (3 layers)
    assert "params/block_2/mlp_down/kernel" in res.output and "program(s)" in res.output
