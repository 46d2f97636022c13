"""The coordinate check of Yang et al. (2022): activation scales of an MLP after a few steps,
across widths, under SP and µP, on the one seeds engine (:func:`coord_check`, its plot)."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jinit._core._checks import check_choice, check_int, check_real
from jinit._core._paths import map_named
from jinit._core._seeds import root_key, seed_keys
from jinit.initializers._base import Initializer
from jinit.initializers._basic import zeros
from jinit.initializers._variance_scaling import he_normal
from jinit.mup._mup_init import check_sp_rules, leaf_key, mup_factor, sp_init
from jinit.mup._optim import scale_by_mup
from jinit.mup._widths import width_info

# ---------------------------------------------------------------------------------------------
# Coordinate check
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class CoordCheckResult:
    """Activation scale per parametrisation, step, width, seed and layer.

    Attributes:
      widths: the hidden widths, increasing.
      layers: layer names (``Dense_0`` input … ``Dense_{depth}`` readout).
      parametrizations: ``("µP", "SP")``.
      steps: number of optimiser steps; records are taken before step 0 and after each step.
      values: ``{parametrisation: array (steps + 1, n_widths, seeds, n_layers)}`` of the mean
        absolute pre-activation (``Dense`` output) over the batch and units.
      config: the settings of the run.
    """

    widths: tuple[int, ...]
    layers: tuple[str, ...]
    parametrizations: tuple[str, ...]
    steps: int
    values: dict[str, np.ndarray]
    config: dict[str, Any]

    def scale(self, parametrization: str, layer: str | int = -1) -> np.ndarray:
        """Seed-mean activation scale, array ``(steps + 1, n_widths)`` for one layer."""
        li = self.layers.index(layer) if isinstance(layer, str) else layer
        return self.values[parametrization][..., li].mean(axis=2)

    def slope(self, parametrization: str, layer: str | int = -1, step: int = -1) -> float:
        r"""Least-squares slope of :math:`\log_2` scale against :math:`\log_2` width.

        0 means width-independent; 1 means the scale doubles when the width doubles.
        """
        y = np.log2(self.scale(parametrization, layer)[step])
        x = np.log2(np.asarray(self.widths, float))
        return float(np.polyfit(x, y, 1)[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: seed-mean scales and the slopes of every layer after each step."""
        out: dict[str, Any] = {
            "widths": list(self.widths),
            "layers": list(self.layers),
            "steps": self.steps,
            "config": self.config,
        }
        for p in self.parametrizations:
            out[p] = {
                layer: {
                    "scale": self.scale(p, layer).tolist(),
                    "slope_per_step": [
                        self.slope(p, layer, t) if np.all(self.scale(p, layer)[t] > 0) else None
                        for t in range(self.steps + 1)
                    ],
                }
                for layer in self.layers
            }
        return out


def _mlp_shapes(d_in: int, width: int, depth: int, n_out: int) -> dict[str, dict[str, Any]]:
    dims = [d_in] + [width] * depth + [n_out]
    return {
        f"Dense_{i}": {
            "kernel": jax.ShapeDtypeStruct((a, b), jnp.float32),
            "bias": jax.ShapeDtypeStruct((b,), jnp.float32),
        }
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True))
    }


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p, v in flat.items():
        layer, name = p.split("/")
        out.setdefault(layer, {})[name] = v
    return out


def _mlp_forward(params, x, depth: int, n_units):
    """ReLU MLP; returns the logits and the mean |pre-activation| of every Dense layer.

    Hidden layers may be zero-padded beyond their first ``n_units`` units: padded units have
    zero weights in and out, so they stay exactly 0 (also under training, their gradients are
    0) and the statistic averages over the real units only.
    """
    stats = []
    h = x
    for i in range(depth + 1):
        layer = params[f"Dense_{i}"]
        z = h @ layer["kernel"] + layer["bias"]
        if i < depth:
            real = jnp.arange(z.shape[-1]) < n_units
            stats.append(jnp.sum(jnp.abs(z) * real) / (z.shape[0] * n_units))
        else:
            stats.append(jnp.mean(jnp.abs(z)))
        h = jax.nn.relu(z)
    return z, jnp.stack(stats)


def _train_records(params, mults, n_units, x, y, *, depth, lr, steps, optimizer):
    """Records of every layer before step 0 and after each of ``steps`` optimiser steps."""

    def loss_fn(p):
        logits, stats = _mlp_forward(p, x, depth, n_units)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, stats

    base = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr)
    tx = optax.chain(base, scale_by_mup(mults))

    def step(carry, _):
        p, s = carry
        (_, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), stats

    (p, _), recs = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    _, last = _mlp_forward(p, x, depth, n_units)
    return jnp.concatenate([recs, last[None]], axis=0)


def _coord_run(draws, factors, mults, n_units, x, y, *, depth, lr, steps, optimizer):
    """Records ``(parametrisation, seed, step, layer)``: SP draws × per-leaf µP/SP factor."""

    def one(fac, mult):
        params = map_named(lambda p, d: d * fac[p].astype(d.dtype), draws)
        train = functools.partial(
            _train_records, depth=depth, lr=lr, steps=steps, optimizer=optimizer
        )
        return jax.vmap(train, in_axes=(0, None, None, None, None))(params, mult, n_units, x, y)

    return jax.vmap(one)(factors, mults)


def _check_coord_data(api: str, data: Any, n_out: int) -> tuple[jax.Array, jax.Array]:
    """``data=(x, y)``: finite features (batch, d_in), integer labels in [0, n_out)."""
    hint = (
        "Pass `data=(x, y)` with x a float array of shape (batch, features) and y integer "
        "labels of shape (batch,) in [0, n_out)."
    )
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise TypeError(f"`{api}` got `data={data!r}`, which is not a pair (x, y). {hint}")
    raw_x, raw_y = data
    for name, v in (("x", raw_x), ("y", raw_y)):
        dt = getattr(v, "dtype", None)
        if dt is None or not (np.issubdtype(np.dtype(dt), np.number) or np.dtype(dt) == bool):
            raise TypeError(
                f"`{api}` needs `data` = (x, y) of numeric arrays; its {name} is {v!r:.80} of "
                f"type {type(v).__name__}. {hint}"
            )
    x = jnp.asarray(raw_x, jnp.float32)
    if x.ndim != 2 or np.shape(raw_y) != x.shape[:1] or x.shape[0] < 1:
        raise ValueError(
            f"`{api}` needs `data=(x, y)` with x of shape (batch, features) and y of shape "
            f"(batch,); got {x.shape} and {np.shape(raw_y)}. {hint}"
        )
    if not jnp.issubdtype(raw_y.dtype, jnp.integer):
        raise TypeError(
            f"`{api}` needs integer class labels in `data=(x, y)`; y has dtype {raw_y.dtype}. "
            f"{hint}"
        )
    y = jnp.asarray(raw_y, jnp.int32)
    if not bool(jnp.isfinite(x).all()):
        raise ValueError(f"`{api}` needs finite features in `data=(x, y)`; x has inf/NaN entries.")
    lo, hi = int(jnp.min(y)), int(jnp.max(y))
    if lo < 0 or hi >= n_out:
        raise ValueError(
            f"`{api}` needs labels in [0, n_out) = [0, {n_out}); `data`'s y has labels from {lo} "
            f"to {hi}. Pass `n_out` = the number of classes ({hi + 1} at least)."
        )
    return x, y


@functools.partial(jax.jit, static_argnums=(0, 1))
def _draw(ini: Initializer, shape: tuple[int, ...], keys: jax.Array) -> jax.Array:
    return jax.vmap(lambda k: ini(k, shape, jnp.float32))(keys)


def coord_check(
    widths: Sequence[int] = (64, 128, 256, 512, 1024),
    *,
    base_width: int | None = None,
    depth: int = 3,
    steps: int = 4,
    seeds: int = 3,
    learning_rate: float = 1e-2,
    optimizer: str = "adam",
    readout: str = "zero",
    batch: int = 64,
    d_in: int = 32,
    n_out: int = 10,
    sp_rules: Sequence[tuple[str, Initializer]] = (("*bias", zeros), ("*", he_normal())),
    data: tuple[Any, Any] | None = None,
    seed: int = 0,
) -> CoordCheckResult:
    r"""Coordinate check (Tensor Programs V; ``mup.coord_check``): µP against SP.

    Trains a ReLU MLP (``d_in`` → ``depth`` hidden layers of each width → ``n_out`` logits,
    softmax cross-entropy) for ``steps`` full-batch steps on one fixed batch, for every width,
    under µP (:func:`init` + :func:`scale_by_mup`, base ``base_width``) and under SP (the same
    ``sp_rules`` at every width, the same ``learning_rate`` everywhere), ``seeds`` initialisations
    in one ``vmap``. It records the mean :math:`|z|` of every layer's pre-activation :math:`z`
    before the first step and after each step. Under µP these stay :math:`\Theta(1)` as the
    width grows; under SP with Adam the updates :math:`\Delta W x` add up coherently over
    :math:`n` inputs and grow :math:`\propto n`, and so do the logits.

    Args:
      widths: hidden widths, increasing, at least 2.
      base_width: the width where µP equals SP (default ``widths[0]``).
      depth: number of hidden layers.
      steps: optimiser steps.
      seeds: initialisations per width.
      learning_rate: base learning rate (both parametrisations).
      optimizer: ``"adam"`` or ``"sgd"``.
      readout: µP readout, ``"zero"`` or ``"scaled"``.
      batch: batch size of the random batch (ignored with ``data``), >= 1.
      d_in: input features of the random batch (ignored with ``data``), >= 1.
      n_out: classes, >= 2.
      sp_rules: the SP initialisation (first match wins).
      data: optional ``(x, y)``: features ``(batch, d_in)`` and integer labels in ``[0, n_out)``.
      seed: seed of the batch and the initialisations (int >= 0).

    Returns:
      A :class:`CoordCheckResult`; :func:`plot_coord_check` draws it.

    Raises:
      TypeError, ValueError: any bad argument (checked before anything is compiled or
        trained): widths not increasing ints, non-positive counts or learning rate, fewer
        than 2 classes, ``data`` that is not a pair of finite features and integer labels in
        ``[0, n_out)``.

    Examples:
      >>> from jinit import mup
      >>> r = mup.coord_check((32, 64, 128), depth=2, steps=2, seeds=1, batch=16,
      ...                     learning_rate=0.03)
      >>> # slope of log2 |logits| against log2 width after 2 steps: ~1 under SP, ~0 under µP
      >>> bool(r.slope("SP") > 0.5 and abs(r.slope("µP")) < 0.15)
      True
    """
    api = "jinit.mup.coord_check"
    widths, base_width = _check_widths(api, widths, base_width)
    depth = check_int(api, "depth", depth, minimum=1)
    steps = check_int(api, "steps", steps, minimum=1)
    seeds = check_int(api, "seeds", seeds, minimum=1)
    lr = check_real(api, "learning_rate", learning_rate, positive=True)
    check_choice(api, "optimizer", optimizer, ("adam", "sgd"))
    check_choice(api, "readout", readout, ("zero", "scaled"))
    sp_rules = check_sp_rules(api, sp_rules)
    batch = check_int(api, "batch", batch, minimum=1)
    d_in = check_int(api, "d_in", d_in, minimum=1)
    n_out = check_int(api, "n_out", n_out, minimum=2)
    seed = check_int(api, "seed", seed, minimum=0)
    x, y, keys = _coord_batch(api, data, seed, seeds, batch, d_in, n_out)
    if data is not None:
        d_in = int(x.shape[1])
    values = _coord_values(
        api, widths, base_width, x, y, keys, sp_rules, readout, depth, n_out, lr, steps, optimizer
    )
    config = dict(
        base_width=base_width,
        depth=depth,
        steps=steps,
        seeds=seeds,
        learning_rate=lr,
        optimizer=optimizer,
        readout=readout,
        batch=int(x.shape[0]),
        d_in=d_in,
        n_out=n_out,
        data="given" if data is not None else "random normal",
        seed=seed,
    )
    return CoordCheckResult(
        widths=widths,
        layers=tuple(f"Dense_{i}" for i in range(depth + 1)),
        parametrizations=tuple(values),
        steps=steps,
        values=values,
        config=config,
    )


def _check_widths(
    api: str, widths: Sequence[int], base_width: int | None
) -> tuple[tuple[int, ...], int]:
    """``(widths, base_width)`` checked: at least two strictly increasing ints >= 1."""
    if isinstance(widths, str) or not isinstance(widths, Sequence):
        raise TypeError(
            f"`{api}` needs `widths` to be a sequence of ints; got {widths!r} of type "
            f"{type(widths).__name__}. Pass e.g. `widths=(64, 128, 256)`."
        )
    if len(widths) < 2:
        raise ValueError(
            f"`{api}` needs at least two `widths` (a slope against width); got {widths!r}. "
            f"Pass e.g. `widths=(64, 128, 256)`."
        )
    widths = tuple(check_int(api, "widths[i]", w, minimum=1) for w in widths)
    if list(widths) != sorted(set(widths)):
        raise ValueError(f"`{api}` needs strictly increasing `widths`; got {widths}.")
    base_width = (
        widths[0] if base_width is None else check_int(api, "base_width", base_width, minimum=1)
    )
    return widths, base_width


def _coord_batch(
    api: str, data: Any, seed: int, seeds: int, batch: int, d_in: int, n_out: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(x, y, keys)``: the batch (``data`` checked, or drawn) and the keys of the seeds."""
    if data is not None:
        x, y = _check_coord_data(api, data, n_out)
    # the seeds engine's key policy: threefry keys; seed s initialises from fold_in(root, s),
    # the batch (shared by every seed) from fold_in(root, 2**32 - 1)
    root = root_key(api, seed, None)
    kx, ky = jax.random.split(jax.random.fold_in(root, 2**32 - 1))
    if data is None:
        x = jax.random.normal(kx, (batch, d_in), jnp.float32)
        y = jax.random.randint(ky, (batch,), 0, n_out)
    return x, y, jnp.stack(seed_keys(root, range(seeds)))


def _coord_values(
    api: str,
    widths: tuple[int, ...],
    base_width: int,
    x: jax.Array,
    y: jax.Array,
    keys: jax.Array,
    sp_rules: Sequence[tuple[str, Initializer]],
    readout: str,
    depth: int,
    n_out: int,
    lr: float,
    steps: int,
    optimizer: str,
) -> dict[str, np.ndarray]:
    """``{"µP": …, "SP": …}``: records ``(steps + 1, n_widths, seeds, n_layers)`` of each."""
    d_in = int(x.shape[1])

    @functools.cache
    def leaf_keys(path: str) -> jax.Array:  # computed outside jit: threefry compiles slowly
        return jax.vmap(leaf_key, in_axes=(0, None))(keys, path)

    base = _mlp_shapes(d_in, base_width, depth, n_out)
    delta = _mlp_shapes(d_in, 2 * base_width, depth, n_out)  # marks the width axes
    padded = _mlp_shapes(d_in, widths[-1], depth, n_out)
    # One compiled program for every width: each width's SP draws (at their true shapes) are
    # zero-padded to the largest width, which leaves the narrow network's training exact.
    # µP = SP draw × per-leaf factor (what `init` samples); both are vmapped in one call.
    run = jax.jit(
        functools.partial(_coord_run, depth=depth, lr=lr, steps=steps, optimizer=optimizer)
    )
    out: list[np.ndarray] = []
    for w in widths:
        info = width_info(_mlp_shapes(d_in, w, depth, n_out), base, delta_params=delta)
        sp = {p: sp_init(api, p, sp_rules) for p in info}
        draws = _padded_draws(info, sp, leaf_keys, padded)
        factors = {
            p: jnp.asarray([mup_factor(api, i, sp[p], jnp.float32, readout), 1.0], jnp.float32)
            for p, i in info.items()
        }
        mults = {
            p: jnp.asarray([i.lr_multiplier(optimizer), 1.0], jnp.float32) for p, i in info.items()
        }
        rec = run(_nest(draws), factors, mults, jnp.float32(w), x, y)  # (2, seeds, t, layers)
        out.append(np.asarray(jnp.swapaxes(rec, 1, 2)))
    names = ("µP", "SP")
    return {n: np.stack([o[k] for o in out], axis=1) for k, n in enumerate(names)}


def _padded_draws(
    info: dict[str, Any],
    sp: dict[str, Initializer],
    leaf_keys: Any,
    padded: dict[str, dict[str, Any]],
) -> dict[str, jax.Array]:
    """Each leaf's SP draws for every seed, zero-padded to its shape at the largest width."""
    draws = {}
    for p, i in info.items():
        d = _draw(sp[p], i.shape, leaf_keys(p))
        layer, name = p.split("/")
        pad = [(0, 0)] + [
            (0, m - n) for n, m in zip(i.shape, padded[layer][name].shape, strict=True)
        ]
        draws[p] = jnp.pad(d, pad)
    return draws


def plot_coord_check(result: CoordCheckResult, path: str | os.PathLike | None = None):
    """Draws a coordinate check: one row per parametrisation, one panel per layer.

    x: width (log2 axis); y: seed-mean absolute pre-activation (log axis, shared); one line per step
    (t = 0 is the initialisation). Flat lines mean the layer's scale does not depend on width.

    Args:
      result: a :class:`CoordCheckResult`.
      path: optional file to write (PNG, rendered with Agg; no global backend change).

    Returns:
      The ``matplotlib.figure.Figure``.

    Examples:
      >>> from jinit import mup
      >>> r = mup.coord_check((16, 32), depth=1, steps=1, seeds=1, batch=8)
      >>> len(mup.plot_coord_check(r).axes)
      4
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    api = "jinit.mup.plot_coord_check"
    if not isinstance(result, CoordCheckResult):
        raise TypeError(
            f"`{api}` needs a CoordCheckResult from `coord_check`; got {result!r:.80} of type "
            f"{type(result).__name__}."
        )
    if path is not None:
        _check_plot_path(api, path)
    n_l, n_p = len(result.layers), len(result.parametrizations)
    fig = Figure(figsize=(2.8 * n_l + 0.6, 2.6 * n_p + 0.8), layout="constrained")
    axs = fig.subplots(n_p, n_l, sharex=True, sharey=True, squeeze=False)
    cmap = colormaps["viridis"]
    for r, p in enumerate(result.parametrizations):
        for c, layer in enumerate(result.layers):
            ax = axs[r][c]
            _plot_panel(ax, result, p, layer, c, cmap)
            if r == n_p - 1:
                ax.set_xlabel("width")
            if c == 0:
                ax.set_ylabel("mean |pre-activation|")
            ax.grid(True, which="both", alpha=0.3)
    axs[0][-1].legend(fontsize=7, title="step", title_fontsize=7)
    c = result.config
    fig.suptitle(
        f"µP coordinate check: {c['depth']}-hidden-layer ReLU MLP, {c['optimizer']} lr "
        f"{c['learning_rate']:g} at every width, {c['seeds']} seeds, base width {c['base_width']}, "
        f"readout {c['readout']}"
    )
    if path is not None:
        fig.savefig(os.fspath(path), dpi=110)
    return fig


def _check_plot_path(api: str, path: Any) -> None:
    """``path`` is a file name (str or path) in an existing folder, not a folder."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"`{api}` needs `path` to be a file name (str or path) or None; got {path!r} of "
            f"type {type(path).__name__}."
        )
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if os.path.isdir(os.fspath(path)) or not os.path.isdir(folder):
        raise ValueError(
            f"`{api}` cannot write `path={os.fspath(path)!r}`: "
            + ("it is a folder" if os.path.isdir(os.fspath(path)) else "no folder " + folder)
            + ". Pass a file name such as 'coord_check.png' in an existing folder."
        )


def _plot_panel(ax: Any, result: CoordCheckResult, p: str, layer: str, c: int, cmap: Any) -> None:
    """Panel ``c`` of a row: the scale of ``layer`` under ``p`` against width, a line per step."""
    w = np.asarray(result.widths)
    s = result.scale(p, layer)
    for t in range(result.steps + 1):
        pos = s[t] > 0
        ax.plot(
            w[pos],
            s[t][pos],
            "o-",
            ms=3,
            lw=1.5,
            color=cmap(t / max(result.steps, 1)),
            label=f"t={t}",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    kind = "readout" if c == len(result.layers) - 1 else ("input" if c == 0 else "hidden")
    sl = result.slope(p, layer) if np.all(s[-1] > 0) else float("nan")
    ax.set_title(f"{p} · {layer} ({kind})\nslope at t={result.steps}: {sl:+.2f}", fontsize=9)
