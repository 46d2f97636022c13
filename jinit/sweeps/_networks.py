r"""Built-in architectures for propagation sweeps: MLP, CNN and a pre-LN transformer stack.

Each architecture is a stack of ``depth`` identical layers, so a sweep can run it with
``lax.scan`` over depth and generate every layer's weights *inside* the scan body from a
per-layer key (``fold_in(key, layer)``). Compile time therefore does not grow with depth and a
whole network is never held in memory: only one layer's weights exist at a time.

A layer is split into two functions so the sweep can differentiate it cheaply:

* ``pre(params, x) -> (h, aux)``: everything up to the layer's *pre-activation* ``h`` (the
  quantity mean-field theory tracks), plus ``aux``, any other tensor ``post`` needs;
* ``post(params, h, x, aux) -> (x_out, a)``: the layer output ``x_out`` (the next layer's input)
  and its *activation* ``a = φ(h)``.

Conventions (the ones of :func:`jinit.theory.predict_mlp`): the input ``x⁰`` has i.i.d.
entries of second moment ``input_second_moment``; layer ``l = 1..L`` computes
``hˡ = xˡ⁻¹ Wˡ + bˡ`` and ``xˡ = φ(hˡ)``. Weights follow the Flax layout ``(fan_in, fan_out)``
(``(k, k, c_in, c_out)`` for convolutions), so every jinit initialiser sees the fans it expects.

Examples:
  >>> from jinit import mlp
  >>> net = mlp(width=64, depth=3)
  >>> net.describe()
  'MLP width 64, depth 3, relu, bias'
  >>> [(s.name, s.shape) for s in net.param_specs()]
  [('kernel', (64, 64)), ('bias', (64,))]
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import check_choice, check_int
from jinit.theory._activations import ACTIVATION_NAMES
from jinit.theory._activations import activation as theory_activation

_LN_EPS = 1e-6


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


def activation_fn(name: str, api: str = "activation_fn") -> Callable[[jax.Array], jax.Array]:
    """The element-wise function called ``name``.

    Names are those of the theory's activation registry (:data:`jinit.theory.ACTIVATION_NAMES`),
    so the measured network and the prediction use the same φ.

    Raises:
      TypeError: ``name`` is not a string.
      ValueError: an unknown name.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jinit.sweeps._networks import activation_fn
      >>> activation_fn("relu")(jnp.array([-1.0, 2.0])).tolist()
      [0.0, 2.0]
    """
    if not isinstance(name, str):
        raise TypeError(
            f"`{api}` needs `activation` to be a name such as 'relu'; got {name!r} of type "
            f"{type(name).__name__}. Pass one of {', '.join(_known_activations())}."
        )
    if name in ACTIVATION_NAMES:
        return theory_activation(name).fn

    known = _known_activations()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"`{api}` needs a known `activation`; {name!r} is not a known activation.{hint} Use "
        f"one of {', '.join(known)}."
    )


def _known_activations() -> list[str]:
    return sorted(ACTIVATION_NAMES)


def layer_norm(x: jax.Array, scale: jax.Array | None = None, bias: jax.Array | None = None):
    r"""LayerNorm over the last axis: :math:`(x-\bar x)/\sqrt{\mathrm{var}(x)+10^{-6}}`."""
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    y = (x - mu) * jax.lax.rsqrt(var + jnp.asarray(_LN_EPS, x.dtype))
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


# ---------------------------------------------------------------------------------------------
# The layer contract
# ---------------------------------------------------------------------------------------------


class ParamSpec(NamedTuple):
    """One per-layer parameter.

    Attributes:
      name: its name (``"kernel"``, ``"bias"``, ...), used for gradient norms.
      shape: its shape.
      role: ``"weight"`` (drawn by the initialiser under test), ``"bias"`` (drawn by the bias
        initialiser), ``"ones"`` or ``"zeros"`` (normalisation scale and offset).
    """

    name: str
    shape: tuple[int, ...]
    role: str


class TheoryInputs(NamedTuple):
    """How to ask the mean-field theory (:func:`jinit.theory.predict_mlp`) about a stack.

    Attributes:
      activation: the activation's name.
      widths: ``n_0 .. n_L``.
      weight: the weight :class:`ParamSpec` whose law gives the variance.
      weight_multiplier: the factor that turns that variance into the variance of an equivalent
        dense matrix of the given widths (``k²`` for a circular ``k x k`` convolution).
      residual: the blocks add to a residual stream.
      layernorm: each block normalises its input.
      approximate: the equivalence is approximate (zero-padded convolutions).
    """

    activation: str
    widths: tuple[int, ...]
    weight: ParamSpec
    weight_multiplier: float = 1.0
    residual: bool = False
    layernorm: bool = False
    approximate: bool = False


@runtime_checkable
class SweepModel(Protocol):
    """What :func:`jinit.sweep` needs of a model, built-in (:class:`Network`) or Flax
    (``jinit.linen_model`` / ``jinit.nnx_model``): how to describe it, its default batch, which
    statistics judge it, where the probe loss sits, and what the theory can say about it."""

    theory_note: ClassVar[str]

    def describe(self) -> str: ...

    def config(self) -> dict[str, Any]: ...

    def default_batch(self) -> int: ...

    def judged(self) -> dict[str, str]: ...

    def loss_description(self) -> str: ...

    def theory_inputs(self) -> TheoryInputs | None: ...

    def units(self) -> int | None: ...


@dataclasses.dataclass(frozen=True)
class Network:
    """Base class of the built-in sweep architectures (a stack of identical layers).

    Subclasses implement :meth:`param_specs`, :meth:`input_shape`, :meth:`pre`, :meth:`post`,
    :meth:`describe` and optionally :meth:`theory_inputs`.
    """

    kind: ClassVar[str] = "network"
    #: why there is no prediction when :meth:`theory_inputs` is None
    theory_note: ClassVar[str] = "no mean-field prediction for this architecture"

    @property
    def n_layers(self) -> int:
        return self.depth  # type: ignore[attr-defined]

    def param_specs(self) -> tuple[ParamSpec, ...]:
        raise NotImplementedError

    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (without the batch axis); the last axis is the unit axis."""
        raise NotImplementedError

    def default_batch(self) -> int:
        return 256

    def initial_carry(self, x0: jax.Array) -> Any:
        """The scan carry before the first layer (a pytree; the input batch by default)."""
        return x0

    def pre(self, p: dict[str, jax.Array], x: Any) -> tuple[jax.Array, Any]:
        raise NotImplementedError

    def post(self, p: dict[str, jax.Array], h: jax.Array, x: jax.Array, aux: Any):
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The architecture's hyper-parameters as JSON-friendly values."""
        out: dict[str, Any] = {"arch": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def layer_params(self, key: jax.Array, init, bias_init, dtype) -> dict[str, jax.Array]:
        """Draws one layer's parameters: ``init`` for weights, ``bias_init`` for biases."""
        out = {}
        for i, spec in enumerate(self.param_specs()):
            k = jax.random.fold_in(key, i)
            if spec.role == "weight":
                out[spec.name] = jnp.asarray(init(k, spec.shape, dtype), dtype)
            elif spec.role == "bias":
                out[spec.name] = jnp.asarray(bias_init(k, spec.shape, dtype), dtype)
            elif spec.role == "ones":
                out[spec.name] = jnp.ones(spec.shape, dtype)
            else:
                out[spec.name] = jnp.zeros(spec.shape, dtype)
        return out

    def judged(self) -> dict[str, str]:
        r"""Which recorded quantities a sweep judges (verdicts, :func:`assert_stable_propagation`,
        the CLI table and the default figures) and how they are called.

        Returns ``{"forward": quantity, "backward": quantity, "std": quantity, "what": words}``.
        A plain stack judges the activation :math:`x^l=\varphi(h^l)` and the gradient
        w.r.t. the pre-activation; a residual stack judges its *residual stream* (the layer output
        :math:`x^l`, what the next block adds to): LayerNorm keeps every block's inner
        activations flat whatever the initialisation, so only the stream shows growth or decay.
        """
        return {
            "forward": "act.second_moment",
            "backward": "grad.second_moment",
            "std": "act.std",
            "what": "activation",
        }

    #: Where the probe loss sits: ``False`` on the last pre-activation :math:`h^L` (the
    #: convention of :func:`jinit.theory.predict_mlp`), ``True`` on the network output (the
    #: residual stream after the last block).
    loss_on_output: ClassVar[bool] = False

    def loss_description(self) -> str:
        """Where the probe loss of a sweep sits, in words (``config["loss"]``)."""
        if self.loss_on_output:
            return (
                "<v, x^L>, v ~ N(0, I) (unit cotangent on the network output: the residual "
                "stream after the last block)"
            )
        return "<v, h^L>, v ~ N(0, I) (unit cotangent on the last pre-activation)"

    def theory_inputs(self) -> TheoryInputs | None:
        """How to ask :func:`predict_mlp` for this stack, or ``None`` when it does not apply."""
        return None

    def units(self) -> int | None:
        """Units of a layer's pre-activation (its last axis), read from an abstract trace."""
        x = jax.ShapeDtypeStruct((1, *self.input_shape()), jnp.float32)
        specs = {s.name: jax.ShapeDtypeStruct(s.shape, jnp.float32) for s in self.param_specs()}
        h, _ = jax.eval_shape(self.pre, specs, jax.eval_shape(self.initial_carry, x))
        return int(h.shape[-1])


def _check_activation(api: str, activation: str) -> str:
    activation_fn(activation, api)  # raises on an unknown name
    return activation


def _check_bool(api: str, name: str, value: Any) -> bool:
    """``value`` as a bool; refuses strings, numbers and other truthy stand-ins."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`{api}` needs `{name}` to be True or False; got {value!r} of type "
            f"{type(value).__name__}. Pass `{name}=True` or `{name}=False`."
        )
    return bool(value)


# ---------------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MLP(Network):
    r"""Fully-connected stack in the convention of :func:`jinit.theory.predict_mlp`.

    .. math::
        h^l = x^{l-1} W^l + b^l\ [+\ h^{l-1}\ \text{if residual},\ l \ge 2],\qquad
        x^l = \varphi(\tilde h^l),

    with :math:`\tilde h^l = \mathrm{LN}(h^l)` (LayerNorm over units, no affine parameters) when
    ``layernorm`` and :math:`\tilde h^l = h^l` otherwise. With ``residual`` the pre-activations
    form the residual stream (the first layer has no skip), so ``layernorm`` + ``residual`` is a
    pre-LN residual MLP.
    """

    width: int = 512
    depth: int = 10
    activation: str = "relu"
    bias: bool = True
    layernorm: bool = False
    residual: bool = False

    kind: ClassVar[str] = "mlp"

    def param_specs(self):
        specs = [ParamSpec("kernel", (self.width, self.width), "weight")]
        if self.bias:
            specs.append(ParamSpec("bias", (self.width,), "bias"))
        return tuple(specs)

    def input_shape(self):
        return (self.width,)

    def default_batch(self):
        return 1000

    def initial_carry(self, x0):
        # residual: carry (stream h^{l-1}, activation x^{l-1}); the stream starts at 0 so the
        # first layer has no skip.
        return (jnp.zeros_like(x0), x0) if self.residual else x0

    def pre(self, p, carry):
        x = carry[1] if self.residual else carry
        h = x @ p["kernel"]
        if self.bias:
            h = h + p["bias"]
        if self.residual:
            h = h + carry[0]
        return h, ()

    def post(self, p, h, carry, aux):
        a = activation_fn(self.activation)(layer_norm(h) if self.layernorm else h)
        return ((h, a) if self.residual else a), a

    def judged(self):
        if not self.residual:
            return super().judged()
        # the pre-activations are the stream: h^l = h^{l-1} + x^{l-1} W^l + b^l
        return {
            "forward": "output.second_moment",
            "backward": "grad.second_moment",
            "std": "output.std",
            "what": "residual stream",
        }

    def describe(self):
        extras = [self.activation] + ["bias"] * self.bias
        extras += ["LayerNorm"] * self.layernorm + ["residual"] * self.residual
        return f"MLP width {self.width}, depth {self.depth}, {', '.join(extras)}"

    def theory_inputs(self):
        return TheoryInputs(
            self.activation,
            (self.width,) * (self.depth + 1),
            self.param_specs()[0],
            residual=self.residual,
            layernorm=self.layernorm,
        )


def mlp(
    width: int = 512,
    depth: int = 10,
    activation: str = "relu",
    *,
    bias: bool = True,
    layernorm: bool = False,
    residual: bool = False,
) -> MLP:
    r"""A fully-connected stack of ``depth`` layers of ``width`` units for propagation sweeps.

    Layer :math:`l` computes :math:`h^l = x^{l-1}W^l + b^l` and :math:`x^l=\varphi(h^l)`; with
    ``layernorm``, :math:`x^l = \varphi(\mathrm{LN}(h^l))`; with ``residual``,
    :math:`h^l = h^{l-1} + x^{l-1}W^l + b^l` for :math:`l\ge 2` (the pre-activations are the
    residual stream). This is the network :func:`jinit.theory.predict_mlp` describes. The
    input has ``width`` features.

    Args:
      width: units per layer (also the input dimension).
      depth: number of layers.
      activation: the name of φ (``relu``, ``tanh``, ``gelu``, ``selu``, ``silu``, ``linear``, ...).
      bias: whether layers have a bias (drawn by the sweep's ``bias_init``, zeros by default).
      layernorm: LayerNorm (no affine parameters) of each pre-activation before φ.
      residual: identity skip connection on the pre-activation stream.

    Returns:
      An :class:`MLP` (hashable; pass it to :func:`jinit.sweep`).

    Raises:
      ValueError: a width or depth < 1, or an unknown activation.

    Examples:
      >>> from jinit import mlp
      >>> mlp(256, 4, "tanh").describe()
      'MLP width 256, depth 4, tanh, bias'
    """
    api = "mlp"
    return MLP(
        check_int(api, "width", width, minimum=1),
        check_int(api, "depth", depth, minimum=1),
        _check_activation(api, activation),
        _check_bool(api, "bias", bias),
        _check_bool(api, "layernorm", layernorm),
        _check_bool(api, "residual", residual),
    )


# ---------------------------------------------------------------------------------------------
# CNN
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CNN(Network):
    r"""2-D convolution stack, NHWC, kernels ``(k, k, c, c)`` (HWIO), stride 1.

    ``padding="circular"`` wraps the image around (every output pixel sees ``k²·c`` inputs, as
    in the mean-field theory of CNNs); ``"same"`` zero-pads, so border pixels see fewer inputs.
    """

    channels: int = 64
    depth: int = 10
    kernel_size: int = 3
    activation: str = "relu"
    padding: str = "circular"
    image_size: int = 16
    bias: bool = True

    kind: ClassVar[str] = "cnn"

    def param_specs(self):
        k, c = self.kernel_size, self.channels
        specs = [ParamSpec("kernel", (k, k, c, c), "weight")]
        if self.bias:
            specs.append(ParamSpec("bias", (c,), "bias"))
        return tuple(specs)

    def input_shape(self):
        return (self.image_size, self.image_size, self.channels)

    def default_batch(self):
        return 64

    def pre(self, p, x):
        # im2col + one matmul rather than `lax.conv`: identical to a stride-1 cross-correlation
        # (NHWC, HWIO), and under `vmap` over seeds it stays a batched matmul (a vmapped conv
        # with per-seed kernels becomes a grouped conv that XLA:CPU compiles and runs slowly).
        k = self.kernel_size
        lo, hi = (k - 1) // 2, k // 2
        mode = "wrap" if self.padding == "circular" else "constant"
        xp = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi), (0, 0)), mode=mode)
        hgt, wid = x.shape[1], x.shape[2]
        patches = jnp.concatenate(
            [xp[:, dy : dy + hgt, dx : dx + wid, :] for dy in range(k) for dx in range(k)],
            axis=-1,
        )
        w = p["kernel"]
        h = patches @ w.reshape(k * k * w.shape[2], w.shape[3])
        if self.bias:
            h = h + p["bias"]
        return h, ()

    def post(self, p, h, x, aux):
        a = activation_fn(self.activation)(h)
        return a, a

    def describe(self):
        b = ", bias" if self.bias else ""
        return (
            f"CNN {self.channels} channels, depth {self.depth}, {self.kernel_size}x"
            f"{self.kernel_size} {self.padding}, {self.image_size}x{self.image_size}, "
            f"{self.activation}{b}"
        )

    def theory_inputs(self):
        # A circular conv is a dense map from k²·c inputs per output: equivalently a c×c matrix
        # of variance k²·Var(w) (same forward and backward second moments).
        return TheoryInputs(
            self.activation,
            (self.channels,) * (self.depth + 1),
            self.param_specs()[0],
            weight_multiplier=float(self.kernel_size**2),
            approximate=self.padding != "circular",
        )


def cnn(
    channels: int = 64,
    depth: int = 10,
    kernel_size: int = 3,
    activation: str = "relu",
    *,
    padding: str = "circular",
    image_size: int = 16,
    bias: bool = True,
) -> CNN:
    r"""A stack of ``depth`` stride-1 2-D convolutions with ``channels`` channels.

    Layer :math:`l` computes :math:`h^l = W^l * x^{l-1} + b^l` and :math:`x^l=\varphi(h^l)` on
    ``image_size × image_size`` NHWC images; kernels have the Flax layout ``(k, k, c, c)``, so
    ``fan_in = k²·c``.

    Args:
      channels: channels of every layer (also of the input).
      depth: number of layers.
      kernel_size: the spatial size ``k`` of the square kernels.
      activation: the name of φ.
      padding: ``"circular"`` (wrap-around, exact for the theory) or ``"same"`` (zeros).
      image_size: height and width of the input images.
      bias: whether layers have a bias.

    Returns:
      A :class:`CNN`.

    Raises:
      ValueError: a size < 1, an unknown padding or activation.

    Examples:
      >>> from jinit import cnn
      >>> [s.shape for s in cnn(16, 5, 3).param_specs()]
      [(3, 3, 16, 16), (16,)]
    """
    api = "cnn"
    return CNN(
        check_int(api, "channels", channels, minimum=1),
        check_int(api, "depth", depth, minimum=1),
        check_int(api, "kernel_size", kernel_size, minimum=1),
        _check_activation(api, activation),
        check_choice(api, "padding", padding, ("circular", "same")),
        check_int(api, "image_size", image_size, minimum=1),
        _check_bool(api, "bias", bias),
    )


# ---------------------------------------------------------------------------------------------
# Transformer
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Transformer(Network):
    r"""Pre-LN transformer blocks on sequences of ``seq_len`` tokens of ``d_model`` features.

    .. math::
        x' = x + \mathrm{Attn}(\mathrm{LN}_1(x))\,W_o + b_o,\quad
        h = \mathrm{LN}_2(x')W_1 + b_1,\quad x_{out} = x' + \varphi(h)W_2 + b_2.

    ``h`` (the MLP hidden pre-activation) is the layer's pre-activation; the residual stream
    ``x_out`` is its output. Attention is bidirectional, softmax scaled by
    :math:`1/\sqrt{d_{head}}`; ``W_q, W_k, W_v, W_o`` are ``(d, d)``, ``W_1`` is
    ``(d, r·d)``, ``W_2`` is ``(r·d, d)``.

    Sweeps judge the residual stream ``x_out`` (``output.*``; LayerNorm keeps ``h`` and
    :math:`\varphi(h)` flat for any initialisation) and put the probe loss on the network
    output, :math:`\mathcal L = \langle v, x^L_{out}\rangle`, so the judged gradient
    ``grad_output.second_moment`` is :math:`\mathbb E[(\partial\mathcal L/\partial
    x^l_{out})^2]`, exactly 1 per unit after the last block.
    """

    d_model: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    seq_len: int = 32
    activation: str = "gelu"

    kind: ClassVar[str] = "transformer"
    loss_on_output: ClassVar[bool] = True

    def judged(self):
        return {
            "forward": "output.second_moment",
            "backward": "grad_output.second_moment",
            "std": "output.std",
            "what": "residual stream",
        }

    def param_specs(self):
        d, f = self.d_model, self.d_model * self.mlp_ratio
        return (
            ParamSpec("ln1_scale", (d,), "ones"),
            ParamSpec("ln1_bias", (d,), "zeros"),
            ParamSpec("query", (d, d), "weight"),
            ParamSpec("key", (d, d), "weight"),
            ParamSpec("value", (d, d), "weight"),
            ParamSpec("out", (d, d), "weight"),
            ParamSpec("out_bias", (d,), "bias"),
            ParamSpec("ln2_scale", (d,), "ones"),
            ParamSpec("ln2_bias", (d,), "zeros"),
            ParamSpec("mlp_in", (d, f), "weight"),
            ParamSpec("mlp_in_bias", (f,), "bias"),
            ParamSpec("mlp_out", (f, d), "weight"),
            ParamSpec("mlp_out_bias", (d,), "bias"),
        )

    def input_shape(self):
        return (self.seq_len, self.d_model)

    def default_batch(self):
        return 16

    def pre(self, p, x):
        b, t, d = x.shape
        hd = d // self.heads
        z = layer_norm(x, p["ln1_scale"], p["ln1_bias"])
        q = (z @ p["query"]).reshape(b, t, self.heads, hd)
        k = (z @ p["key"]).reshape(b, t, self.heads, hd)
        v = (z @ p["value"]).reshape(b, t, self.heads, hd)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.asarray(math.sqrt(hd), x.dtype)
        w = jax.nn.softmax(logits, axis=-1)
        att = jnp.einsum("bhqk,bkhd->bqhd", w, v).reshape(b, t, d)
        mid = x + att @ p["out"] + p["out_bias"]
        h = layer_norm(mid, p["ln2_scale"], p["ln2_bias"]) @ p["mlp_in"] + p["mlp_in_bias"]
        return h, mid

    def post(self, p, h, x, aux):
        a = activation_fn(self.activation)(h)
        return aux + a @ p["mlp_out"] + p["mlp_out_bias"], a

    def describe(self):
        return (
            f"pre-LN transformer d_model {self.d_model}, depth {self.depth}, {self.heads} heads, "
            f"MLP ×{self.mlp_ratio}, {self.seq_len} tokens, {self.activation}"
        )


def transformer(
    d_model: int = 128,
    depth: int = 4,
    heads: int = 4,
    *,
    mlp_ratio: int = 4,
    seq_len: int = 32,
    activation: str = "gelu",
) -> Transformer:
    r"""A stack of ``depth`` pre-LN transformer blocks for propagation sweeps.

    Every kernel (query, key, value, output and both MLP matrices) is drawn by the initialiser
    under test, biases by the sweep's ``bias_init``; LayerNorm scales are ones, offsets zeros.
    Mean-field theory does not cover attention, so sweeps of this stack carry no prediction.
    Verdicts judge the residual stream after each block (see :class:`Transformer`).

    Args:
      d_model: features per token (must be divisible by ``heads``).
      depth: number of blocks.
      heads: attention heads.
      mlp_ratio: hidden width of the MLP as a multiple of ``d_model``.
      seq_len: tokens per sequence.
      activation: the name of φ in the MLP.

    Returns:
      A :class:`Transformer`.

    Raises:
      ValueError: a size < 1, ``d_model`` not divisible by ``heads``, an unknown activation.

    Examples:
      >>> from jinit import transformer
      >>> transformer(64, 2, 4).input_shape()
      (32, 64)
    """
    api = "transformer"
    d_model = check_int(api, "d_model", d_model, minimum=1)
    heads = check_int(api, "heads", heads, minimum=1)
    if d_model % heads:
        raise ValueError(
            f"`{api}` needs `d_model` divisible by `heads`; got d_model={d_model}, "
            f"heads={heads}. Pick heads among {[h for h in range(1, 17) if d_model % h == 0]}."
        )
    return Transformer(
        d_model,
        check_int(api, "depth", depth, minimum=1),
        heads,
        check_int(api, "mlp_ratio", mlp_ratio, minimum=1),
        check_int(api, "seq_len", seq_len, minimum=1),
        _check_activation(api, activation),
    )


ARCHITECTURES = {"mlp": mlp, "cnn": cnn, "transformer": transformer}


def weight_law_moments(init, shape: tuple[int, ...], dtype=None) -> tuple[float, float, bool]:
    """``(mean, variance, exact)`` of the entries ``init(key, shape)`` draws.

    Read from ``jinit.law`` for jinit initialisers (``exact=True``); any other
    ``(key, shape, dtype)`` callable is estimated from one draw (``exact=False``).
    """
    if hasattr(init, "law") and callable(init.law):
        lw = init.law(shape, dtype)
        mean = getattr(lw, "mean", None)
        var = getattr(lw, "variance", None)
        if mean is None and hasattr(lw, "inner"):  # delta-orthogonal: zero off-centre
            inner = lw.inner
            frac = 1.0 / math.prod(shape[:-2])
            return 0.0, frac * inner.variance, True
        if var is not None:
            return float(np.real(mean)), float(var), True
    w = np.asarray(init(jax.random.key(12345), shape, dtype), np.float64)
    return float(w.mean()), float(w.var()), False
