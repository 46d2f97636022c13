"""The built-in networks' contract: activations by name, layer norm, :class:`ParamSpec`,
:class:`TheoryInputs`, the :class:`SweepModel` protocol every sweepable model follows, and the
:class:`Network` base the built-in MLP, CNN and transformer share."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

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
      >>> from jinit.sweeps._network_base import activation_fn
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


def check_activation(api: str, activation: str) -> str:
    activation_fn(activation, api)  # raises on an unknown name
    return activation


def check_bool(api: str, name: str, value: Any) -> bool:
    """``value`` as a bool; refuses strings, numbers and other truthy stand-ins."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`{api}` needs `{name}` to be True or False; got {value!r} of type "
            f"{type(value).__name__}. Pass `{name}=True` or `{name}=False`."
        )
    return bool(value)
