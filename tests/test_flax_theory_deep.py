"""Issue 15 at depth 48: the traced theory of every model family of ``test_flax_theory.py``
(pre-LN GPT decoder, post-LN encoder, nnx ViT, pre-activation ResNet with BatchNorm) at 48
blocks, under three schemes each (stable, exploding, a recipe).

Opt-in (``JINIT_DEEP_TESTS=1``): each family takes 5 to 10 minutes on a 2-core CPU and up to
10 GB of memory (the draws of 48 attention layers are kept for the backward pass), beyond the
default suite's budget; the default suite runs the same models at 4 to 8 blocks and the MLPs
at 48 layers. Run with::

    JINIT_DEEP_TESTS=1 python -m pytest -q -p no:xdist tests/test_flax_theory_deep.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_flax_theory import (
    NnxBlock,
    ViT,
    _small_images,
    resnet_sweeps,
    transformer_models,
)

import jinit
from jinit.testing import assert_matches_theory

pytestmark = pytest.mark.skipif(
    os.environ.get("JINIT_DEEP_TESTS") != "1",
    reason="48-block models take minutes each: set JINIT_DEEP_TESTS=1 to run them",
)

DEPTH = 48
STREAM = ["output.second_moment", "grad.second_moment"]
LARGE = jinit.variance_scaling(4.0, "fan_in", "normal")


def _report(res, forward: str) -> None:
    """The worst relative error |measured - predicted| / predicted over the covered layers,
    printed (``-s``) for the README's table."""
    worst = []
    for q in (forward, "grad.second_moment"):
        errs = [0.0]
        for label in res.labels:
            p, m = res.prediction(label, q), res.summary(label, q).mean
            ok = np.isfinite(p) & (np.abs(p) > 0)
            errs += list(np.abs(m[ok] - p[ok]) / np.abs(p[ok]))
        worst.append(max(errs))
    print(f"\n{'/'.join(res.labels)}: worst forward {worst[0]:.1%}, gradient {worst[1]:.1%}")
    if os.environ.get("JINIT_DEEP_VERBOSE") == "1":
        for label in res.labels:
            per = res.per_seed[label]["grad.second_moment"]
            p = res.prediction(label, "grad.second_moment")
            f = res.prediction(label, "grad.fluctuation")
            for i in range(0, len(p), 4):
                col = per[:, i]
                rel = col.std() / col.mean()
                print(
                    f"{label} {i}: predicted {p[i]:.4g} (fluct {f[i]:.2f}), seed mean "
                    f"{col.mean():.4g}, median {np.median(col):.4g}, rel std {rel:.2f}"
                )


def _check(res):
    _report(res, "output.second_moment")
    assert_matches_theory(res, quantities=STREAM)
    for label in res.labels:
        pred = res.prediction(label, "output.second_moment")
        assert pred.shape == (DEPTH,) and np.all(np.isfinite(pred)), res.notes[label]


@pytest.mark.parametrize("pre", [True, False])
def test_transformers_at_depth_48(pre):
    """48 pre-LN causal blocks (GPT) or post-LN bidirectional blocks (BERT) under LeCun, x4
    and GPT-2's recipe: every block within tolerance; the pre-LN stream grows ~linearly under
    LeCun and x4, and stays flat under GPT-2's 1/sqrt(2L) residual projections."""
    model, gpt2 = transformer_models(DEPTH, pre)
    r = jinit.sweep(model, {"lecun": jinit.lecun_normal(), "large": LARGE}, seeds=8, batch=8)
    g = jinit.sweep(gpt2, {"gpt2": jinit.normal(0.02)}, seeds=8, batch=8)
    _check(r)
    _check(g)
    if pre:
        grow = r.prediction("large", "output.second_moment")
        assert grow[-1] > 20 * grow[0]
        flat = g.prediction("gpt2", "output.second_moment")
        assert flat[-1] < 2 * flat[0]


def test_vision_transformer_at_depth_48():
    """An nnx ViT of 48 blocks under LeCun, x4 and SkipInit-style zero output projections."""
    model = jinit.nnx_model(
        lambda i, r: ViT(i, r, DEPTH), _small_images, layers=NnxBlock, residual=True
    )
    skip = jinit.nnx_model(
        lambda i, r: ViT(i, r, DEPTH, jinit.zeros), _small_images, layers=NnxBlock, residual=True
    )
    r = jinit.sweep(model, {"lecun": jinit.lecun_normal(), "large": LARGE}, seeds=8, batch=8)
    z = jinit.sweep(skip, {"skipinit": jinit.lecun_normal()}, seeds=8, batch=8)
    _check(r)
    _check(z)
    stream = z.prediction("skipinit", "output.second_moment")
    np.testing.assert_allclose(stream, stream[0], rtol=1e-12)


def test_preactivation_resnet_at_depth_48():
    """A pre-activation ResNet of 48 blocks with BatchNorm in training mode under He, LeCun,
    an x8 scale and Fixup-style zero last convolutions: every covered layer within
    tolerance (the pooled head's forward is not covered, as at 4 blocks)."""
    r, z = resnet_sweeps(DEPTH, batch=16)
    for res in (r, z):
        _report(res, "preact.second_moment")
        assert_matches_theory(res)
        pre = res.prediction(res.labels[0], "preact.second_moment")
        assert pre.shape == (2 * DEPTH + 2,) and np.sum(np.isnan(pre)) == 1
    # the zero-initialised branches add nothing: every block's input is the stem's output
    fix = z.prediction("fixup-like", "preact.second_moment")
    np.testing.assert_allclose(fix[2:-1:2], 0.0)
