"""Smoke tests of the issue-6 benchmarks (``python -m benchmarks``): the quick mode of W5 writes
a well-formed JSON record and RESULTS.md; the Markdown and the W1/W2 goal verdicts follow the
measurements they are given."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # benchmarks/ lives at the repo root
    sys.path.insert(0, ROOT)

from benchmarks import _common as C  # noqa: E402
from benchmarks.w1_textbook import mlp_goals  # noqa: E402

MACHINE_KEYS = {"cpu_model", "cores", "numpy", "jax", "torch", "devices", "load_average"}


def _record(name: str, goals: list[dict], rows: list[dict]) -> dict:
    return {
        "name": name,
        "title": f"title of {name}",
        "machine": {"cpu_model": "test cpu", "cores": 2, "load_average": [0.0, 0.0, 0.0]},
        "params": {"quick": True},
        "rows": rows,
        "columns": [("a", "column A"), ("b", "column B")],
        "goals": goals,
        "notes": ["a note"],
        "elapsed_s": 1.0,
    }


def test_w5_quick_writes_json_and_markdown(tmp_path):
    from benchmarks import w5_stats

    results = tmp_path / "results"
    assert w5_stats.main(["--quick", "--results", str(results)]) == 0
    rec = json.loads((results / "w5_stats.json").read_text())
    assert MACHINE_KEYS <= set(rec["machine"])
    (row,) = rec["rows"]
    assert row["first_call_s"] >= row["steady_median_s"] > 0
    assert row["compile_s"] == pytest.approx(row["first_call_s"] - row["steady_median_s"])
    assert row["values"] == row["seeds"] * 128 * 128
    assert rec["goals"][0]["workload"] == "W5" and rec["goals"][0]["met"] is None
    firsts = rec["first_initialiser_call"]  # jinit's and jax's first he_normal() call
    assert set(firsts) == {"jinit", "jax"}
    assert all(f["first_s"] > f["second_s"] > 0 for f in firsts.values())
    assert [g["met"] for g in rec["goals"]] == [None, None]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Goals" in md and "| W5 |" in md and "(no target)" in md
    assert "assert_follows_law(he_normal(), (128, 128))" in md


@pytest.mark.parametrize(
    ("met", "verdict"), [(True, "**met**"), (False, "**missed**"), (None, "(no target)")]
)
def test_markdown_has_one_goal_row_per_goal_and_each_table(tmp_path, met, verdict):
    goals = [C.goal("W1", "goal one", "1.5×", met, "because"), C.goal("W1", "goal two", "x", True)]
    rows = [{"a": 1.23456, "b": None}, {"a": float("nan"), "b": "text"}]
    C.save(_record("w1_textbook", goals, rows), tmp_path)
    C.save(_record("w3_init_throughput", [], rows[:1]), tmp_path)
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    goal_lines = [ln for ln in md.splitlines() if ln.startswith("| W1 |")]
    assert len(goal_lines) == 2 and verdict in goal_lines[0] and "because" in goal_lines[0]
    assert md.index("title of w1_textbook") < md.index("title of w3_init_throughput")
    assert "| column A | column B |" in md and "| 1.23 | — |" in md and "| — | text |" in md
    stored = json.loads((tmp_path / "w1_textbook.json").read_text())  # strict JSON: NaN → null
    assert stored["rows"][1]["a"] is None


@pytest.mark.parametrize("second_host", ["test cpu", "other cpu"])
def test_records_from_two_machines_are_said_apart(tmp_path, second_host):
    one, two = _record("w1_textbook", [], []), _record("w3_init_throughput", [], [])
    two["machine"] = dict(two["machine"], cpu_model=second_host, date="2026-12-05T21:00:00+00:00")
    for rec in (one, two):
        C.save(rec, tmp_path)
    md = C.write_results_md(tmp_path, tmp_path / "RESULTS.md").read_text()
    mixed = "w1_textbook on test cpu; w3_init_throughput on other cpu" in md
    assert mixed is (second_host != "test cpu")
    assert f"s (quick mode) on {second_host} (2026-12-05)" in md  # each section names its own


def _exp(sweep_rate: float, sweepfwd_rate: float, fwd_rate: float, peer_rate: float, roofline):
    """A fake W1/W2 measurement: per-seed FLOPs 1 GFLOP forward, 3 GFLOP for the full sweep."""

    def row(key, name, rate, flops):
        return {
            "key": key,
            "contender": name,
            "seeds_per_s": rate,
            "gflops": rate * flops,
            "roofline_fraction": rate * flops / roofline,
            "ratio_to_best_peer": rate / peer_rate,
            "ceiling_ratio": roofline / flops / peer_rate,
        }

    rates = {"numpy": peer_rate, "sweep": sweep_rate, "sweepfwd": sweepfwd_rate, "fwd": fwd_rate}
    return {
        "rows": [
            row("numpy", "numpy loop", peer_rate, 1.0),
            row("sweep", "jinit.sweep", sweep_rate, 3.0),
            row("sweepfwd", "jinit.sweep(gradients=False)", sweepfwd_rate, 1.0),
            row("fwd", "jinit forward", fwd_rate, 1.0),
        ],
        "rate": rates,
        "best_peer": "numpy",
        "roofline": {"gflops": roofline},
    }


@pytest.mark.parametrize(
    ("sweep_rate", "sweepfwd_rate", "fwd_rate", "expected"),
    [
        # forward 3× / 2× the peer, full sweep at 75 % of the roofline
        (25.0, 20.0, 30.0, [True, True, None, True]),
        (5.0, 10.0, 12.0, [False, False, None, False]),  # 1.2× / 1.0×, sweep at 15 %
        (25.0, 10.0, 15.0, [True, False, None, True]),
    ],
)
def test_mlp_goal_verdicts_follow_the_measurements(sweep_rate, sweepfwd_rate, fwd_rate, expected):
    exp = _exp(sweep_rate, sweepfwd_rate, fwd_rate, 10.0, 100.0)
    goals = mlp_goals("W1", exp, 1.3, 0.75)
    assert [g["met"] for g in goals] == expected
    for g, ok in zip(goals, expected, strict=True):
        assert (g["reason"] == "") == (ok is not False)  # a missed goal always says why
    # the ceiling quoted for the forward is roofline / (1 GFLOP · peer rate) = 100 / 10
    if not expected[0]:
        assert f"{100 / 10:.2f}×" in goals[0]["reason"]
    assert math.isclose(float(goals[0]["measured"].split("×")[0]), fwd_rate / 10.0, rel_tol=0.01)
    assert math.isclose(float(goals[2]["measured"].split("×")[0]), sweep_rate / 10.0, rel_tol=0.01)


def test_draw_limits_add_the_draws_to_the_matmuls_at_the_roofline():
    from benchmarks.w1_textbook import draw_limits

    # draws 0.01 s/seed; forward matmuls 1 GFLOP at 100 GFLOP/s = 0.01 s; best peer 10 seeds/s
    lim = draw_limits([100.0, 50.0, 100.0], [100.0, 100.0, 100.0], [10.0, 10.0, 10.0], 1e9)
    assert math.isclose(lim["forward_ratio"], 1 / 0.02 / 10)  # the median round: 5×
    assert math.isclose(lim["sweep_fraction"], 0.03 / 0.04)  # 3 matmuls per layer: 75 %


def test_product_limit_adds_each_products_own_speed_and_the_draws():
    from benchmarks.w1_textbook import product_limit

    # 1 GFLOP per product and seed; roofline 100 GFLOP/s: 0.03 s for the three at the roofline
    at_roofline = {k: [100.0, 100.0] for k in ("forward", "dx", "dw")}
    assert math.isclose(product_limit(at_roofline, [1e12, 1e12], [100.0, 100.0], 1e9), 1.0)
    # the weight gradient at half speed: 0.01 + 0.01 + 0.02 s, plus 0.01 s of draws
    slow_dw = at_roofline | {"dw": [50.0, 50.0]}
    assert math.isclose(product_limit(slow_dw, [100.0, 100.0], [100.0, 100.0], 1e9), 0.03 / 0.05)


def test_product_probes_compute_the_sweeps_three_products():
    """W1's probes of x·W, g·Wᵀ and xᵀ·g compute those products (their sums over the layers)
    on one full-sweep chunk of seeds."""
    from benchmarks.w1_textbook import product_fns

    width, batch, depth = 8, 5, 3
    probes = product_fns(width, batch, depth, seeds=64)
    xs, ws, gs = (a.astype(np.float64) for a in probes["inputs"])
    assert xs.shape == (probes["chunk"], depth, batch, width) and ws.shape[-2:] == (width,) * 2
    assert probes["flops"] == probes["chunk"] * depth * 2 * batch * width * width
    want = {
        "forward": np.einsum("slbi,slio->s", xs, ws),
        "dx": np.einsum("slbo,slio->s", gs, ws),
        "dw": np.einsum("slbi,slbo->s", xs, gs),
    }
    for name, f in probes["fns"].items():
        got = np.asarray(f(), np.float64)
        # float32 products and sums of ~depth·batch·width² terms of size ~1
        tol = 1e-5 * depth * batch * width * width
        np.testing.assert_allclose(got, want[name], atol=tol, err_msg=name)


@pytest.mark.parametrize(("forward_limit", "out_of_reach"), [(1.2, True), (1.6, False)])
def test_missed_forward_goals_quote_the_measured_draw_limit(forward_limit, out_of_reach):
    exp = _exp(5.0, 10.0, 12.0, 10.0, 100.0)  # every goal missed (second case above)
    exp["limits"] = {"forward_ratio": forward_limit, "sweep_fraction": 0.8}
    exp["rate"]["draws"], exp["normals_per_seed"] = 40.0, 2_000_000
    goals = mlp_goals("W1", exp, 1.3, 0.75)
    for g in goals[:2]:  # the forward and the forward-only sweep
        assert f"at most {forward_limit:.2f}×" in g["reason"]
        assert ("out of reach" in g["reason"]) is out_of_reach
        assert "8e+07 normals/s" in g["reason"]  # 40 seeds/s × 2 M normals
    assert "would be at most 80%" in goals[-1]["reason"]
    assert "xᵀ·g" not in goals[-1]["reason"]  # no product probes measured
    exp["limits"]["products_fraction"] = 0.55
    exp["products_gflops"] = {"forward": 400.0, "dx": 300.0, "dw": 200.0}
    reason = mlp_goals("W1", exp, 1.3, 0.75)[-1]["reason"]
    assert "x·W at 400, g·Wᵀ at 300 and xᵀ·g (contracted over the batch) at 200" in reason
    assert "the sweep would run at 55% of the roofline" in reason


def _w7_rows(first_mib: float, again: float) -> list[dict]:
    """Rows of two depths for both contenders: params 100 MiB, the second call growing by
    ``again`` x the params and the first by ``first_mib`` more."""
    mib, rows = 2**20, []
    for layers in (12, 96):
        for contender in ("jinit", "flax"):
            again_b = int(again * 100 * mib)
            host = again_b + int(first_mib * mib)
            rows.append(
                {
                    "label": f"{layers} layers",
                    "layers": layers,
                    "contender": contender,
                    "compile_s": 3.0,
                    "wall_s": 4.0 if contender == "jinit" else 40.0,
                    "device_peak_over_shard": 1.05,
                    "host_growth_bytes": host,
                    "host_over_params": host / (100 * mib),
                    "host_again_bytes": again_b,
                    "host_again_over_params": again,
                    "peak_reset": True,
                }
            )
    return rows


@pytest.mark.parametrize(("first_mib", "met"), [(10.0, True), (80.0, False)])
def test_w7_host_goal_separates_the_compilers_memory(first_mib, met):
    from benchmarks.w7_init_at_scale import _goals

    goals = _goals(_w7_rows(first_mib, 1.04), [12, 96])
    host = next(g for g in goals if "host" in g["goal"])
    assert host["met"] is met  # 1.04 + 0.10 <= 1.2 < 1.04 + 0.80
    if met:
        assert host["reason"] == ""
    else:  # the first-call excess per configuration and the compiled call's growth
        assert "12 layers 80 MiB" in host["reason"] and "96 layers 80 MiB" in host["reason"]
        assert "at most 1.04×" in host["reason"]


def test_w7_host_goal_is_not_judged_without_a_peak_reset():
    from benchmarks.w7_init_at_scale import _goals

    rows = _w7_rows(10.0, 1.04)
    rows[0]["peak_reset"] = False  # an earlier peak may hide the growth: no verdict
    host = next(g for g in _goals(rows, [12, 96]) if "host" in g["goal"])
    assert host["met"] is None and "could not be reset" in host["reason"]
    assert "12 layers" in host["reason"]


def test_w7_host_goal_is_not_judged_on_a_growth_below_the_parameters():
    """On CPU the parameters live in host memory: a first call reading less growth than their
    bytes (an unreset peak from an exited thread read 0 on the AMD host) gets no verdict."""
    from benchmarks.w7_init_at_scale import _goals

    rows = _w7_rows(10.0, 1.04)
    rows[2]["host_growth_bytes"], rows[2]["host_over_params"] = 0, 0.0
    host = next(g for g in _goals(rows, [12, 96]) if "host" in g["goal"])
    assert host["met"] is None and "below the parameters' own bytes" in host["reason"]
    assert "96 layers" in host["reason"] and "12 layers" not in host["reason"]


def test_peak_rss_reads_the_growth_after_a_reset():
    """The host peak that init-bench reads grows with an allocation made after its reset."""
    from jinit.cli._init_bench import _maxrss_bytes, _reset_peak

    reset, before = _reset_peak()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    grown = _maxrss_bytes() - before
    assert block.sum() > 0
    if reset:  # Linux: the peak is this step's own
        assert 60 * 2**20 <= grown <= 128 * 2**20  # other threads may add a little
    else:
        assert grown >= 0


def test_bare_forward_backward_probe_computes_the_probe_losss_gradients():
    """W1's `jax fwd + bwd` contender does the sweep's work: its per-layer weight-gradient
    norms and grad² are those of jax.grad of <v, h^L> with the same draws."""
    import jax
    import jax.numpy as jnp

    import jinit
    from benchmarks.w1_textbook import jinit_forward

    width, depth, batch = 8, 3, 5
    seeds = np.arange(len(jax.devices()), dtype=np.uint32)  # one per device, as W1 shards them
    grad2, wnorm = jinit_forward(width, depth, batch, kind="fwd_bwd")(seeds)
    init = jinit.variance_scaling(2.0, "fan_in", "normal")
    for i in range(2):
        key = jax.random.fold_in(jax.random.key(0), i)
        kp, kx, kv = (jax.random.fold_in(key, j) for j in range(3))
        x0 = jax.random.normal(kx, (batch, width), jnp.float32)
        v = jax.random.normal(kv, (batch, width), jnp.float32)
        ws = [
            init(jax.random.fold_in(kp, layer), (width, width), jnp.float32) for layer in range(3)
        ]

        def loss(ws, hs=None, x0=x0, v=v):
            x = x0
            for layer, w in enumerate(ws):
                h = x @ w + (0.0 if hs is None else hs[layer])
                if layer == depth - 1:
                    return jnp.sum(v * h)
                x = jax.nn.relu(h)

        dws = jax.grad(loss)(ws)
        dhs = jax.grad(loss, argnums=1)(ws, [jnp.zeros((batch, width))] * depth)
        # float32 sums of <= 8 products per entry: 1e-5 relative is ~100x their rounding
        np.testing.assert_allclose(wnorm[i], [float(jnp.linalg.norm(d)) for d in dws], rtol=1e-5)
        np.testing.assert_allclose(grad2[i], [float(jnp.mean(d * d)) for d in dhs], rtol=1e-5)
