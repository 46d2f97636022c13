r"""Calibration of :func:`jinit.testing.assert_follows_law`: false alarms and power, measured.

For every catalogue entry (``jinit.catalogue.entries()``) and a few shapes and dtypes:

* **false-alarm rate** — run the check on the *correct* law for ``--keys`` (default 1000)
  independent base keys at ``alpha = 0.01`` (raised from the default 1e-6 so the count is
  measurable) with the default number of seeds, count failures, and report the one-sided 95 %
  Clopper–Pearson upper bound. A calibrated check fails at most ``alpha`` of the time.
* **power** — at the defaults (``alpha = 1e-6``, default seeds), the fraction of ``--power-keys``
  keys (default 300) for which the check catches a deliberate error: the std mis-scaled by ±3 %,
  the upper bound of a uniform law moved by ±3 % of its magnitude, the wrong family with the same
  mean and variance (uniform for normal-type laws, normal for uniform ones, disk/normal for
  complex ones), the sign of one entry of an orthogonal matrix flipped, and one entry of a
  deterministic array moved by one ulp (from 0: to the smallest normal number). Target: at
  least 0.99.

Writes ``benchmarks/results/calibration.json`` and prints a Markdown table.

    python benchmarks/calibration.py                 # everything (about an hour on 2 cores)
    python benchmarks/calibration.py --quick         # 200 keys, 50 power keys, float32 only
    python benchmarks/calibration.py --entries he_normal,orthogonal --dtypes float32
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

import jinit
from jinit.catalogue import entries
from jinit.laws import _laws as L
from jinit.stats._sizing import default_seeds
from jinit.testing import check_law

RESULTS = Path(__file__).resolve().parent / "results"
FALSE_ALARM_ALPHA = 0.01
POWER_CASES = ("std ×1.03", "std ×0.97", "bound +3%", "bound −3%", "family", "sign flip", "ulp")
# Extra shapes for a few entries, on top of every entry's example shape.
EXTRA_SHAPES = {
    "he_normal": [(8, 4), (3, 3, 64, 128)],
    "glorot_uniform": [(3, 3, 16, 32), (1024,)],
    "orthogonal": [(16, 256)],
    "normal": [(4096,)],
}
MAX_VALUES = 2**16  # larger example shapes are replaced by a smaller shape of the same rank
# complex64 is calibrated for these entries (one of each complex law type) at their example shape.
COMPLEX_ENTRIES = {"normal", "he_normal", "glorot_uniform", "orthogonal", "delta_orthogonal"}


# ---------------------------------------------------------------------------------------------
# Deliberately wrong initialisers
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Perturbed:
    """``base`` with a deliberate error (hashable, so the compiled sweep is reused).

    Attributes:
      base: the correct initialiser.
      kind: "scale" (multiply by ``factor``), "upper" (move the upper bound ``hi`` of a uniform
        law ``U[lo, hi)`` to ``hi + (factor - 1) * max(|lo|, |hi|)``), "family" (replace the
        values by another family with the same mean and variance, keeping exact zeros), "flip"
        (flip the sign of the first entry of the orthogonal matrix) or "ulp" (move the first
        entry up by one ulp).
      factor: the factor of "scale" and "upper".
      law: the correct law (hashable laws only).
    """

    base: Any
    kind: str
    factor: float = 1.0
    law: Any = None

    def __call__(self, key, shape, dtype=None):
        w = self.base(key, shape, dtype)
        lw = self.law
        if self.kind == "scale":
            return (w * self.factor).astype(w.dtype)
        if self.kind == "upper":
            lo, hi = lw.low, lw.high
            new_hi = hi + (self.factor - 1) * max(abs(lo), abs(hi))
            x = w.astype(jnp.float32)
            return (lo + (x - lo) * ((new_hi - lo) / (hi - lo))).astype(w.dtype)
        if self.kind == "family":
            values = _other_family(lw.nonzero if isinstance(lw, L.SparseLaw) else lw, key, shape)
            return jnp.where(w == 0, 0, values).astype(w.dtype)
        if self.kind == "flip":
            if isinstance(lw, L.DeltaOrthogonalLaw):
                index = tuple(lw.centre) + (0, 0)
            else:
                index = (0,) * len(shape)
            return w.at[index].multiply(-1)
        if self.kind == "ulp":  # one ulp up (from 0: the smallest normal, XLA:CPU flushes
            index = (0,) * len(shape)  # subnormals to zero)
            x = w[index]
            up = jnp.nextafter(x, jnp.asarray(jnp.inf, w.dtype))
            tiny = jnp.asarray(jnp.finfo(w.dtype).tiny, w.dtype)
            return w.at[index].set(jnp.where(x == 0, tiny, up))
        raise ValueError(f"unknown perturbation {self.kind!r}")


def _other_family(law: L.ElementwiseLaw, key, shape) -> jax.Array:
    """Draws of another family with the law's mean and variance (E|z|^2 for complex)."""
    k = jax.random.fold_in(key, 7)
    sd = math.sqrt(law.variance)
    if isinstance(law, (L.Normal, L.TruncatedNormal)):
        u = jax.random.uniform(k, shape, jnp.float32, -1.0, 1.0)
        return float(law.mean) + sd * math.sqrt(3.0) * u
    if isinstance(law, L.Uniform):
        return float(law.mean) + sd * jax.random.normal(k, shape, jnp.float32)
    if isinstance(law, (L.ComplexNormal, L.ComplexTruncatedNormal)):
        r = jnp.sqrt(jax.random.uniform(k, shape)) * sd * math.sqrt(2.0)
        phase = jax.random.uniform(jax.random.fold_in(k, 1), shape) * 2 * math.pi
        return r * jnp.exp(1j * phase)
    if isinstance(law, L.ComplexDiskUniform):
        return sd * jax.random.normal(k, shape, jnp.complex64)
    raise TypeError(f"no other family for {type(law).__name__}")


def power_cases(law: Any) -> dict[str, tuple[str, float]]:
    """The applicable perturbations ``{case: (kind, factor)}`` for ``law``."""
    cases: dict[str, tuple[str, float]] = {}
    vlaw = law.nonzero if isinstance(law, L.SparseLaw) else law
    if isinstance(law, L.DeterministicLaw):
        return {"ulp": ("ulp", 1.0)}
    if isinstance(vlaw, L.ElementwiseLaw) and not vlaw.variance > 0:
        return cases
    cases["std ×1.03"] = ("scale", 1.03)
    cases["std ×0.97"] = ("scale", 0.97)
    if isinstance(vlaw, L.Uniform) and not isinstance(law, L.SparseLaw):
        cases["bound +3%"] = ("upper", 1.03)
        cases["bound −3%"] = ("upper", 0.97)
    if isinstance(vlaw, L.ElementwiseLaw):
        cases["family"] = ("family", 1.0)
    if isinstance(law, (L.OrthogonalLaw, L.DeltaOrthogonalLaw)):
        cases["sign flip"] = ("flip", 1.0)
    return cases


# ---------------------------------------------------------------------------------------------
# Binomial bounds (exact, no scipy)
# ---------------------------------------------------------------------------------------------


def _binom_cdf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
        for i in range(k + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def upper_bound(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided Clopper–Pearson upper confidence bound on a rate from ``k`` of ``n``."""
    if k >= n:
        return 1.0
    lo, hi = k / n, 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _binom_cdf(k, n, mid) > 1 - conf:
            lo = mid
        else:
            hi = mid
    return hi


def lower_bound(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided Clopper–Pearson lower confidence bound on a rate from ``k`` of ``n``."""
    return 1.0 - upper_bound(n - k, n, conf)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def _small_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if math.prod(shape) <= MAX_VALUES:
        return shape
    if len(shape) == 1:
        return (4096,)
    if len(shape) == 2:
        return (256, 128)
    return tuple(shape[:-2]) + (16, 32)


def configs(names: set[str] | None, dtypes: list[str]) -> list[dict]:
    """(entry, init, shape, dtype) to calibrate; aliases and duplicates are skipped."""
    out, seen = [], set()
    for e in entries():
        if names and e.name not in names:
            continue
        init = e.build()
        shapes = [_small_shape(tuple(e.example_shape)), *EXTRA_SHAPES.get(e.name, [])]
        for j, shape in enumerate(shapes):
            for dt in dtypes:
                if dt.startswith("complex") and (e.name not in COMPLEX_ENTRIES or j > 0):
                    continue
                try:
                    law = jinit.law(init, shape, dt)
                except (TypeError, ValueError):
                    continue
                ident = (init, shape, dt)
                try:
                    if ident in seen:
                        continue
                    seen.add(ident)
                except TypeError:
                    pass
                out.append(dict(entry=e.name, init=init, shape=shape, dtype=dt, law=law))
    return out


def _hashable(law: Any) -> Any:
    try:
        hash(law)
        return law
    except TypeError:
        return None


def run_config(cfg: dict, keys: int, power_keys: int, key_offset: int = 10_000) -> dict:
    """False alarms over ``keys`` keys and power over ``power_keys`` keys for one config."""
    init, shape, dt, law = cfg["init"], cfg["shape"], cfg["dtype"], cfg["law"]
    t0 = time.perf_counter()
    fails, by_check = 0, {}
    report = None
    for i in range(keys):
        report = check_law(init, shape, dtype=dt, key=key_offset + i, alpha=FALSE_ALARM_ALPHA)
        if not report.passed:
            fails += 1
            for c in report.failed:
                by_check[c.name] = by_check.get(c.name, 0) + 1
    row = {
        "entry": cfg["entry"],
        "shape": list(shape),
        "dtype": dt,
        "law": law.summary(),
        "law_type": type(law).__name__,
        "seeds": default_seeds(shape),
        "values_per_key": report.count if report else None,
        "false_alarm": {
            "keys": keys,
            "alpha": FALSE_ALARM_ALPHA,
            "failures": fails,
            "rate": fails / keys,
            "upper95": upper_bound(fails, keys),
            "by_check": by_check,
        },
        "power": {},
    }
    hl = _hashable(law)
    for case, (kind, factor) in power_cases(law).items():
        if power_keys <= 0:
            break
        bad = Perturbed(init, kind, factor, hl)
        caught = 0
        for i in range(power_keys):
            r = check_law(bad, shape, law=law, dtype=dt, key=key_offset + 100_000 + i)
            caught += not r.passed
        row["power"][case] = {
            "keys": power_keys,
            "caught": caught,
            "rate": caught / power_keys,
            "lower95": lower_bound(caught, power_keys),
        }
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def markdown(rows: list[dict]) -> str:
    head = (
        "| entry | shape | dtype | seeds | false alarms (α=0.01) | 95% upper | "
        + " | ".join(POWER_CASES)
        + " |"
    )
    lines = [head, "|" + "---|" * (6 + len(POWER_CASES))]
    for r in rows:
        fa = r["false_alarm"]
        power = [f"{r['power'][c]['rate']:.3f}" if c in r["power"] else "—" for c in POWER_CASES]
        lines.append(
            f"| {r['entry']} | {tuple(r['shape'])} | {r['dtype']} | {r['seeds']} | "
            f"{fa['failures']}/{fa['keys']} | {fa['upper95']:.4f} | " + " | ".join(power) + " |"
        )
    return "\n".join(lines)


def summarise(rows: list[dict]) -> dict:
    fa_rates = [r["false_alarm"]["rate"] for r in rows]
    total_f = sum(r["false_alarm"]["failures"] for r in rows)
    total_k = sum(r["false_alarm"]["keys"] for r in rows)
    out = {
        "configs": len(rows),
        "max_false_alarm_rate": max(fa_rates) if rows else None,
        "max_upper95": max(r["false_alarm"]["upper95"] for r in rows) if rows else None,
        "pooled_false_alarms": f"{total_f}/{total_k}",
        "pooled_rate": total_f / total_k if total_k else None,
        "pooled_upper95": upper_bound(total_f, total_k) if total_k else None,
        "min_power": {},
    }
    for dt in sorted({r["dtype"] for r in rows}):
        for case in POWER_CASES:
            vals = [
                r["power"][case]["rate"] for r in rows if r["dtype"] == dt and case in r["power"]
            ]
            if vals:
                out["min_power"][f"{dt} {case}"] = min(vals)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1000, help="keys for the false-alarm rate")
    ap.add_argument("--power-keys", type=int, default=300, help="keys per power case (float32)")
    ap.add_argument(
        "--power-keys-other", type=int, default=100, help="keys per power case (other dtypes)"
    )
    ap.add_argument("--entries", default="", help="comma-separated catalogue names (default all)")
    ap.add_argument("--dtypes", default="float32,bfloat16,complex64")
    ap.add_argument("--quick", action="store_true", help="200 keys, 50 power keys, float32")
    ap.add_argument("--out", default=str(RESULTS / "calibration.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.keys, args.power_keys, args.dtypes = 200, 50, "float32"
        args.power_keys_other = 50
    names = {n for n in args.entries.split(",") if n} or None
    dtypes = [d for d in args.dtypes.split(",") if d]
    todo = configs(names, dtypes)
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "jax": jax.__version__,
        "jinit": jinit.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "devices": [str(d) for d in jax.local_devices()],
        "false_alarm_alpha": FALSE_ALARM_ALPHA,
        "power_alpha": 1e-6,
        "seeds_rule": "max(16, ceil(2**18 / prod(shape))), at most 4096",
    }
    for i, cfg in enumerate(todo):
        pk = args.power_keys if cfg["dtype"] == "float32" else args.power_keys_other
        row = run_config(cfg, args.keys, pk)
        rows.append(row)
        fa = row["false_alarm"]
        pw = ", ".join(f"{c} {v['rate']:.3f}" for c, v in row["power"].items())
        print(
            f"[{i + 1}/{len(todo)}] {row['entry']} {tuple(row['shape'])} {row['dtype']}: "
            f"false alarms {fa['failures']}/{fa['keys']} (95% ≤ {fa['upper95']:.4f}); {pw} "
            f"[{row['seconds']} s]",
            flush=True,
        )
        out.write_text(
            json.dumps({"meta": meta, "rows": rows, "summary": summarise(rows)}, indent=1)
        )
    summary = summarise(rows)
    out.write_text(json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1))
    print()
    print(markdown(rows))
    print()
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
