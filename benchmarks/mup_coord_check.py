r"""µP coordinate check (Yang et al. 2022, *Tensor Programs V*, Fig. 5): figure and figures.

Trains a 3-hidden-layer ReLU MLP at widths 64 … 1024 for 4 Adam steps (lr 1e-2 at every width,
3 seeds, one fixed random batch) under µP (base width 64, zero readout, Table 3 learning rates)
and under the standard parametrisation, records the mean absolute pre-activation of every layer
after each step, and writes

* ``docs/mup_coord_check.png`` — one row per parametrisation, one panel per layer;
* ``benchmarks/results/mup_coord_check.json`` — seed-mean scales and the slope of
  :math:`\log_2` scale against :math:`\log_2` width for every layer and step (0 = flat).

    python benchmarks/mup_coord_check.py            # about 1 min on 2 cores
    python benchmarks/mup_coord_check.py --digits   # scikit-learn's bundled digits as the batch
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import numpy as np

import jinit.mup as mup

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="64,128,256,512,1024")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--readout", default="zero", choices=("zero", "scaled"))
    ap.add_argument("--digits", action="store_true", help="use 64 digits images as the batch")
    ap.add_argument("--png", default=str(ROOT / "docs" / "mup_coord_check.png"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "mup_coord_check.json"))
    args = ap.parse_args(argv)

    data = None
    if args.digits:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = (x[:64] - x.mean(0)) / (x.std(0) + 1e-6)
        data = (x.astype(np.float32), y[:64])
    t0 = time.perf_counter()
    r = mup.coord_check(
        tuple(int(w) for w in args.widths.split(",")),
        depth=args.depth,
        steps=args.steps,
        seeds=args.seeds,
        learning_rate=args.lr,
        readout=args.readout,
        data=data,
    )
    seconds = time.perf_counter() - t0
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    mup.plot_coord_check(r, args.png)
    out = r.to_dict()
    out["seconds"] = round(seconds, 2)
    out["platform"] = {"jax": jax.__version__, "python": platform.python_version()}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")

    print(f"coordinate check in {seconds:.1f} s -> {args.png}, {args.json}")
    print("slope of log2 mean|pre-activation| vs log2 width after the last step:")
    print("| layer | µP | SP |\n|---|---|---|")
    for layer in r.layers:
        sl = [out[p][layer]["slope_per_step"][-1] for p in r.parametrizations]
        print(f"| {layer} | " + " | ".join("–" if s is None else f"{s:+.2f}" for s in sl) + " |")
    return out


if __name__ == "__main__":
    main()
