"""``jinit sweep``: a tiny end-to-end run through typer's CliRunner, and the safe spec parser."""

from __future__ import annotations

import json
import re

import jax
import pytest
from typer.testing import CliRunner

import jinit
from jinit.cli import app
from jinit.cli._specs import parse_init_specs
from jinit.cli._sweep import DEFAULT_INITS

runner = CliRunner()

# 2 devices, or 1 under JINIT_TEST_DEVICES=1 (tests/conftest.py)
DEVICES = min(2, len(jax.local_devices()))
TINY = ["sweep", "--width", "32", "--depth", "3", "--batch", "16", "--seeds", "6"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    res = runner.invoke(
        app,
        [
            *TINY,
            "--inits",
            "he_normal, normal(stddev=0.01)",
            "--devices",
            str(DEVICES),
            "--out",
            str(out),
            "--layer",
            "2",
        ],
    )
    return res, out


def test_cli_runs_and_prints_tables(tiny_run):
    res, _ = tiny_run
    assert res.exit_code == 0, res.output
    for text in (
        "he_normal",
        "normal(stddev=0.01)",
        "pred. std",
        "meas. std ± SE",
        "stable",
        "vanishing",
        "MLP width 32, depth 3, relu",
    ):
        assert text in res.output
    assert f"{DEVICES} cpu device(s)" in res.output
    # one compiled program for both initialisers, its compile time apart from the run time
    out = " ".join(res.output.split())
    assert re.search(r"\(compile [\d.]+ s for 1 program\(s\), run [\d.]+ s\)", out), out
    assert "verdict: activation E[x²] / input E[x²] within [0.1, 10]" in out


def test_cli_writes_files(tiny_run):
    _, out = tiny_run
    names = {
        "results.json",
        "results.csv",
        "depth_profile.png",
        "histogram.png",
        "gradient_profile.png",
    }
    assert names <= {p.name for p in out.iterdir()}
    doc = json.loads((out / "results.json").read_text())
    cfg = doc["config"]
    assert (cfg["seeds"], cfg["batch"], cfg["layers"], cfg["devices"]) == (6, 16, 3, DEVICES)
    assert cfg["architecture"]["width"] == 32
    he = doc["initializers"][0]
    assert he["name"] == "he_normal" and len(he["layers"]) == 3
    layer = he["layers"][0]
    for q in ("second_moment", "std"):
        assert set(layer["measured"][q]) == {"mean", "se", "q05", "q50", "q95"}
    assert "grad_second_moment" in layer["measured"]
    assert set(layer["predicted"]) >= {"second_moment", "std"}
    assert doc["initializers"][1]["layers"][-1]["verdict"] == "vanishing"
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header.startswith("init,layer,layer_name,quantity,mean,se")


@pytest.mark.parametrize(
    "args, match",
    [
        (["--inits", "__import__('os')"], "not a public name"),
        (["--inits", "he_normal, os.system('ls')"], "unknown initialiser 'os.system'"),
        (["--arch", "rnn"], "unknown architecture"),
        (["--activation", "nope"], "not a known activation"),
        (["--devices", "64"], "devices=64"),
    ],
)
def test_cli_rejects_bad_input(args, match, tmp_path):
    res = runner.invoke(app, [*TINY, "--out", str(tmp_path), *args])
    assert res.exit_code == 2
    flat = " ".join(res.output.replace("│", " ").split())  # undo rich's box and line wrapping
    assert match in flat


# ---------------------------------------------------------------------------------------------
# The spec parser
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("he_normal", {"he_normal": jinit.he_normal()}),
        ("zeros", {"zeros": jinit.zeros}),
        ("normal(stddev=0.01)", {"normal(stddev=0.01)": jinit.normal(0.01)}),
        (
            "normal(0.5), orthogonal(scale=2.0)",
            {"normal(0.5)": jinit.normal(0.5), "orthogonal(scale=2.0)": jinit.orthogonal(2.0)},
        ),
        (
            "variance_scaling(2.0, 'fan_in', 'normal')",
            {
                "variance_scaling(2.0, 'fan_in', 'normal')": jinit.variance_scaling(
                    2.0, "fan_in", "normal"
                )
            },
        ),
        ("jinit.glorot_uniform", {"jinit.glorot_uniform": jinit.glorot_uniform()}),
        # the label is the normalised source (ast.unparse)
        (
            "truncated_normal(stddev=2e-2)",
            {"truncated_normal(stddev=0.02)": jinit.truncated_normal(0.02)},
        ),
        ("torch.kaiming_uniform", None),
        ("sparse(sparsity=0.5)", None),
    ],
)
def test_parse_specs(text, expected):
    got = parse_init_specs(text)
    if expected is None:  # catalogue-only names: resolved to an initialiser with a law
        ((spec, init),) = got.items()
        assert spec == text and hasattr(init, "law")
    else:
        assert got == expected


def test_default_specs_parse():
    got = parse_init_specs(DEFAULT_INITS)
    assert list(got) == ["normal(stddev=0.01)", "glorot_uniform", "he_normal"]
    assert got["normal(stddev=0.01)"] == jinit.normal(0.01)


@pytest.mark.parametrize(
    "text, match",
    [
        ("__import__('os')", "not a public name"),
        ("__import__('os').system('ls')", "expected a name"),
        ("he_normal.__class__", "not a public name"),
        ("_core._checks.place()", "not a public name"),
        ("os.system('ls')", "unknown initialiser 'os.system'"),
        ("open('/etc/passwd')", "unknown initialiser 'open'"),
        ("normal(stddev=x)", "arguments must be literals"),
        ("normal(stddev=(lambda: 1)())", "arguments must be literals"),
        ("normal(*[1])", "not allowed"),
        ("he_normal()()", "expected a name or a call"),
        ("[he_normal][0]", "expected a name or a call"),
        ("he_normal(", "not a comma-separated list"),
        ("zeros()", "already an initialiser"),
        ("normal(stddev='a')", "`--inits` spec"),
        ("normal(bogus=1)", "unexpected keyword"),
        ("fans", "'fans' is not an initialiser"),
        ("law(he_normal)", "'law' is not an initialiser"),
        ("Initializer", "unknown initialiser"),
        ("", "at least one"),
        ("laws", "unknown initialiser 'laws'"),
    ],
)
def test_parse_specs_rejects(text, match):
    with pytest.raises((ValueError, TypeError), match=match):
        parse_init_specs(text)
