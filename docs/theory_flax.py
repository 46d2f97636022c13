"""Draws ``docs/theory_flax.png`` and prints the README's table for issue 15: jinit's traced
mean-field predictions against sweeps of Flax models and the built-in transformer.

    python docs/theory_flax.py

The figure: the residual stream's second moment per block of a GPT-style decoder (token and
position embeddings, 12 pre-LN blocks of causal 4-head softmax attention and a GELU MLP, width
64, 16 tokens) under LeCun normal (embeddings N(0, 1)), an exploding scale, plain
normal(0.02) everywhere and GPT-2's recipe (the same with the residual output projections
scaled by 1/sqrt(2 L)); markers
are seed means, lines the predictions from the trace. The table: the worst relative error
|measured - predicted| / predicted over every covered layer, for the forward second moment and
the gradient, per model family (the models of ``tests/test_flax_theory.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def _worst(result, forward: str, backward: str = "grad.second_moment") -> tuple[float, float]:
    out = []
    for q in (forward, backward):
        errs = []
        for label in result.labels:
            p = result.prediction(label, q)
            m = result.summary(label, q).mean
            ok = np.isfinite(p) & (np.abs(p) > 0)
            errs += list(np.abs(m[ok] - p[ok]) / np.abs(p[ok]))
        out.append(max(errs) if errs else float("nan"))
    return out[0], out[1]


def main() -> int:
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import test_flax_theory as T

    import jinit

    depth, seeds = 12, 32
    plain = jinit.linen_model(
        lambda i: T.Transformer(i, depth, True), T._ids, layers=T.AttnBlock, residual=True
    )
    gpt2 = jinit.linen_model(
        lambda i: T.Transformer(i, depth, True, jinit.gpt2_residual(depth), jinit.normal(0.02)),
        T._ids,
        layers=T.AttnBlock,
        residual=True,
    )
    small = jinit.linen_model(  # normal(0.02) everywhere, embeddings included
        lambda i: T.Transformer(i, depth, True, None, jinit.normal(0.02)),
        T._ids,
        layers=T.AttnBlock,
        residual=True,
    )
    schemes = {
        "lecun_normal": jinit.lecun_normal(),
        "variance_scaling(4, fan_in)": jinit.variance_scaling(4.0, "fan_in", "normal"),
    }
    r = jinit.sweep(plain, schemes, seeds=seeds, batch=16)
    n = jinit.sweep(small, {"normal(0.02)": jinit.normal(0.02)}, seeds=seeds, batch=16)
    g = jinit.sweep(gpt2, {"GPT-2: normal(0.02), residual 1/sqrt(2L)": jinit.normal(0.02)},
                    seeds=seeds, batch=16)  # fmt: skip
    fig, ax = plt.subplots(figsize=(7, 4.2))
    blocks = np.arange(1, depth + 1)
    for res in (r, n, g):
        for label in res.labels:
            p = res.prediction(label, "output.second_moment")
            s = res.summary(label, "output.second_moment")
            (line,) = ax.plot(blocks, p, "-", label=f"{label} (theory)")
            ax.errorbar(blocks, s.mean, yerr=2 * s.se, fmt="o", ms=4, color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("block")
    ax.set_ylabel("E[x²] of the residual stream")
    ax.set_title("GPT-style decoder with softmax attention (Flax): seeds (markers) vs theory")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = HERE / "theory_flax.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")

    rows = [("GPT-style decoder, 12 pre-LN blocks, width 64", _worst(r, "output.second_moment"))]
    rows.append(("... normal(0.02) everywhere", _worst(n, "output.second_moment")))
    rows.append(("... with GPT-2's recipe", _worst(g, "output.second_moment")))
    two = schemes
    post = jinit.linen_model(
        lambda i: T.Transformer(i, 6, False), T._ids, layers=T.AttnBlock, residual=True
    )
    pr = jinit.sweep(post, two, seeds=seeds, batch=16)
    rows.append(("post-LN encoder with attention, 6 blocks", _worst(pr, "output.second_moment")))
    vit = jinit.nnx_model(
        lambda i, k: T.ViT(i, k, 8), T._small_images, layers=T.NnxBlock, residual=True
    )
    vr = jinit.sweep(vit, two, seeds=seeds, batch=16)
    rows.append(("ViT (nnx), 8 blocks, mean-pooled head", _worst(vr, "output.second_moment")))
    bt = jinit.sweep(jinit.transformer(64, 8, 4, seq_len=16), two, seeds=seeds)
    rows.append(
        ("built-in `jinit.transformer`, 8 blocks", _worst(bt, "output.second_moment",
                                                          "grad_output.second_moment"))
    )  # fmt: skip
    mlp = jinit.linen_model(lambda i: T.LinenMLP(i, 48, "tanh"), T._features(64))
    mr = jinit.sweep(mlp, T.MLP_SCHEMES["tanh"], seeds=seeds, batch=32)
    rows.append(("tanh MLP, 48 layers, width 64", _worst(mr, "preact.second_moment")))
    res = jinit.linen_model(
        lambda i: T.PreActResNet(i, 4), T._images, apply_kwargs={"mutable": ["batch_stats"]}
    )
    rr = jinit.sweep(res, {"he": jinit.he_normal(), "lecun": jinit.lecun_normal()}, seeds=16,
                     batch=32)  # fmt: skip
    rows.append(("pre-activation ResNet + BatchNorm, 4 blocks", _worst(rr, "preact.second_moment")))
    print("| model | worst forward error | worst gradient error |")
    print("|---|---|---|")
    for name, (f, b) in rows:
        print(f"| {name} | {100 * f:.1f} % | {100 * b:.1f} % |")
    del jax
    return 0


if __name__ == "__main__":
    sys.exit(main())
