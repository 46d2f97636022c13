"""Per-seed statistics of a sweep: what one seed's forward and backward pass records for each
layer (second moments, dead and distinct units, non-finite counts, a value sample), and the
per-seed function of the built-in (scanned) architectures."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import _random
from jinit.sweeps._network_base import Network

_DISTINCT_ROWS = 32  # rows (examples x positions) compared to count distinct units
_DISTINCT_RTOL = 1e-3  # units closer than this (relative squared distance) are identical

JUDGE_ACTIVATION = {
    "forward": "act.second_moment",
    "backward": "grad.second_moment",
    "std": "act.std",
    "what": "activation",
}


# ---------------------------------------------------------------------------------------------
# Per-seed statistics
# ---------------------------------------------------------------------------------------------


def stat_dtype(dtype) -> np.dtype:
    return np.dtype(jnp.promote_types(dtype, jnp.float32))


# The one-pass variance E[t²] - E[t]² is used while E[t²] <= 8 Var[t]. A float32 mean of n
# terms errs by at most γ_n = n u / (1 - n u) relative (Higham, Accuracy and Stability of
# Numerical Algorithms, §3.1), so E[t²] errs by <= γ_n E[t²] and E[t]² by <= 2 γ_n E[t²], and
# the std sqrt(Var) by <= (3/2)(E[t²]/Var) γ_n <= 12 γ_n relative: float rounding (a two-pass
# std errs by ~γ_n). Beyond that the seed is computed again with the two-pass std.
_ONE_PASS_CONDITION = 8.0


def _moments(prefix: str, t: jax.Array, sdt, exact: bool = True) -> dict[str, jax.Array]:
    r"""Second moment, mean and std of ``t`` (in ``sdt``).

    With ``exact`` the std is ``jnp.std`` (two passes: the mean, then the mean squared
    deviation). Without it the std comes from the same pass as the two means,
    :math:`\sqrt{\max(\overline{t^2} - \bar t^2, 0)}`, which loses
    :math:`\log_2(\overline{t^2}/\mathrm{Var})` bits to cancellation: :func:`one_pass_flag`
    says when that is more than float rounding.
    """
    t = t.astype(sdt)
    m2, m = jnp.mean(t * t), jnp.mean(t)
    std = jnp.std(t) if exact else jnp.sqrt(jnp.maximum(m2 - m * m, 0))
    return {f"{prefix}.second_moment": m2, f"{prefix}.mean": m, f"{prefix}.std": std}


def one_pass_flag(st: Mapping[str, jax.Array], prefixes: tuple[str, ...]) -> jax.Array:
    r"""0.0 where every one-pass std in ``st`` is well conditioned, else NaN (a float32).

    Well conditioned: :math:`\overline{t^2} \le 8\,\mathrm{Var}` (so
    :math:`|\bar t| \lesssim 2.6\,\mathrm{std}`), true of zero-mean signals and of ReLU, GELU or
    tanh activations of them; a constant tensor (variance 0, e.g. a zero kernel plus a bias)
    or a sigmoid of small inputs (mean 0.5, small spread) is flagged, and the sweep engine
    computes that seed again with the two-pass std.

    Example:
      >>> import jax.numpy as jnp
      >>> st = {**_moments("a", jnp.array([1.0, -1.0, 2.0]), jnp.float32, exact=False),
      ...       **_moments("b", jnp.full(4, 3.0), jnp.float32, exact=False)}
      >>> [float(one_pass_flag(st, (p,))) for p in ("a", "b")]
      [0.0, nan]
    """
    ok = jnp.stack(
        [
            st[f"{p}.second_moment"] <= _ONE_PASS_CONDITION * jnp.square(st[f"{p}.std"])
            for p in prefixes
        ]
    )
    return jnp.where(jnp.all(ok), jnp.float32(0), jnp.float32(jnp.nan))


def _units(t: jax.Array) -> jax.Array:
    return t.reshape(-1, t.shape[-1])


def _dead_fraction(a: jax.Array) -> jax.Array:
    """Fraction of units (last axis) whose activation is exactly zero on every example."""
    return jnp.mean(jnp.all(_units(a) == 0, axis=0).astype(jnp.float32))


def _distinct_units(h: jax.Array, sdt) -> jax.Array:
    """Number of distinct units: columns of ``h`` (over a few examples) not equal to an earlier one.

    Two units count as identical when their squared distance over the first rows is at most
    ``1e-3`` of the sum of their squared norms: random units are at relative distance ~1,
    units computed from identical weights at ~1e-7 (float rounding).
    """
    r = _units(h)[:_DISTINCT_ROWS].astype(sdt)
    n = jnp.sum(r * r, axis=0)
    gram = jnp.matmul(r.T, r, precision=jax.lax.Precision.HIGHEST)
    total = n[:, None] + n[None, :]
    same = (total - 2 * gram) <= _DISTINCT_RTOL * total
    earlier = jnp.tril(same, -1)  # unit j equals some unit k < j
    return (r.shape[1] - jnp.sum(jnp.any(earlier, axis=1))).astype(jnp.float32)


_EXACT_FLOAT_COUNT = 2**24  # float32 adds 0/1 exactly while every partial sum is below 2^24


def nonfinite_count(*ts: jax.Array) -> jax.Array:
    """The number of non-finite entries in ``ts`` (a float32 scalar).

    Counted as a float32 sum of 0/1 values, which XLA:CPU vectorises (an integer reduction of
    booleans is several times slower) and which is exact for tensors under :math:`2^{24}`
    entries; larger tensors are counted in int32.

    Example:
      >>> import jax.numpy as jnp
      >>> float(nonfinite_count(jnp.array([1.0, jnp.nan, jnp.inf]), jnp.zeros(3)))
      2.0
    """

    def count(t: jax.Array) -> jax.Array:
        bad = ~jnp.isfinite(t)
        if t.size < _EXACT_FLOAT_COUNT:
            return jnp.sum(bad, dtype=jnp.float32)
        return jnp.sum(bad, dtype=jnp.int32).astype(jnp.float32)

    return sum(count(t) for t in ts)


def nonfinite_flag(*second_moments: jax.Array) -> jax.Array:
    """0.0 where every mean of squares in ``second_moments`` is finite, else NaN (a float32).

    A stand-in for :func:`nonfinite_count` that costs a few scalar operations: a mean of
    squares is a sum of non-negative terms, so one inf/NaN entry makes it inf/NaN, and a finite
    mean proves the tensor finite (count 0). NaN means "unknown": the entries may be finite
    but large (their squares overflow) or not; the sweep engine then counts the flagged seeds
    again exactly (``exact_stats=True``). Counting costs a compare per entry, which XLA:CPU
    runs outside its vectorised reduction fusions: ~15 % of the time of a forward-only MLP
    64 x 20 sweep.

    Example:
      >>> import jax.numpy as jnp
      >>> [float(nonfinite_flag(jnp.float32(v), jnp.float32(1))) for v in (2.0, jnp.inf)]
      [0.0, nan]
    """
    ok = jnp.all(jnp.isfinite(jnp.stack([jnp.asarray(m, jnp.float32) for m in second_moments])))
    return jnp.where(ok, jnp.float32(0), jnp.float32(jnp.nan))


def nonfinite_stat(ts: tuple, second_moments: tuple, exact_stats: bool) -> jax.Array:
    """A layer's non-finite statistic: :func:`nonfinite_count` of the tensors ``ts``, or
    without ``exact_stats`` :func:`nonfinite_flag` of their ``second_moments``."""
    return nonfinite_count(*ts) if exact_stats else nonfinite_flag(*second_moments)


def _sample(a: jax.Array, k: int) -> jax.Array:
    flat = a.reshape(-1)
    idx = np.linspace(0, flat.shape[0] - 1, min(k, flat.shape[0])).astype(np.int64)
    return flat[idx].astype(jnp.float32)


def forward_stats(h, a, x_out, sdt, sample_size: int, exact_stats: bool = True):
    """Forward statistics of one layer: pre-activation ``h``, activation ``a``, output.

    Without ``exact_stats`` the stds are one-pass and ``nonfinite`` is a flag (0 or NaN):
    NaN where :func:`nonfinite_flag` or :func:`one_pass_flag` cannot vouch for the layer, and
    the sweep engine then computes the seed again with ``exact_stats``."""
    h, a, x_out = _units(h), _units(a), _units(x_out)
    prefixes = ("preact", "act", "output")
    st = {}
    for prefix, t in zip(prefixes, (h, a, x_out), strict=True):
        st.update(_moments(prefix, t, sdt, exact_stats))
    st["dead_fraction"] = _dead_fraction(a)
    st["distinct_units"] = _distinct_units(h, sdt)
    moments = (st["preact.second_moment"], st["act.second_moment"])
    st["nonfinite"] = nonfinite_stat((h, a), moments, exact_stats)
    if not exact_stats:
        st["nonfinite"] = st["nonfinite"] + one_pass_flag(st, prefixes)
    st["act.sample"] = _sample(a, sample_size)
    return st


def builtin_seed_fn(
    net: Network,
    init,
    bias_init,
    batch: int,
    dtype: np.dtype,
    sample_size: int,
    input_second_moment: float,
    root: jax.Array,
    counter: list[int],
    keep_params: bool = False,
    gradients: bool = True,
    exact_stats: bool = True,
) -> Callable[[jax.Array], dict[str, jax.Array]]:
    """The per-seed function of a built-in (scanned) architecture.

    With ``keep_params`` the forward scan also saves each layer's parameters for the backward
    scan; otherwise the backward scan draws them again from the layer's key (the same bits).
    Without ``gradients`` there is no backward scan and the forward scan saves nothing.
    Without ``exact_stats`` the stds are one-pass and the non-finite counts are flags
    (:func:`forward_stats`).
    """
    n_layers = net.depth
    sdt = stat_dtype(dtype)
    names = [s.name for s in net.param_specs()]
    scale = math.sqrt(input_second_moment)

    def params(kp, layer):
        return net.layer_params(jax.random.fold_in(kp, layer), init, bias_init, dtype)

    def one_seed(idx):
        counter[0] += 1  # runs at trace time only: counts traces
        key = jax.random.fold_in(root, idx)
        kp, kx, kv = (jax.random.fold_in(key, i) for i in range(3))
        x0 = (_random.normal(kx, (batch, *net.input_shape()), jnp.float32) * scale).astype(dtype)

        def forward(x, layer):
            p = params(kp, layer)
            h, aux = net.pre(p, x)
            x_out, a = net.post(p, h, x, aux)
            out = jax.tree_util.tree_leaves(x_out)[0]
            st = forward_stats(h, a, out, sdt, sample_size, exact_stats)
            if not gradients:  # nothing saved for a backward pass
                return x_out, (st, ())
            kept = p if keep_params else ()
            return x_out, (st, (x, h, aux, kept))

        x_last, (fst, saved) = jax.lax.scan(forward, net.initial_carry(x0), jnp.arange(n_layers))
        if not gradients:
            return dict(fst)
        on_output = net.loss_on_output
        # the probe loss <v, y>: y = h^L (theory convention) or the network output x^L
        y_shape = jax.tree_util.tree_leaves(x_last)[0].shape if on_output else saved[1].shape[1:]
        v = _random.normal(kv, y_shape, jnp.float32).astype(dtype)

        def backward(ct, inp):
            layer, x, h, aux, kept = inp
            p = kept if keep_params else params(kp, layer)
            _, post_vjp = jax.vjp(lambda p_, h_, x_, a_: net.post(p_, h_, x_, a_)[0], p, h, x, aux)
            dp_post, dh, dx_post, daux = post_vjp(ct)
            g = dh if on_output else dh + jnp.where(layer == n_layers - 1, v, jnp.zeros_like(v))
            _, pre_vjp = jax.vjp(net.pre, p, x)
            dp_pre, dx_pre = pre_vjp((g, daux))
            st = _backward_stats(g, ct, dp_post, dp_pre, names, sdt, exact_stats)
            return jax.tree_util.tree_map(jnp.add, dx_post, dx_pre), st

        ct0 = _initial_cotangent(x_last, v, on_output)
        _, bst = jax.lax.scan(backward, ct0, (jnp.arange(n_layers), *saved), reverse=True)
        out = dict(fst)
        out["grad.nonfinite"] = bst.pop("nonfinite")
        out.update(bst)
        return out

    return one_seed


def _backward_stats(
    g: jax.Array,
    ct: Any,
    dp_post: Mapping,
    dp_pre: Mapping,
    names: list[str],
    sdt: Any,
    exact_stats: bool = True,
) -> dict[str, jax.Array]:
    """One layer's backward statistics: ``g = dL/dh``, cotangent ``ct``, parameter grads."""
    gf = g.astype(sdt)
    cf = jax.tree_util.tree_leaves(ct)[-1].astype(sdt)  # d/d(layer activation)
    g2 = jnp.mean(gf * gf)
    st = {
        "grad.second_moment": g2,
        "grad_output.second_moment": jnp.mean(cf * cf),
        "nonfinite": nonfinite_stat((g,), (g2,), exact_stats),
    }
    for name in names:
        d = (dp_post[name] + dp_pre[name]).astype(sdt)
        st[f"param_grad_norm.{name}"] = jnp.sqrt(jnp.sum(d * d))
    return st


def _initial_cotangent(x_last: Any, v: jax.Array, on_output: bool) -> Any:
    """The backward scan's initial carry: zeros like ``x_last``, or ``v`` on the stream."""
    ct0 = jax.tree_util.tree_map(jnp.zeros_like, x_last)
    if on_output:  # dL/dx^L = v on the stream (the carry's first leaf)
        leaves, tdef = jax.tree_util.tree_flatten(ct0)
        ct0 = jax.tree_util.tree_unflatten(tdef, [v, *leaves[1:]])
    return ct0


def _layer_parts(net: Network, batch: int, dtype: np.dtype) -> tuple[int, int, int]:
    """``(carry, rest, parameters)``: per seed, bytes of one layer's input carry, of its
    pre-activation and aux, and of its parameters."""
    x = jax.ShapeDtypeStruct((batch, *net.input_shape()), dtype)
    carry = jax.eval_shape(net.initial_carry, x)
    specs = {s.name: jax.ShapeDtypeStruct(s.shape, dtype) for s in net.param_specs()}
    h, aux = jax.eval_shape(net.pre, specs, carry)
    nbytes = lambda ts: sum(math.prod(t.shape) * np.dtype(t.dtype).itemsize for t in ts)
    leaves = jax.tree_util.tree_leaves
    return nbytes(leaves(carry)), nbytes([h, *leaves(aux)]), nbytes(specs.values())


def _layer_bytes(net: Network, batch: int, dtype: np.dtype) -> tuple[int, int]:
    """``(activations, parameters)``: bytes of one layer's saved activations (input carry,
    pre-activation, aux) and of its parameters, per seed."""
    carry, rest, par = _layer_parts(net, batch, dtype)
    return carry + rest, par


def layer_working_set(net: Network, batch: int, dtype: np.dtype, gradients: bool = True) -> int:
    """Bytes one seed touches per layer of the scan. Forward: the input carry, the
    pre-activation and aux, the output carry and the parameters; with ``gradients`` the
    backward step touches each of those and its cotangent, twice as much."""
    carry, rest, par = _layer_parts(net, batch, dtype)
    forward = 2 * carry + rest + par
    return 2 * forward if gradients else forward


def keeps_params(net: Network, batch: int, dtype: np.dtype) -> bool:
    """Whether the backward scan reuses the forward scan's parameters instead of drawing them
    again: when a layer's parameters take no more memory than its saved activations (at most
    doubling the saved bytes). Drawing is costly on CPU: threefry normals run at ~10^8 values/s,
    a quarter of the CPU time of an MLP 512 x 10 sweep with batch 1000 (half of it the second
    draw). Layers whose weights outweigh the batch (width > batch) keep drawing twice, so the
    saved memory stays O(batch · width) per layer."""
    act, par = _layer_bytes(net, batch, dtype)
    return par <= act


def saved_bytes_of(net: Network, batch: int, dtype: np.dtype, gradients: bool = True) -> int:
    """Bytes the forward scan keeps for the backward pass, per seed (without ``gradients``:
    only one layer's transients)."""
    act, par = _layer_bytes(net, batch, dtype)
    if not gradients:
        return 4 * act
    per_layer = act + (par if keeps_params(net, batch, dtype) else 0)
    # + transients of one layer (activation, cotangents, stats) ~ 4 more activations
    return net.depth * per_layer + 4 * act


def check_init_output(api: str, who: str, out: Any, shape: tuple, dtype: Any, where: str):
    """Refuses an initialiser's (abstract) output that is not an array of ``shape``/``dtype``."""
    dtype = np.dtype(dtype)
    if not (hasattr(out, "shape") and hasattr(out, "dtype")):
        raise TypeError(
            f"`{api}`: {who} returned {out!r} of type {type(out).__name__} for {where}; an "
            f"initialiser must return an array of shape {tuple(shape)} and dtype {dtype.name}."
        )
    if tuple(out.shape) != tuple(shape):
        raise ValueError(
            f"`{api}`: {who} returned shape {tuple(out.shape)} for {where}; expected shape "
            f"{tuple(shape)} (dtype {dtype.name}). An initialiser must return an array of the "
            f"`shape` it is given."
        )
    if np.dtype(out.dtype) != dtype:
        raise TypeError(
            f"`{api}`: {who} returned dtype {np.dtype(out.dtype).name} for {where}; expected "
            f"{dtype.name} (shape {tuple(shape)}). An initialiser must honour its `dtype` "
            f"argument; the sweep would otherwise measure silently cast values."
        )


def wrap_init_error(api: str, who: str, where: str, e: BaseException) -> Exception:
    """A clean error (same type for TypeError/ValueError) for an initialiser that raised."""
    if isinstance(e, (TypeError, ValueError)) and str(e).startswith(f"`{api}`"):
        return type(e)(str(e)) if type(e) in (TypeError, ValueError) else ValueError(str(e))
    kind = TypeError if isinstance(e, TypeError) else ValueError
    return kind(f"`{api}`: {who} fails on {where}: {type(e).__name__}: {e}")


def probe_builtin(api: str, net: Network, inits: Mapping[str, Any], bias_init, dtype, key):
    """Calls every initialiser once abstractly (``jax.eval_shape``) on the network's parameter
    shapes and checks what it returns, so a bad initialiser fails before any compile."""
    where_all = f"every one of the {net.depth} layers of the {net.describe()}"
    jobs = [(f"initialiser {label!r}", init, "weight") for label, init in inits.items()]
    jobs.append(("`bias_init`", bias_init, "bias"))
    for who, fn, role in jobs:
        for spec in net.param_specs():
            if spec.role != role:
                continue
            where = f"the {spec.name!r} parameter of shape {spec.shape} in {where_all}"
            try:
                out = jax.eval_shape(lambda k, fn=fn, spec=spec: fn(k, spec.shape, dtype), key)
            except Exception as e:
                raise wrap_init_error(api, who, where, e) from e
            check_init_output(api, who, out, spec.shape, dtype, where)
