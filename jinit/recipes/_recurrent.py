"""Recurrent-network recipes: IRNN, LSTM forget-gate biases and chrono initialisation (Le et al.
2015; Jozefowicz et al. 2015; Tallec & Ollivier 2018)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import _random
from jinit._core._checks import (
    DTypeLike,
    check_dtype_arg,
    check_key,
    check_real,
)
from jinit._core._paths import is_nnx_module as _is_nnx_module
from jinit._core._paths import named_leaves
from jinit.initializers._base import Initializer
from jinit.initializers._basic import constant, normal, zeros
from jinit.initializers._deterministic import identity
from jinit.initializers._orthogonal import orthogonal
from jinit.initializers._variance_scaling import lecun_normal
from jinit.laws import _laws as laws
from jinit.recipes._recipe import (
    RECIPES_PREFIX,
    Patterns,
    Recipe,
    check_patterns,
    defining_role,
    rules_for,
)
from jinit.trees._reinit import reinit
from jinit.trees._rules import contextual, path_key

# ---------------------------------------------------------------------------------------------
# Recurrent networks: IRNN, LSTM gate biases, chrono
# ---------------------------------------------------------------------------------------------


def irnn(
    gain: float = 1.0,
    input_stddev: float = 0.001,
    *,
    recurrent: Patterns = ("*/h/kernel", "*/dense_h/kernel"),
    inputs: Patterns = ("*/i/kernel", "*/dense_i/kernel"),
    biases: Patterns = ("*/i/bias", "*/dense_i/bias"),
) -> Recipe:
    r"""Rules for an IRNN (Le, Jaitly & Hinton 2015): ReLU RNN with identity recurrence.

    .. math::
        W_{hh} = \mathrm{gain}\cdot I, \qquad W_{xh} \sim \mathcal N(0, 0.001^2), \qquad b = 0.

    Default names are Flax's ``SimpleCell``: linen ``h``/``i``, nnx ``dense_h``/``dense_i``
    (use ``activation_fn=jax.nn.relu``); the rules touch only the cell's parameters. Le et al.
    also use a scaled identity (e.g. 0.01·I for some tasks): pass ``gain``.

    Args:
      gain: the recurrent identity's scale (finite, > 0).
      input_stddev: the input kernel's std (0.001, the Keras ``mnist_irnn`` example; > 0).
      recurrent: glob(s) of the recurrent kernel.
      inputs: glob(s) of the input kernel.
      biases: glob(s) of the cell's bias.

    Returns:
      A :class:`Recipe`: recurrent kernel → gain·I, input kernel → N(0, input_stddev²), bias
      → 0. Defining roles: the recurrent and input kernels.

    Examples:
      >>> import jinit
      >>> jinit.recipes.irnn()[0]
      ('*/h/kernel', jinit.identity())

    References:
      Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
      Units", 2015 (arXiv:1504.00941).
    """
    api = RECIPES_PREFIX + "irnn"
    gain = check_real(api, "gain", gain, positive=True)
    input_stddev = check_real(api, "input_stddev", input_stddev, positive=True)
    recurrent = check_patterns(api, "recurrent", recurrent)
    inputs = check_patterns(api, "inputs", inputs)
    rules = [
        *rules_for(recurrent, identity(gain)),
        *rules_for(inputs, normal(input_stddev)),
        *rules_for(check_patterns(api, "biases", biases), zeros),
    ]
    needs = [
        *defining_role(
            api, "irnn()", "recurrent kernel (gain·I)", recurrent, "`recurrent='*<h>/kernel'`"
        ),
        *defining_role(api, "irnn()", "input kernel", inputs, "`inputs='*<i>/kernel'`"),
    ]
    return Recipe(rules, needs)


def lstm(forget_bias: float = 1.0) -> Recipe:
    r"""Rules for Flax's ``LSTMCell`` (linen and nnx) with the forget-gate bias set to 1.

    Flax's cell has one dense layer per gate and input: input kernels ``ii``, ``if`` (nnx:
    ``if_``), ``ig``, ``io`` without bias and recurrent ``hi``, ``hf``, ``hg``, ``ho`` with bias.
    The rules keep Flax's defaults — input kernels ``lecun_normal``, recurrent kernels
    ``orthogonal``, biases 0 — except the forget-gate bias ``hf/bias`` = ``forget_bias``, so the
    cell starts by remembering (:math:`\sigma(1) = 0.73`), as Jozefowicz et al. 2015 recommend
    (Gers et al. 2000 introduced it). For packed ``4H`` biases use :func:`lstm_bias`.

    Args:
      forget_bias: the forget-gate bias (1.0).

    Returns:
      A :class:`Recipe` for every parameter of a flax ``LSTMCell`` (``reinit`` raises if no
      ``hf/bias`` matches).

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit
      >>> cell = nn.LSTMCell(8)
      >>> x = jnp.ones((1, 4))
      >>> params = cell.init(jax.random.key(0), cell.initialize_carry(jax.random.key(1), x.shape),
      ...                    x)["params"]
      >>> new = jinit.reinit(params, jax.random.key(2), jinit.recipes.lstm())
      >>> float(new["hf"]["bias"][0]), float(new["hi"]["bias"][0])
      (1.0, 0.0)

    References:
      Jozefowicz, Zaremba & Sutskever, "An Empirical Exploration of Recurrent Network
      Architectures", ICML 2015; Gers, Schmidhuber & Cummins, "Learning to Forget", 2000.
    """
    api = RECIPES_PREFIX + "lstm"
    forget_bias = check_real(api, "forget_bias", forget_bias)
    rules = [
        ("*/hf/bias", constant(forget_bias)),
        ("*/h[igo]/bias", zeros),
        ("*/h[ifgo]/kernel", orthogonal()),
        ("*/i[ifgo]/kernel", lecun_normal()),
        ("*/if_/kernel", lecun_normal()),
    ]
    fix = "the parameters of a Flax `LSTMCell` (or `jinit.recipes.lstm_bias` for a packed bias)"
    needs = defining_role(api, "lstm()", "forget-gate bias hf/bias", ("*/hf/bias",), fix)
    return Recipe(rules, needs)


def _gate_order(api: str, gate_order: Any) -> str:
    if not isinstance(gate_order, str) or sorted(gate_order) != sorted("ifgo"):
        raise ValueError(
            f"`{api}` needs `gate_order` to be a permutation of 'ifgo' (input, forget, cell, "
            f"output) giving the order of the gates in the packed 4H axis; got {gate_order!r}. "
            f"PyTorch and Keras use 'ifgo' (Keras calls g 'c'), Haiku 'igfo'."
        )
    return gate_order


def _check_packed(api: str, shape: tuple[int, ...]) -> None:
    if not shape or shape[-1] % 4:
        raise ValueError(
            f"`{api}` needs a packed LSTM bias whose last axis holds the 4 gates (size 4H); got "
            f"shape {shape}. Pass a shape such as (4 * hidden,)."
        )


@dataclasses.dataclass(frozen=True, repr=False)
class LSTMBias(Initializer):
    """A packed ``4H`` LSTM bias: ``forget_bias`` on the forget block, 0 elsewhere."""

    forget_bias: float = 1.0
    gate_order: str = "ifgo"
    dtype: np.dtype | None = None

    api: ClassVar[str] = "recipes.lstm_bias"
    family: ClassVar[str] = "recipe"
    min_rank: ClassVar[int] = 1

    def _check_shape(self, shape):
        _check_packed(self._label, shape)

    def _host(self, shape, dtype) -> np.ndarray:
        h = shape[-1] // 4
        k = self.gate_order.index("f")
        v = np.zeros(shape, dtype)
        v[..., k * h : (k + 1) * h] = np.asarray(self.forget_bias, dtype)
        return v

    def _sample(self, key, shape, dtype):
        del key  # deterministic
        return jnp.asarray(self._host(shape, dtype))

    def _law(self, shape, dtype):
        return laws.DeterministicLaw(self._host(shape, dtype), dtype=dtype)

    def describe(self) -> str:
        return f"forget block {self.forget_bias:g}, others 0 (gate order {self.gate_order})"


def lstm_bias(
    forget_bias: float = 1.0, gate_order: str = "ifgo", dtype: DTypeLike | None = None
) -> LSTMBias:
    r"""Builds the initializer of a packed LSTM bias ``(..., 4H)`` with forget-gate bias 1.

    The last axis holds the four gates' biases in ``gate_order``; the forget block is
    ``forget_bias`` (Jozefowicz et al. 2015), the others 0.

    Args:
      forget_bias: the forget-gate bias (1.0).
      gate_order: the order of the gates along the last axis, a permutation of ``"ifgo"``
        (PyTorch/Keras ``"ifgo"``, Haiku ``"igfo"``).
      dtype: the initializer's default dtype.

    Returns:
      An initializer whose law is the exact array.

    Examples:
      >>> import jax, jinit
      >>> jinit.recipes.lstm_bias(gate_order="igfo")(jax.random.key(0), (8,)).tolist()
      [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]

    References:
      Jozefowicz, Zaremba & Sutskever, "An Empirical Exploration of Recurrent Network
      Architectures", ICML 2015.
    """
    api = RECIPES_PREFIX + "lstm_bias"
    return LSTMBias(
        check_real(api, "forget_bias", forget_bias),
        _gate_order(api, gate_order),
        check_dtype_arg(api, dtype, allow_complex=False),
    )


def _chrono_forget(key, shape, dtype, t_max: float) -> jax.Array:
    """``log U(1, t_max - 1)`` drawn in float32 (at least) and cast."""
    work = jnp.promote_types(dtype, jnp.float32)
    u = _random.uniform(key, shape, work, 1.0, t_max - 1.0)
    return jnp.log(u).astype(dtype)


@dataclasses.dataclass(frozen=True, repr=False)
class ChronoBias(Initializer):
    """A packed ``4H`` LSTM bias with chrono init; see :func:`chrono_bias`."""

    t_max: float
    gate_order: str = "ifgo"
    dtype: np.dtype | None = None

    api: ClassVar[str] = "recipes.chrono_bias"
    family: ClassVar[str] = "recipe"
    min_rank: ClassVar[int] = 1

    def _check_shape(self, shape):
        _check_packed(self._label, shape)

    def _sample(self, key, shape, dtype):
        h = shape[-1] // 4
        b_f = _chrono_forget(key, (*shape[:-1], h), dtype, self.t_max)
        blocks = {"f": b_f, "i": -b_f, "g": jnp.zeros_like(b_f), "o": jnp.zeros_like(b_f)}
        return jnp.concatenate([blocks[g] for g in self.gate_order], axis=-1)

    def _law(self, shape, dtype):
        raise NotImplementedError(
            f"`{self._label}` has no law in jinit.laws: its forget block is log-uniform, "
            f"log U(1, {self.t_max:g} - 1), and its input block the negative of it."
        )

    def describe(self) -> str:
        return f"b_f ~ log U(1, {self.t_max:g} - 1), b_i = -b_f, others 0 ({self.gate_order})"


def _t_max(api: str, t_max: Any) -> float:
    t = check_real(api, "t_max", t_max)
    if not t > 2:
        raise ValueError(
            f"`{api}` needs `t_max` > 2 (b_f ~ log U(1, t_max - 1) needs t_max - 1 > 1); got "
            f"{t!r}. Pass the longest time dependency you expect, e.g. the sequence length."
        )
    return t


def chrono_bias(
    t_max: float, gate_order: str = "ifgo", dtype: DTypeLike | None = None
) -> ChronoBias:
    r"""Builds the chrono initializer of a packed LSTM bias ``(..., 4H)`` (Tallec & Ollivier 2018).

    .. math::
        b_f = \log u,\ u \sim U(1, T_\mathrm{max} - 1), \qquad b_i = -b_f, \qquad b_g = b_o = 0,

    so the forget gates' characteristic times :math:`1/(1 - \sigma(b_f)) \approx 1 + u` spread
    over :math:`[2, T_\mathrm{max}]`, matching dependencies up to :math:`T_\mathrm{max}` steps.

    Args:
      t_max: the longest expected time dependency (> 2).
      gate_order: the gate order along the last axis, a permutation of ``"ifgo"``.
      dtype: the initializer's default dtype (real floating).

    Returns:
      An initializer.

    Examples:
      >>> import jax, jinit
      >>> b = jinit.recipes.chrono_bias(100.0)(jax.random.key(0), (4 * 3,))
      >>> bool((b[:3] == -b[3:6]).all()), bool((b[3:6] >= 0).all()), b[6:].tolist()
      (True, True, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])

    References:
      Tallec & Ollivier, "Can Recurrent Neural Networks Warp Time?", ICLR 2018.
    """
    api = RECIPES_PREFIX + "chrono_bias"
    return ChronoBias(
        _t_max(api, t_max),
        _gate_order(api, gate_order),
        check_dtype_arg(api, dtype, allow_complex=False),
    )


def chrono(
    params: Any,
    key: jax.Array,
    t_max: float,
    *,
    forget: str = "hf",
    input_gate: str = "hi",
) -> Any:
    r"""Applies chrono initialisation to the gate biases of Flax ``LSTMCell`` parameters.

    For every bias whose path ends in ``{forget}/bias`` (Flax: ``hf/bias``) draws
    :math:`b_f = \log u`, :math:`u \sim U(1, T_\mathrm{max} - 1)` with the key
    :func:`jinit.path_key` ``(key, path)``, and sets the input-gate bias next to it
    (``{input_gate}/bias``, Flax ``hi/bias``) to :math:`-b_f` exactly; every other leaf is kept.
    Flax stores the two biases in different leaves, so this is a function of the tree rather than
    a rule (a rule draws each leaf on its own); for packed biases use :func:`chrono_bias`.
    Jit- and vmap-compatible.

    Args:
      params: a tree with Flax ``LSTMCell`` parameters (linen dict, ``nnx.State`` or module).
      key: a PRNG key.
      t_max: the longest expected time dependency (> 2).
      forget: the forget gate's layer name.
      input_gate: the input gate's layer name.

    Returns:
      The tree with chrono forget/input biases.

    Raises:
      ValueError: no forget-gate bias, or one without its input-gate sibling.

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> params = {"hf": {"bias": jnp.zeros(4)}, "hi": {"bias": jnp.zeros(4)}}
      >>> new = jinit.recipes.chrono(params, jax.random.key(0), t_max=50.0)
      >>> bool((new["hi"]["bias"] == -new["hf"]["bias"]).all())
      True

    References:
      Tallec & Ollivier, "Can Recurrent Neural Networks Warp Time?", ICLR 2018.
    """

    api = RECIPES_PREFIX + "chrono"
    key = check_key(api, key)
    t = _t_max(api, t_max)
    for name, v in (("forget", forget), ("input_gate", input_gate)):
        if not isinstance(v, str) or not v or "/" in v:
            raise TypeError(f"`{api}` needs `{name}` to be a layer name (str); got {v!r}.")
    tree = params
    if _is_nnx_module(params):
        from flax import nnx

        tree = nnx.state(params, nnx.Param)
    paths = {p for p, _, _ in named_leaves(tree)}
    suffix_f, suffix_i = f"{forget}/bias", f"{input_gate}/bias"
    forget_paths = [p for p in paths if p == suffix_f or p.endswith("/" + suffix_f)]
    if not forget_paths:
        raise ValueError(
            f"`{api}` found no forget-gate bias (a path ending in {suffix_f!r}) in `params`. "
            f"Pass the parameters of a Flax LSTMCell, or set `forget=` to your layer name."
        )
    values = {p: a for p, a, _ in named_leaves(tree)}
    not_float = [
        f"{p} ({values[p].dtype})"
        for p in forget_paths
        if not jnp.issubdtype(values[p].dtype, jnp.floating)
    ]
    if not_float:
        raise ValueError(
            f"`{api}` needs floating-point gate biases; got {not_float}. Chrono biases are "
            f"logarithms: initialise the LSTM with a float `param_dtype`."
        )
    pairs = {}
    for p in forget_paths:
        q = p[: len(p) - len(suffix_f)] + suffix_i
        if q not in paths:
            raise ValueError(
                f"`{api}`: the forget-gate bias {p!r} has no input-gate bias {q!r} next to it. "
                f"Set `input_gate=` to your layer name."
            )
        pairs[q] = p
    # Draw b_f with the path key of the forget bias (as a rule would), then mirror it.
    draws = {
        p: _chrono_forget(path_key(key, p), values[p].shape, values[p].dtype, t)
        for p in forget_paths
    }

    def forget_init(k, leaf):
        del k
        return draws[leaf.path]

    def input_init(k, leaf):
        del k
        return -draws[pairs[leaf.path]]

    rules = [(p, contextual(forget_init)) for p in forget_paths]
    rules += [(q, contextual(input_init)) for q in pairs]
    return reinit(params, key, rules, strict=False)
