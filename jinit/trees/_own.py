r"""Rules that draw every parameter with its own layer's initialiser: :func:`own_rules`.

:func:`jinit.reinit` and :func:`jinit.init_sharded` take rules; ``own_rules(model, ...)`` are
the rules a model already states in its layers (``kernel_init=``, ``bias_init=``,
``embedding_init=``, ``scale_init=``, or any ``self.param(name, init_fn, ...)``), so a model can
be initialised sharded, stacked and never materialised *with its own initialisers*:

.. math::
    w_{\mathrm{path}} \leftarrow \mathrm{init}_{\mathrm{layer}}\big(\mathrm{fold\_in}(
    \mathrm{key}, h(\mathrm{path})),\ \ldots\big)

called exactly as the layer calls it (the same arguments: shape, ``param_dtype``, a Flax
``DenseGeneral``'s flattening, a ``with_partitioning`` wrapper's box removed), with jinit's
per-path key (:func:`jinit.path_key`) in place of Flax's. So every leaf follows its layer's own
law; its bits differ from ``model.init``'s, whose keys come from Flax's own key splitting.

* **linen**: ``own_rules(module, *inputs, **kwargs)``, the arguments of ``module.init(key,
  *inputs, **kwargs)``; the module is traced abstractly (``jax.eval_shape``, no array is
  drawn) while each ``self.param`` call is recorded.
* **nnx**: ``own_rules(make)``, a function that builds the model (``lambda:
  Model(..., rngs=nnx.Rngs(0))``); an nnx layer does not keep its initialisers, so they are read
  from its constructor's arguments (``kernel_init`` for ``kernel``, and so on, defaults
  included) while ``make`` runs abstractly (under ``jax.eval_shape``: nothing is drawn).
  Layers that draw a parameter another way (a ``nnx.Param`` not named after an ``*_init``
  argument) get no rule: they are listed in :attr:`OwnRules.unmatched` and are found by
  ``reinit``'s ``strict`` check like any leaf without a rule.

Parameters made inside lifted transforms whose stored shape is not the one the initialiser was
called with (``nn.scan``, ``nn.vmap`` stacking layers) are listed in :attr:`OwnRules.unmatched`
too, with the reason: give them explicit rules *before* the own rules (``[("*/scan/*", init),
*own_rules(...)]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

from jinit._core._paths import is_box, is_nnx_module, named_leaves, unbox
from jinit.trees._rules import Rule, glob_escape, glob_matcher

API = "jinit.own_rules"


@dataclasses.dataclass(frozen=True)
class OwnInit:
    """A layer's own initialiser, called as the layer calls it: ``fn(key, *args, **kwargs)``.

    Equal for layers that state the same initialiser with the same arguments (the repeated
    blocks of a transformer), so :func:`jinit.init_sharded` draws them stacked.

    Attributes:
      fn: the layer's initialiser (``init_fn`` of its ``self.param``, or its ``*_init``).
      args: the positional arguments after the key (for an nnx layer, ``()``: it is called with
        the ``(shape, dtype)`` :func:`jinit.reinit` passes, in the layer's layout).
      kwargs: keyword arguments, as sorted ``(name, value)`` pairs.
      shape: the stored shape the call makes (``None`` for an nnx layer).
    """

    fn: Callable[..., Any] = dataclasses.field(compare=False)
    args: tuple = dataclasses.field(default=(), compare=False)
    kwargs: tuple = dataclasses.field(default=(), compare=False)
    shape: tuple[int, ...] | None = None
    path: str = dataclasses.field(default="", compare=False)
    #: what the call computes: ``fn``'s code and captured values (:func:`_behaviour`) and the
    #: arguments, made comparable (:func:`_frozen`), so the closures
    #: a layer makes anew at each call (DenseGeneral's flattening wrapper, with_partitioning)
    #: compare equal when they wrap the same initialiser the same way
    same_as: Any = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.same_as is None:
            same = (_behaviour(self.fn), _frozen(self.args), _frozen(self.kwargs))
            object.__setattr__(self, "same_as", same)

    def __call__(self, key: Any, shape: Any, dtype: Any = None) -> Any:
        if self.shape is None:  # nnx: the layer calls its init with (shape, param_dtype)
            return _compiled(self)(key, tuple(shape), None if dtype is None else np.dtype(dtype))
        if tuple(shape) != self.shape:
            raise ValueError(
                f"`{API}`: the initialiser of {self.path!r} ({_name(self.fn)}) makes shape "
                f"{self.shape}, but it was asked for {tuple(shape)} (a `layouts=` entry for this "
                f"leaf, or another tree than the model's). Drop the layout, or give the leaf an "
                f"explicit rule before the own rules."
            )
        return _unboxed(_compiled(self)(key))  # with_partitioning's box: the value only

    def __repr__(self) -> str:
        return f"own({_name(self.fn)})"


@functools.lru_cache(maxsize=256)
def _compiled(init: OwnInit) -> Callable[..., Any]:
    """``init``'s call as one jitted function, shared by equal initialisers: drawn eagerly
    (:func:`jinit.reinit`) or inside :func:`jinit.init_sharded`'s stacked program, it is then
    the same compiled computation, so the two give the same bits (op-by-op execution of a
    Flax or jax initialiser can round differently from its compiled form)."""
    if init.shape is None:
        return jax.jit(lambda k, shape, dtype: init.fn(k, shape, dtype), static_argnums=(1, 2))
    return jax.jit(lambda k: init.fn(k, *init.args, **dict(init.kwargs)))


def _behaviour(fn: Any, depth: int = 0) -> Any:
    """A hashable stand-in for what ``fn`` computes: a plain function is its code, defaults and
    the values its closure captured (recursively, 4 levels); anything else is itself. Two
    wrappers made by the same code around the same initialiser are then equal."""
    code = getattr(fn, "__code__", None)
    if code is None or depth > 4 or not inspect.isfunction(fn):
        return fn
    cells = []
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            value = None
        cells.append(_frozen(value, depth + 1))
    return ("function", code, _frozen(fn.__defaults__), _frozen(fn.__kwdefaults__), tuple(cells))


def _frozen(value: Any, depth: int = 0) -> Any:
    """``value`` made comparable by content where it is a container, a function or a dataclass
    such as the linen layer a wrapper captured (its fields but its place in the model: its
    ``parent`` and ``name``)."""
    if inspect.isfunction(value):
        return _behaviour(value, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and depth <= 4:
        fields = [f.name for f in dataclasses.fields(value) if f.name not in ("parent", "name")]
        return (
            "dataclass",
            type(value),
            tuple(_frozen(getattr(value, f), depth + 1) for f in fields),
        )
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _frozen(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    return value


def _unboxed(x: Any) -> Any:
    return unbox(x) if is_box(x) else x


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


class OwnRules(tuple):
    """The rules :func:`own_rules` found: a tuple of :class:`jinit.Rule` (one per parameter,
    its exact path as the pattern, deepest first), usable wherever rules are, alone or after
    other rules. :attr:`unmatched` maps the parameters that got no rule to the reason."""

    unmatched: dict[str, str]
    model: str

    def __new__(cls, rules: Sequence[Rule], unmatched: dict[str, str], model: str) -> OwnRules:
        self = super().__new__(cls, rules)
        self.unmatched, self.model = dict(unmatched), model
        return self

    def check_paths(self, paths: Sequence[str], *, regex: bool) -> None:
        """Raises when the tree is not the model's (no rule matches any of its paths)."""
        if regex:
            raise ValueError(
                f"`{API}` rules are globs (exact parameter paths); call `jinit.reinit` / "
                f"`jinit.init_sharded` with regex=False."
            )
        matchers = [glob_matcher(r.pattern) for r in self]
        if self and paths and not any(m(p) for m in matchers for p in paths):
            raise ValueError(
                f"`{API}` of the {self.model} matches none of the tree's paths (e.g. "
                f"{paths[0]!r}; the model has {self[0].pattern[2:]!r}): the tree is not this "
                f"model's parameters. Pass the model's `variables` / `params` or nnx module."
            )

    def __repr__(self) -> str:
        return f"OwnRules({len(self)} parameters of the {self.model})"

    def __reduce__(self):
        return (OwnRules, (tuple(self), self.unmatched, self.model))


def own_rules(model: Any, *inputs: Any, **kwargs: Any) -> OwnRules:
    """The rules that draw each parameter of ``model`` with its own layer's initialiser.

    Args:
      model: a ``flax.linen.Module`` (then ``inputs``/``kwargs`` are those of ``model.init``),
        or a function of no arguments that builds an ``nnx.Module``.
      *inputs: the linen model's example inputs (arrays or ``jax.ShapeDtypeStruct``).
      **kwargs: keyword arguments of the linen model's ``init``.

    Returns:
      An :class:`OwnRules` (a tuple of :class:`jinit.Rule`) for :func:`jinit.reinit` and
      :func:`jinit.init_sharded`.

    Raises:
      TypeError: ``model`` is neither, or is an already built nnx module (its layers no longer
        know their initialisers: pass the function that builds it).

    Examples:
      >>> import jax, jax.numpy as jnp, jinit
      >>> import flax.linen as nn
      >>> model = nn.Dense(3, kernel_init=jinit.orthogonal())
      >>> x = jnp.ones((2, 4))
      >>> rules = jinit.own_rules(model, x)
      >>> rules
      OwnRules(2 parameters of the linen Dense)
      >>> params = jinit.init_sharded(jax.eval_shape(model.init, jax.random.key(0), x),
      ...                             jax.random.key(1), rules)
      >>> w = params["params"]["kernel"]
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(3), atol=1e-5))  # orthonormal columns, as asked
      True
    """
    import flax.linen as nn

    if isinstance(model, nn.Module):
        return _linen_rules(model, inputs, kwargs)
    if is_nnx_module(model):
        raise TypeError(
            f"`{API}` got a built nnx module ({type(model).__name__}); nnx layers do not keep "
            f"their initialisers after construction. Pass the function that builds it, e.g. "
            f"`jinit.own_rules(lambda: {type(model).__name__}(..., rngs=nnx.Rngs(0)))`."
        )
    if callable(model) and not inputs and not kwargs:
        return _nnx_rules(model)
    raise TypeError(
        f"`{API}` needs a flax.linen Module (with its example inputs) or a function of no "
        f"arguments that builds an nnx Module; got {model!r} of type {type(model).__name__}"
        + (" with inputs." if inputs or kwargs else ".")
    )


def _ordered(found: dict[str, OwnInit], unmatched: dict[str, str], model: str) -> OwnRules:
    """One rule per path, deepest first, so ``*/a/b`` cannot take ``x/a/b``'s leaf before it."""
    order = sorted(found, key=lambda p: (-p.count("/"), p))
    rules = [Rule("*/" + glob_escape(p), found[p]) for p in order]
    return OwnRules(rules, unmatched, model)


# ---------------------------------------------------------------------------------------------
# linen: record every self.param call of an abstract init
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _recording_params(calls: list) -> Iterator[None]:
    from flax.core.scope import Scope

    original = Scope.param

    def param(self, name, init_fn, *init_args, unbox=True, **init_kwargs):
        new = not self.has_variable("params", name)
        value = original(self, name, init_fn, *init_args, unbox=unbox, **init_kwargs)
        if new:  # the shape this call made (the value is abstract: init runs under eval_shape)
            made = tuple(np.shape(_unboxed(value)))
            calls.append((tuple(self.path) + (name,), init_fn, init_args, init_kwargs, made))
        return value

    Scope.param = param
    try:
        yield
    finally:
        Scope.param = original


def _linen_rules(model: Any, inputs: tuple, kwargs: dict) -> OwnRules:
    calls: list = []
    with _recording_params(calls):
        shapes = jax.eval_shape(lambda k: model.init(k, *inputs, **kwargs), jax.random.key(0))
    stored = {p: tuple(a.shape) for p, a, _ in named_leaves(shapes.get("params", {}), shapes=True)}
    found, unmatched = {}, {}
    for names, fn, args, kw, made in calls:
        path = "/".join(str(n) for n in names)
        if path not in stored:
            continue  # a param of a module whose variables were not kept (e.g. inside a lift)
        if made != stored[path]:
            unmatched[path] = (
                f"its initialiser makes {made} but the stored leaf is {stored[path]} (a lifted "
                f"transform such as nn.scan or nn.vmap stacks it)"
            )
            continue
        try:
            init = OwnInit(fn, tuple(args), tuple(sorted(kw.items())), made, path)
            hash(init)
        except TypeError:  # an unhashable argument: an init of its own (not stacked)
            init = _Unhashable(fn, tuple(args), tuple(sorted(kw.items())), made, path)
        found.setdefault(path, init)
    for path in stored.keys() - found.keys() - unmatched.keys():
        unmatched[path] = "not made by a `self.param` call the trace saw"
    return _ordered(found, unmatched, f"linen {type(model).__name__}")


class _Unhashable(OwnInit):
    """An :class:`OwnInit` compared by identity (an argument cannot be hashed)."""

    __eq__ = object.__eq__
    __hash__ = object.__hash__


# ---------------------------------------------------------------------------------------------
# nnx: read each layer's *_init arguments while it is built
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _recording_modules(made: dict) -> Iterator[None]:
    from flax.nnx.module import ModuleMeta
    from flax.nnx.pytreelib import PytreeMeta

    had = "__call__" in vars(ModuleMeta)
    original = vars(ModuleMeta).get("__call__", PytreeMeta.__call__)

    def call(cls, *args, **kwargs):
        module = original(cls, *args, **kwargs)
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        except (TypeError, ValueError):
            return module
        bound.apply_defaults()
        made[id(module)] = (module, dict(bound.arguments))
        return module

    ModuleMeta.__call__ = call
    try:
        yield
    finally:
        if had:
            ModuleMeta.__call__ = original
        else:
            del ModuleMeta.__call__


def _nnx_rules(make: Callable[[], Any]) -> OwnRules:
    from flax import nnx

    found: dict[str, OwnInit] = {}
    unmatched: dict[str, str] = {}
    kind: list[str] = []

    def build(key):  # runs abstractly: the module's arrays are tracers, dropped after the walk
        del key
        made: dict = {}
        with _recording_modules(made):
            model = make()
        if not is_nnx_module(model):
            raise TypeError(
                f"`{API}` needs the function to build an nnx Module; it returned {model!r} of "
                f"type {type(model).__name__}."
            )
        kind.append(type(model).__name__)
        for names, node in nnx.iter_graph(model):
            if isinstance(node, nnx.Module):
                _read_layer(names, node, made.get(id(node), (None, {}))[1], found, unmatched)
        return ()

    jax.eval_shape(build, jax.random.key(0))
    return _ordered(found, unmatched, f"nnx {kind[0]}")


def _read_layer(names, node, arguments: dict, found: dict, unmatched: dict) -> None:
    """The rule of each ``nnx.Param`` attribute ``x`` of one layer: its ``x_init`` argument."""
    from flax import nnx

    for attr, value in vars(node).items():
        if not isinstance(value, nnx.Param):
            continue
        path = "/".join(str(n) for n in (*names, attr))
        init = arguments.get(f"{attr}_init")
        if callable(init):
            found[path] = OwnInit(init, path=path)
        else:
            unmatched[path] = f"{type(node).__name__} has no `{attr}_init` constructor argument"
