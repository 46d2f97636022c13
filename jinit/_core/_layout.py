"""Weight layouts: which axes of a stored kernel are input, output, batch and receptive field.

**The rule.** For a stored weight array, jinit counts

.. math::
    \\mathrm{fan\\_in} = n_{in}\\, r, \\qquad \\mathrm{fan\\_out} = n_{out}\\, r, \\qquad
    r = \frac{\\prod_i s_i}{n_{in}\\, n_{out}\\, n_{batch}},

where :math:`n_{in}` is the product of the sizes of the **input** (contracted) axes, :math:`n_{out}`
of the **output** axes, :math:`n_{batch}` of the **batch** axes (independent stacked weights,
left out of both fans) and every other axis is **receptive field** :math:`r`. A
:class:`Layout` says which axis is which, for each layer kind:

=====================================  ==============================  ===========================
layer (stored shape)                   input axes / output axes         how the layer calls init
=====================================  ==============================  ===========================
Flax ``Dense``/``nnx.Linear`` (i, o)   i / o                            raw shape
``DenseGeneral``/``LinearGeneral``     the ``in`` axes / the ``out``    flat ``(B·∏in, ∏out)``
``(*batch, *in, *out)``, attention     axes; ``batch`` axes are batch   then reshaped
q/k/v ``(d, h, k)``, out ``(h, k, d)``
``Einsum`` (any kernel)                axes also in the other operand   raw shape (ambiguous: pass
                                       and not in the output / axes     ``layout=`` to the init)
                                       in the output only; batch: in
                                       all three
``Conv`` ``(*k, in/groups, o)``        -2 / -1, ``*k`` receptive         raw shape
``ConvTranspose`` ``(*k, i, o)``       -2 / -1 (``transpose_kernel``:   raw shape
                                       -1 / -2)
``ConvLocal`` ``(*pos, k·i, o)``       -2 / -1, positions are batch      raw shape
``Embed`` ``(vocab, features)``        1 / 0 (Flax's ``out_axis=0``:     raw shape
                                       fan_in = features, as torch)
equinox/torch ``(o, i, *k)``           1 / 0, ``*k`` receptive           (no ``kernel_init``)
bare array, no layer known             -2 / -1, rest receptive (jax's    raw shape
                                       and Flax's Dense/Conv default)
=====================================  ==============================  ===========================

Stacked layers (``nn.scan``/``nnx.vmap`` over layers) store extra leading axes: they are batch.

:func:`layouts` reads the layouts of a model: nnx modules and equinox modules directly, linen
modules by tracing ``model.init`` on example inputs under :func:`jax.eval_shape` (no FLOPs).
:func:`jinit.reinit`, :func:`jinit.summary` and :func:`jinit.law` use them, so an initialiser
means the same thing whether it is passed as a layer's ``kernel_init`` or applied to the tree.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from jinit._core._checks import AxisError, canonical_shape
from jinit._core._fans import Fans, fans

CALLS = ("raw", "flat")


def _axes(api: str, name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"`{api}` needs `{name}` to be an int or a tuple of ints; got {value!r}.")
    if isinstance(value, int | np.integer):
        return (int(value),)
    if isinstance(value, Sequence) and not isinstance(value, str):
        out = []
        for v in value:
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
                raise TypeError(
                    f"`{api}` needs `{name}` to be an int or a tuple of ints; got {value!r}."
                )
            out.append(int(v))
        return tuple(out)
    raise TypeError(
        f"`{api}` needs `{name}` to be an int or a tuple of ints; got {value!r} of type "
        f"{type(value).__name__}. Pass e.g. `{name}=(0,)`."
    )


@dataclasses.dataclass(frozen=True)
class Layout:
    r"""Which axes of a stored weight are input, output, batch and receptive field.

    Axes may be negative (counted from the end) until the layout is bound to a shape
    (:meth:`bind`). ``call`` says how the owning layer calls its ``kernel_init``: ``"raw"``
    with the stored shape, or ``"flat"`` with ``(∏ batch·∏ in, ∏ out)`` and then reshaped (Flax
    ``DenseGeneral``/``LinearGeneral`` and the attention projections built on them; stored order
    batch, in, out). See the module docstring for the rule per layer kind.

    Attributes:
      in_axes: the input (contracted) axes.
      out_axes: the output axes.
      batch_axes: axes of independent stacked weights (left out of both fans).
      call: ``"raw"`` or ``"flat"``.
      shape: the stored shape, when bound (else ``None``).
      layer: who owns the weight (for messages and tables), e.g. ``"flax.nnx.Einsum
        'bd,dhk->bhk'"``.

    Examples:
      >>> import jinit
      >>> lay = jinit.Layout.einsum("bd,dhk->bhk").bind((64, 4, 16))
      >>> lay.fans()
      Fans(fan_in=64.0, fan_out=64.0)
      >>> jinit.Layout(in_axes=1, out_axes=0).fans((128, 784))  # equinox/torch (out, in)
      Fans(fan_in=784.0, fan_out=128.0)
    """

    in_axes: tuple[int, ...]
    out_axes: tuple[int, ...]
    batch_axes: tuple[int, ...] = ()
    call: str = "raw"
    shape: tuple[int, ...] | None = None
    layer: str = ""

    def __post_init__(self) -> None:
        api = "jinit.Layout"
        for name in ("in_axes", "out_axes", "batch_axes"):
            object.__setattr__(self, name, _axes(api, name, getattr(self, name)))
        if self.call not in CALLS:
            raise ValueError(
                f"`{api}` needs `call` to be 'raw' (the layer calls its initialiser with the "
                f"stored shape) or 'flat' (with (prod(batch+in), prod(out)), then reshapes); got "
                f"{self.call!r}."
            )
        if not isinstance(self.layer, str):
            raise TypeError(f"`{api}` needs `layer` to be a str; got {self.layer!r}.")
        if self.shape is None:
            return
        shape = canonical_shape(api, self.shape)
        nd = len(shape)
        norm = {}
        for name in ("in_axes", "out_axes", "batch_axes"):
            out = []
            for a in getattr(self, name):
                if not -nd <= a < nd:
                    raise AxisError(
                        f"`{api}` got `{name}={getattr(self, name)}`, out of range for shape "
                        f"{shape} of rank {nd}; valid axes are {-nd}..{nd - 1}."
                    )
                out.append(a % nd)
            norm[name] = tuple(out)
        if len(set(norm["batch_axes"]) & (set(norm["in_axes"]) | set(norm["out_axes"]))):
            raise ValueError(
                f"`{api}` got batch axes {norm['batch_axes']} that are also input or output "
                f"axes (in {norm['in_axes']}, out {norm['out_axes']}) for shape {shape}."
            )
        if self.call == "flat":
            nb, ni = len(norm["batch_axes"]), len(norm["in_axes"])
            want = (tuple(range(nb)), tuple(range(nb, nb + ni)), tuple(range(nb + ni, nd)))
            if (norm["batch_axes"], norm["in_axes"], norm["out_axes"]) != want:
                raise ValueError(
                    f"`{api}` with call='flat' needs the stored order batch, in, out (batch "
                    f"{want[0]}, in {want[1]}, out {want[2]} for shape {shape}); got batch "
                    f"{norm['batch_axes']}, in {norm['in_axes']}, out {norm['out_axes']}."
                )
        object.__setattr__(self, "shape", shape)
        for name, v in norm.items():
            object.__setattr__(self, name, v)

    # -- constructors --------------------------------------------------------------------------

    @classmethod
    def dense(cls, layer: str = "") -> Layout:
        """jax's default: input axis -2, output axis -1, the rest receptive field (Flax Dense and
        Conv ``(*k, in, out)``)."""
        return cls((-2,), (-1,), layer=layer)

    @classmethod
    def torch(cls, layer: str = "") -> Layout:
        """torch and equinox ``(out, in, *k)``: input axis 1, output axis 0."""
        return cls((1,), (0,), layer=layer)

    @classmethod
    def embed(cls, layer: str = "") -> Layout:
        """An embedding table ``(vocab, features)``: fan_in = features (axis 1), fan_out = vocab
        (axis 0), as Flax's default ``out_axis=0`` and torch's ``nn.Embedding``."""
        return cls((1,), (0,), layer=layer)

    @classmethod
    def dense_general(cls, n_in: int, n_out: int, n_batch: int = 0, layer: str = "") -> Layout:
        """A ``DenseGeneral``/``LinearGeneral`` kernel ``(*batch, *in, *out)`` whose layer
        draws the flat ``(∏ batch·∏ in, ∏ out)`` shape."""
        nb, ni, no = (int(n_batch), int(n_in), int(n_out))
        return cls(
            tuple(range(nb, nb + ni)),
            tuple(range(nb + ni, nb + ni + no)),
            tuple(range(nb)),
            call="flat",
            layer=layer,
        )

    @classmethod
    def einsum(cls, equation: str, layer: str = "") -> Layout:
        """The kernel layout of ``jnp.einsum(equation, inputs, kernel)`` (the kernel is the
        second operand, as in Flax's ``Einsum``): input axes are the kernel's letters that
        appear in the other operand but not in the output, batch axes appear in all three,
        output axes in the output only; a letter only the kernel has is summed over and counts
        as receptive field."""
        return _einsum_layout(equation, layer or f"einsum {equation!r}")

    # -- use -------------------------------------------------------------------------------------

    def bind(self, shape: Any) -> Layout:
        """This layout bound to ``shape`` (axes made non-negative and checked)."""
        shape = canonical_shape("jinit.Layout.bind", shape)
        if self.shape is not None and self.shape != shape:
            raise ValueError(
                f"`jinit.Layout.bind`: this layout is for shape {self.shape}; got {shape}."
            )
        return dataclasses.replace(self, shape=shape)

    def _bound(self, shape: Any, api: str) -> Layout:
        if shape is None:
            if self.shape is None:
                raise ValueError(
                    f"`{api}` needs a shape for a layout that is not bound to one; pass it."
                )
            return self
        shape = canonical_shape(api, shape)
        if self.shape is not None:
            if shape not in (self.shape, self.call_shape()):
                raise ValueError(
                    f"`{api}`: the layout {self!r} is for the stored shape {self.shape} (called "
                    f"with {self.call_shape()}); got shape {shape}."
                )
            return self
        return self.bind(shape)

    def fans(self, shape: Any = None, *, api: str = "jinit.Layout.fans") -> Fans:
        """``Fans(fan_in, fan_out)`` of the stored ``shape`` (default: the bound shape)."""
        lay = self._bound(shape, api)
        return fans(lay.shape, lay.in_axes, lay.out_axes, lay.batch_axes, api=api)

    def call_shape(self, shape: Any = None) -> tuple[int, ...]:
        """The shape the owning layer passes its initialiser (the stored shape for ``"raw"``)."""
        lay = self._bound(shape, "jinit.Layout.call_shape")
        s = lay.shape
        if lay.call == "raw":
            return s
        k = len(lay.batch_axes) + len(lay.in_axes)
        return (math.prod(s[:k]), math.prod(s[k:]))

    def receptive_axes(self, shape: Any = None) -> tuple[int, ...]:
        """The axes that are neither input, output nor batch."""
        lay = self._bound(shape, "jinit.Layout.receptive_axes")
        used = set(lay.in_axes) | set(lay.out_axes) | set(lay.batch_axes)
        return tuple(i for i in range(len(lay.shape)) if i not in used)

    def describe(self) -> str:
        """One line: ``in (0,) out (1, 2) [flax.nnx.Einsum 'bd,dhk->bhk']``."""
        text = f"in {self.in_axes} out {self.out_axes}"
        if self.batch_axes:
            text += f" batch {self.batch_axes}"
        if self.call == "flat":
            text += " flat call"
        return f"{text} [{self.layer}]" if self.layer else text

    def __repr__(self) -> str:
        parts = [f"in_axes={self.in_axes}", f"out_axes={self.out_axes}"]
        if self.batch_axes:
            parts.append(f"batch_axes={self.batch_axes}")
        if self.call != "raw":
            parts.append(f"call={self.call!r}")
        if self.shape is not None:
            parts.append(f"shape={self.shape}")
        if self.layer:
            parts.append(f"layer={self.layer!r}")
        return f"jinit.Layout({', '.join(parts)})"


# ---------------------------------------------------------------------------------------------
# Einsum equations
# ---------------------------------------------------------------------------------------------

_EINSUM = re.compile(r"^([A-Za-z.]*),([A-Za-z.]*)->([A-Za-z.]*)$")


def _einsum_layout(equation: Any, layer: str) -> Layout:
    api = "jinit.Layout.einsum"
    if not isinstance(equation, str):
        raise TypeError(
            f"`{api}` needs an einsum equation str such as 'bd,dhk->bhk'; got {equation!r}."
        )
    eq = equation.replace(" ", "")
    m = _EINSUM.match(eq)
    if m is None:
        raise ValueError(
            f"`{api}` needs an explicit two-operand equation 'inputs,kernel->output' (the kernel "
            f"second, as in Flax's Einsum), e.g. 'bd,dhk->bhk'; got {equation!r}."
        )
    lhs, rhs, out = m.groups()
    if "." in rhs:
        raise ValueError(
            f"`{api}`: the kernel operand {rhs!r} of {equation!r} has an ellipsis; its axes "
            f"must be named one letter each."
        )
    if len(set(rhs)) != len(rhs):
        raise ValueError(
            f"`{api}`: the kernel operand {rhs!r} of {equation!r} repeats a letter (a diagonal); "
            f"give each kernel axis its own letter."
        )
    lhs, out = lhs.replace(".", ""), out.replace(".", "")
    in_axes, out_axes, batch_axes = [], [], []
    for i, c in enumerate(rhs):
        if c in lhs and c in out:
            batch_axes.append(i)
        elif c in lhs:
            in_axes.append(i)
        elif c in out:
            out_axes.append(i)
    return Layout(tuple(in_axes), tuple(out_axes), tuple(batch_axes), layer=layer)


def as_layout(api: str, value: Any) -> Layout | None:
    """``None``, a :class:`Layout`, ``"flax"`` (:meth:`Layout.dense`: in -2, out -1),
    ``"torch"`` (:meth:`Layout.torch`: torch's and equinox's ``(out, in, *k)``), or an einsum
    equation str (:meth:`Layout.einsum`). The same names as ``jinit.torch.*(layout=)``."""
    if value is None or isinstance(value, Layout):
        return value
    if isinstance(value, str) and value == "flax":
        return Layout.dense("flax layout (*k, in, out)")
    if isinstance(value, str) and value == "torch":
        return Layout.torch("torch layout (out, in, *k)")
    if isinstance(value, str) and "->" not in value:
        raise ValueError(
            f"`{api}` got `layout={value!r}`: a layout name is 'flax' (in -2, out -1) or "
            f"'torch' ((out, in, *k)); any other str is an einsum equation such as "
            f"'bd,dhk->bhk'. Or pass a `jinit.Layout`."
        )
    if isinstance(value, str):
        return Layout.einsum(value)
    raise TypeError(
        f"`{api}` needs `layout` to be 'flax', 'torch', a `jinit.Layout` or an einsum equation "
        f"str such as 'bd,dhk->bhk'; got {value!r} of type {type(value).__name__}."
    )


# ---------------------------------------------------------------------------------------------
# Defaults for leaves without a known layer
# ---------------------------------------------------------------------------------------------

_CONV_NAME = re.compile(r"conv", re.IGNORECASE)


def default_layout(shape: tuple[int, ...]) -> Layout | None:
    """jax's convention for a leaf of rank >= 2 whose layer is unknown: in -2, out -1."""
    if len(shape) < 2:
        return None
    return Layout.dense("default: in -2, out -1, rest receptive field").bind(shape)


def is_ambiguous(path: str, shape: tuple[int, ...]) -> bool:
    """Whether the default layout may be wrong for an unknown leaf: rank >= 3 and nothing in its
    module path says it is a convolution (a DenseGeneral/attention/einsum kernel of rank 3 read
    with the default would count an output axis as receptive field)."""
    if len(shape) < 3:
        return False
    parent = path.rpartition("/")[0]
    return _CONV_NAME.search(parent) is None


# ---------------------------------------------------------------------------------------------
# Initialisers told a layout
# ---------------------------------------------------------------------------------------------


def follows_default(init: Any) -> bool:
    """Whether ``init`` takes jax's default fans (in -2, out -1) on a leaf of unknown layer:
    it is layout-aware (``with_layout``) and has no rule of its own for such leaves (a recipe's
    :class:`jinit.recipes.FanScaled` with a role's rule, ``own_fan_rule``, has one)."""
    if not callable(getattr(init, "with_layout", None)):
        return False
    return not getattr(init, "own_fan_rule", False)


def retarget(init: Any, layout: Layout) -> Any:
    """``init`` made to use ``layout``'s fans when called with its call shape.

    jinit initialisers that depend on fans have ``with_layout(layout)``; they return themselves
    unchanged when their own axes already give the layout's fans on the call shape (so a draw
    stays bit-identical with the layer's ``kernel_init=init``) or when the user gave them axes
    or a layout explicitly. Any other initialiser is returned as it is (it sees the shape only,
    exactly as when the layer calls it).
    """
    fn = getattr(init, "with_layout", None)
    if fn is None or not callable(fn):
        return init
    return fn(layout)


def draw(init: Any, key: Any, layout: Layout, dtype: Any) -> Any:
    """What the layer owning a ``layout``-bound leaf would draw with ``kernel_init=init``, with
    the layout's fans for layout-aware initialisers: ``retarget(init)(key, call_shape)``
    reshaped to the stored shape."""
    out = retarget(init, layout)(key, layout.call_shape(), dtype)
    if hasattr(out, "shape") and tuple(out.shape) != layout.shape:
        if math.prod(out.shape) == math.prod(layout.shape):
            out = out.reshape(layout.shape)
    return out
