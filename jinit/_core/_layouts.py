r"""Weight layouts: which axes of a stored kernel are input, output, batch and receptive field.

**The rule.** For a stored weight array, jinit counts

.. math::
    \mathrm{fan\_in} = n_{in}\, r, \qquad \mathrm{fan\_out} = n_{out}\, r, \qquad
    r = \frac{\prod_i s_i}{n_{in}\, n_{out}\, n_{batch}},

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
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jinit._core._checks import AxisError, canonical_shape
from jinit._core._fans import Fans, fans
from jinit._core._paths import is_box, path_str, unbox
from jinit._core._paths import is_nnx_module as _is_nnx

__all__ = ["Layout", "default_layout", "is_ambiguous", "layouts", "retarget"]

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


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------


def _stack(lay: Layout, shape: tuple[int, ...], base_rank: int) -> Layout | None:
    """Binds ``lay`` (for a kernel of rank ``base_rank``) to ``shape``; extra leading axes
    (layers stacked by scan/vmap) become batch axes, and the call becomes raw."""
    extra = len(shape) - base_rank
    if extra < 0:
        return None
    if extra == 0:
        return lay.bind(shape)
    base = lay.bind(shape[extra:])
    return Layout(
        tuple(a + extra for a in base.in_axes),
        tuple(a + extra for a in base.out_axes),
        tuple(range(extra)) + tuple(a + extra for a in base.batch_axes),
        call="raw",
        shape=shape,
        layer=f"{lay.layer} (stacked x{math.prod(shape[:extra])})",
    )


def _nnx_layouts(module: Any) -> dict[str, tuple[str, Layout, int]]:
    """{path: (param name, unbound layout, kernel rank)} for the known nnx layers."""
    from flax import nnx

    out: dict[str, tuple[Layout, int]] = {}
    for mpath, mod in nnx.iter_modules(module):
        prefix = "/".join(str(p) for p in mpath)
        name = f"flax.nnx.{type(mod).__name__}"
        found: dict[str, tuple[Layout, int]] = {}
        if isinstance(mod, nnx.LinearGeneral):
            ni, no, nb = len(mod.in_features), len(mod.out_features), len(mod.batch_axis)
            found["kernel"] = (Layout.dense_general(ni, no, nb, name), ni + no + nb)
        elif isinstance(mod, nnx.Linear):
            found["kernel"] = (Layout((0,), (1,), layer=name), 2)
        elif isinstance(mod, nnx.Einsum):
            lay = Layout.einsum(mod.einsum_str, f"{name} {mod.einsum_str!r}")
            found["kernel"] = (lay, len(mod.kernel_shape))
        elif isinstance(mod, nnx.ConvTranspose):
            t = bool(mod.transpose_kernel)
            found["kernel"] = (
                Layout((-1,) if t else (-2,), (-2,) if t else (-1,), layer=name),
                len(mod.kernel_shape),
            )
        elif isinstance(mod, nnx.Conv):
            found["kernel"] = (Layout((-2,), (-1,), layer=name), len(mod.kernel_shape))
        elif isinstance(mod, nnx.Embed):
            found["embedding"] = (Layout.embed(name), 2)
        for attr, v in found.items():
            out[f"{prefix}/{attr}" if prefix else attr] = v
    return out


def _eqx_known(eqx: Any) -> tuple[type, ...]:
    nn = eqx.nn
    return (nn.Linear, nn.Conv, nn.ConvTranspose, nn.Embedding)


def _eqx_layouts(tree: Any, eqx: Any) -> dict[str, tuple[Layout, int]]:
    known = _eqx_known(eqx)
    out: dict[str, tuple[Layout, int]] = {}
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, known))
    for keypath, leaf in flat:
        if not isinstance(leaf, known):
            continue
        prefix = path_str(keypath)
        name = f"equinox.nn.{type(leaf).__name__}"
        w = getattr(leaf, "weight", None)
        if w is None or not hasattr(w, "shape"):
            continue
        lay = Layout.embed(name) if isinstance(leaf, eqx.nn.Embedding) else Layout.torch(name)
        rank = (
            2 if isinstance(leaf, eqx.nn.Linear | eqx.nn.Embedding) else 2 + leaf.num_spatial_dims
        )
        out[f"{prefix}/weight" if prefix else "weight"] = (lay, rank)
    return out


def _is_abstract(x: Any) -> bool:
    return isinstance(x, jax.ShapeDtypeStruct)


def _is_arraylike(x: Any) -> bool:
    """An input :func:`jax.eval_shape` should trace: a jax/numpy array or a ShapeDtypeStruct."""
    return isinstance(x, jax.ShapeDtypeStruct | jax.Array | np.ndarray)


def _linen_layouts(model: Any, args, kwargs, rngs) -> tuple[dict[str, tuple[Layout, int]], Any]:
    import flax.linen as nn

    seen: dict[tuple[str, ...], Any] = {}

    def interceptor(next_fun, a, kw, context):
        mod = context.module
        if mod.scope is not None and tuple(mod.path) not in seen:
            seen[tuple(mod.path)] = mod
        return next_fun(*a, **kw)

    if rngs is None:
        rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    # Array-like leaves (arrays, jax.ShapeDtypeStruct) are traced arguments of eval_shape, so
    # abstract inputs work; everything else (train=False, strings) stays a static Python value.
    leaves, treedef = jax.tree_util.tree_flatten((rngs, args, kwargs), is_leaf=_is_abstract)
    dynamic = [i for i, v in enumerate(leaves) if _is_arraylike(v)]

    def init(*arrays):
        full = list(leaves)
        for i, a in zip(dynamic, arrays, strict=True):
            full[i] = a
        r, a, kw = jax.tree_util.tree_unflatten(treedef, full)
        return model.init(r, *a, **kw)

    with nn.intercept_methods(interceptor):
        variables = jax.eval_shape(init, *[leaves[i] for i in dynamic])
    out: dict[str, tuple[Layout, int]] = {}
    for mpath, mod in seen.items():
        prefix = "/".join(mpath)
        name = f"flax.linen.{type(mod).__name__}"
        found: dict[str, tuple[Layout, int]] = {}
        if isinstance(mod, nn.DenseGeneral):
            feats = mod.features if isinstance(mod.features, Sequence) else (mod.features,)
            axis = mod.axis if isinstance(mod.axis, Sequence) else (mod.axis,)
            bd = mod.batch_dims if isinstance(mod.batch_dims, Sequence) else (mod.batch_dims,)
            ni, no, nb = len(axis), len(feats), len(bd)
            found["kernel"] = (Layout.dense_general(ni, no, nb, name), ni + no + nb)
        elif isinstance(mod, nn.Dense):
            found["kernel"] = (Layout((0,), (1,), layer=name), 2)
        elif isinstance(mod, nn.Einsum):
            lay = Layout.einsum(mod.einsum_str, f"{name} {mod.einsum_str!r}")
            found["kernel"] = (lay, len(mod.shape))
        elif isinstance(mod, nn.ConvLocal):
            nd = len(mod.kernel_size) if isinstance(mod.kernel_size, Sequence) else 1
            found["kernel"] = (Layout((-2,), (-1,), tuple(range(nd)), layer=name), nd + 2)
        elif isinstance(mod, nn.ConvTranspose):
            nd = len(mod.kernel_size) if isinstance(mod.kernel_size, Sequence) else 1
            t = bool(mod.transpose_kernel)
            found["kernel"] = (
                Layout((-1,) if t else (-2,), (-2,) if t else (-1,), layer=name),
                nd + 2,
            )
        elif isinstance(mod, nn.Conv):
            nd = len(mod.kernel_size) if isinstance(mod.kernel_size, Sequence) else 1
            found["kernel"] = (Layout((-2,), (-1,), layer=name), nd + 2)
        elif isinstance(mod, nn.Embed):
            found["embedding"] = (Layout.embed(name), 2)
        for attr, v in found.items():
            out[f"{prefix}/{attr}" if prefix else attr] = v
    return out, variables


def _bind_all(
    found: Mapping[str, tuple[Layout, int]], leaves: Mapping[str, tuple[int, ...]]
) -> dict[str, Layout]:
    out = {}
    for path, (lay, rank) in found.items():
        shape = leaves.get(path)
        if shape is None:
            continue
        bound = _stack(lay, shape, rank)
        if bound is not None:
            out[path] = bound
    return out


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_box)
    out = {}
    for keypath, leaf in flat:
        value = unbox(leaf)
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            out[path_str(keypath)] = tuple(value.shape)
    return out


def _is_linen(x: Any) -> bool:
    try:
        import flax.linen as nn
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(x, nn.Module)


def is_equinox(x: Any) -> bool:
    """True for an equinox module (equinox is not imported: it exists only once loaded)."""
    eqx = sys.modules.get("equinox")
    return eqx is not None and isinstance(x, eqx.Module)


def tree_layouts(tree: Any) -> dict[str, Layout]:
    """The layouts :func:`layouts` can read from ``tree`` alone ({} for a bare dict/State)."""
    if _is_nnx(tree):
        from flax import nnx

        return _bind_all(_nnx_layouts(tree), _shapes(nnx.state(tree, nnx.Param)))
    if is_equinox(tree):
        return _bind_all(_eqx_layouts(tree, sys.modules["equinox"]), _shapes(tree))
    return {}


def layouts(model: Any, *args: Any, rngs: Any = None, **kwargs: Any) -> dict[str, Layout]:
    r"""The :class:`Layout` of every kernel of a model whose layer is known, by parameter path.

    * an ``nnx.Module``: read from its layers (``Linear``, ``LinearGeneral`` and the
      ``MultiHeadAttention`` projections built on it, ``Einsum``, ``Conv``, ``ConvTranspose``,
      ``Embed``); paths as in ``nnx.state(model, nnx.Param)`` (``"attn/query/kernel"``);
    * an equinox module: ``Linear``, ``Conv*``, ``ConvTranspose*``, ``Embedding`` (inside
      ``MLP``, ``MultiheadAttention``...), torch layout ``(out, in, *k)``; paths as
      :func:`jinit.reinit` names them (``"layers/0/weight"``);
    * a linen module **with example inputs** (``jinit.layouts(model, x)``): ``model.init(rngs,
      *args, **kwargs)`` is traced under :func:`jax.eval_shape` (no arrays computed) with
      ``flax.linen.intercept_methods`` recording each submodule's type and attributes
      (``Dense``, ``DenseGeneral`` and attention, ``Einsum``, ``Conv``, ``ConvTranspose``,
      ``ConvLocal``, ``Embed``); paths are those of the ``params`` collection
      (``"MultiHeadDotProductAttention_0/query/kernel"``; :func:`jinit.reinit` and
      :func:`jinit.summary` also accept them with a leading ``"params/"``).

    Layers stacked by ``scan``/``vmap`` get their extra leading axes as batch axes. Leaves of
    other layers (norm scales, biases, custom ``self.param`` kernels) are not listed: the tree
    tools use jax's default for them (in -2, out -1) and warn where a rank >= 3 leaf outside a
    convolution makes that guess doubtful.

    Args:
      model: an nnx module, an equinox module, or a linen module.
      *args: example inputs (linen only; arrays or ``jax.ShapeDtypeStruct``).
      rngs: the ``rngs`` of ``model.init`` (linen only; default ``{"params": key(0),
        "dropout": key(1)}``).
      **kwargs: keyword arguments of ``model.init`` (linen only, e.g. ``train=False``).

    Returns:
      ``{path: Layout}`` with each layout bound to its leaf's shape.

    Raises:
      TypeError: a linen module without inputs, or a tree that carries no layer information
        (a params dict: pass the module that made it).

    Examples:
      >>> import jinit
      >>> from flax import nnx
      >>> mha = nnx.MultiHeadAttention(4, 64, decode=False, rngs=nnx.Rngs(0))
      >>> lay = jinit.layouts(mha)["query/kernel"]
      >>> lay.shape, lay.fans()
      ((64, 4, 16), Fans(fan_in=64.0, fan_out=64.0))
    """
    api = "jinit.layouts"
    if _is_linen(model):
        if not args and not kwargs:
            raise TypeError(
                f"`{api}` needs example inputs for a linen module (its params dict does not say "
                f"which layer made each kernel): call `jinit.layouts(model, x)` with the inputs "
                f"of `model.init(key, x)` (arrays or `jax.ShapeDtypeStruct`; nothing is computed)."
            )
        found, variables = _linen_layouts(model, args, kwargs, rngs)
        params = variables.get("params", {}) if isinstance(variables, Mapping) else {}
        return _bind_all(found, _shapes(params))
    if args or kwargs or rngs is not None:
        raise TypeError(
            f"`{api}` takes example inputs only for a linen module; got a "
            f"{type(model).__name__} with inputs. Call `jinit.layouts(model)`."
        )
    if _is_nnx(model) or is_equinox(model):
        return tree_layouts(model)
    raise TypeError(
        f"`{api}` needs an nnx module, an equinox module, or a linen module with example inputs; "
        f"got a {type(model).__name__}, which does not say which layer made each kernel. Pass the "
        f"model (e.g. `jinit.layouts(linen_model, x)`), or write the layouts yourself: "
        f"`{{'attn/query/kernel': jinit.Layout.dense_general(1, 2)}}`."
    )


def lookup(table: Mapping[str, Layout], path: str) -> Layout | None:
    """``table[path]``, also trying the path without a leading ``params/`` (linen variables)."""
    lay = table.get(path)
    if lay is None and path.startswith("params/"):
        lay = table.get(path[len("params/") :])
    return lay
