"""Convention initialisers: :func:`bias_prior` (the focal-loss prior bias, Lin et al. 2017; a
deterministic law) and the transformer normals :func:`transformer_normal` and
:func:`gpt2_residual` (GPT-2, 2019; law :class:`~jinit.laws.Normal`, circular complex normals
for complex dtypes)."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from jinit._core import _random
from jinit._core._checks import DTypeLike, check_dtype_arg, check_int, check_real
from jinit._core._factory import factory
from jinit._core._sampling import as_sampled
from jinit._core._sharding import settle
from jinit.initializers._base import Initializer
from jinit.initializers._deterministic import rounded_scalar
from jinit.laws import _laws as laws

# ---------------------------------------------------------------------------------------------
# bias prior (focal loss)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class BiasPrior(Initializer):
    """The constant ``log(p / (1 - p))``; see :func:`bias_prior`."""

    p: float
    dtype: np.dtype | None = None

    api: ClassVar[str] = "bias_prior"
    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True

    @property
    def value(self) -> float:
        """The logit :math:`\\log(p / (1 - p))`, in float64."""
        return math.log(self.p) - math.log1p(-self.p)

    def _sample(self, key, shape, dtype):
        del key  # deterministic
        return jnp.full(shape, rounded_scalar(self.value, dtype), dtype)

    def _law(self, shape, dtype):
        return laws.DeterministicLaw(np.full(shape, rounded_scalar(self.value, dtype)), dtype=dtype)

    def describe(self) -> str:
        return f"constant log(p/(1-p)) = {self.value:.6g} for p = {self.p:g}"


@factory
def bias_prior(p: float, dtype: DTypeLike | None = None) -> BiasPrior:
    r"""Builds a bias initializer for a sigmoid output whose positive class has prior ``p``.

    Fills the bias with the logit :math:`b = \log\frac{p}{1 - p}`, so that
    :math:`\sigma(b) = p` at initialisation: a rare-positive classifier (detection heads trained
    with focal or binary cross-entropy loss) starts by predicting the prior instead of 0.5, which
    keeps the huge number of easy negatives from dominating the first steps. RetinaNet uses
    :math:`p = 0.01`, :math:`b = -4.59512`. The key is ignored.

    Args:
      p: the prior probability of the positive class, strictly between 0 and 1.
      dtype: the initializer's default dtype.

    Returns:
      An initializer whose law is the exact array (:class:`~jinit.laws.DeterministicLaw`).

    Examples:
      >>> import jax, jinit
      >>> b = jinit.bias_prior(0.01)(jax.random.key(0), (80,))
      >>> round(float(b[0]), 5), float(jax.nn.sigmoid(b[0]))
      (-4.59512, 0.01)

    References:
      Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    api = "bias_prior"
    p = check_real(api, "p", p)
    if not 0.0 < p < 1.0:
        raise ValueError(
            f"`{api}` needs the prior `p` strictly between 0 and 1 (its logit is infinite at 0 "
            f"and 1); got p={p!r}. RetinaNet uses p=0.01."
        )
    return BiasPrior(p, check_dtype_arg(api, dtype, allow_complex=True))


# ---------------------------------------------------------------------------------------------
# transformer conventions
# ---------------------------------------------------------------------------------------------


class _NormalRecipe(Initializer):
    """N(0, std²) with ``std`` given by :meth:`effective_stddev` (jax's normal arithmetic)."""

    family: ClassVar[str] = "recipe"
    supports_complex: ClassVar[bool] = True

    def effective_stddev(self) -> float:
        raise NotImplementedError

    def _sample(self, key, shape, dtype):
        return settle(_random.normal(key, shape, dtype)) * jnp.array(self.effective_stddev(), dtype)

    def _law(self, shape, dtype):
        s = as_sampled(self.effective_stddev(), dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            return laws.ComplexNormal(s, dtype=dtype)
        return laws.Normal(s, dtype=dtype)

    def describe(self) -> str:
        return f"N(0, {self.effective_stddev():.6g}²)"


@dataclasses.dataclass(frozen=True, repr=False)
class TransformerNormal(_NormalRecipe):
    """N(0, stddev²), stddev 0.02 by default; see :func:`transformer_normal`."""

    stddev: float = 0.02
    dtype: np.dtype | None = None

    api: ClassVar[str] = "transformer_normal"

    def effective_stddev(self) -> float:
        return self.stddev


@factory
def transformer_normal(stddev: float = 0.02, dtype: DTypeLike | None = None) -> TransformerNormal:
    r"""Builds the GPT-2/BERT weight initializer :math:`\mathcal N(0, 0.02^2)`.

    The fixed, width-independent standard deviation 0.02 that GPT-2, BERT and their descendants
    use for embeddings and linear kernels (biases zero). The draw is
    ``jax.random.normal(key, shape, dtype) * stddev``, bit-identical to
    ``jax.nn.initializers.normal(0.02)`` for real dtypes; complex dtypes get a circular normal
    with :math:`E|z|^2 = \mathrm{stddev}^2`. For the residual output projections use
    :func:`gpt2_residual`.

    Args:
      stddev: the standard deviation (finite, >= 0).
      dtype: the initializer's default dtype.

    Returns:
      An initializer with law :class:`~jinit.laws.Normal`.

    Examples:
      >>> import jinit
      >>> jinit.law(jinit.transformer_normal(), (768, 3072)).std
      0.019999999552965164

    References:
      Radford, Wu, Child, Luan, Amodei & Sutskever, "Language Models are Unsupervised Multitask
      Learners", 2019. Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional
      Transformers for Language Understanding", 2019.
    """
    api = "transformer_normal"
    return TransformerNormal(
        check_real(api, "stddev", stddev, nonneg=True),
        check_dtype_arg(api, dtype, allow_complex=True),
    )


@dataclasses.dataclass(frozen=True, repr=False)
class GPT2Residual(_NormalRecipe):
    """N(0, (stddev/√(2·n_layers))²); see :func:`gpt2_residual`."""

    n_layers: int
    stddev: float = 0.02
    dtype: np.dtype | None = None

    api: ClassVar[str] = "gpt2_residual"

    def effective_stddev(self) -> float:
        return self.stddev / math.sqrt(2 * self.n_layers)


@factory
def gpt2_residual(
    n_layers: int, stddev: float = 0.02, dtype: DTypeLike | None = None
) -> GPT2Residual:
    r"""Builds GPT-2's initializer for residual output projections.

    .. math::
        W \sim \mathcal N\Bigl(0, \bigl(\mathrm{stddev}/\sqrt{2\,n_\mathrm{layers}}\bigr)^2\Bigr)

    for the layers that write into the residual stream (attention and MLP output projections,
    nanoGPT's ``c_proj``): each block adds two residual branches, so after
    :math:`n_\mathrm{layers}` blocks the :math:`2 n_\mathrm{layers}` contributions sum to a
    variance independent of depth. 12 layers give std :math:`0.02/\sqrt{24} = 0.0040825`.
    Same arithmetic as ``jax.nn.initializers.normal`` with that std.

    Args:
      n_layers: the number of transformer blocks (int >= 1).
      stddev: the base standard deviation (finite, >= 0), 0.02 in GPT-2.
      dtype: the initializer's default dtype.

    Returns:
      An initializer with law :class:`~jinit.laws.Normal`.

    Examples:
      >>> import jinit
      >>> round(jinit.gpt2_residual(12).effective_stddev(), 7)
      0.0040825

    References:
      Radford, Wu, Child, Luan, Amodei & Sutskever, "Language Models are Unsupervised Multitask
      Learners", 2019; karpathy/nanoGPT ``model.py`` (``c_proj.weight``).
    """
    api = "gpt2_residual"
    return GPT2Residual(
        check_int(api, "n_layers", n_layers, minimum=1),
        check_real(api, "stddev", stddev, nonneg=True),
        check_dtype_arg(api, dtype, allow_complex=True),
    )
