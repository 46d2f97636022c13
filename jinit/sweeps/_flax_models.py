"""Any Flax model in a sweep: :func:`linen_model` / :func:`nnx_model` wrap a model for
:func:`jinit.sweep` (each ``Dense``/``Conv``/``Einsum``/``Linear`` call is a layer)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jinit._core._checks import check_int
from jinit._core._flax import check_layers, nnx_layer_calls
from jinit.sweeps._statistics import (
    JUDGE_ACTIVATION,
    check_init_output,
    forward_stats,
    nonfinite_count,
    stat_dtype,
    wrap_init_error,
)

# ---------------------------------------------------------------------------------------------
# Any Flax model
# ---------------------------------------------------------------------------------------------


def _path_str(path) -> tuple[str, ...]:
    out = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                out.append(str(getattr(k, attr)))
                break
        else:
            out.append(str(k))
    return tuple(out)


def _param_norms(grads, layer_paths: list[tuple[str, ...]], sdt) -> dict[str, list]:
    """``{param name: [norm per layer (NaN where the layer has no such parameter)]}``."""
    flat = [(_path_str(p), leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]]
    per_layer: list[dict[str, jax.Array]] = []
    for lp in layer_paths:
        d = {}
        for comps, leaf in flat:
            n = len(lp)
            if comps[:n] == lp and len(comps) > n and all(c == "value" for c in comps[n + 1 :]):
                g = jnp.asarray(leaf).astype(sdt)
                d[comps[n]] = jnp.sqrt(jnp.sum(g * g))
        per_layer.append(d)
    names = sorted({k for d in per_layer for k in d})
    return {k: [d.get(k, jnp.array(jnp.nan, sdt)) for d in per_layer] for k in names}


def _flax_stats(layers, y, grads_h, param_norms, sdt, sample_size, stream=False):
    """Stacks per-layer statistics of captured layers (in call order) into arrays over layers.

    ``layers`` is a list of ``(input, output)``: the output of layer ``i`` is its
    pre-activation, the input of layer ``i+1`` (the model output for the last) its activation.
    The ``output.*`` statistics are those of the activation, or with ``stream`` (the layers are
    residual blocks) of the layer's own output, the residual stream.
    """
    per = []
    for i, (_, h) in enumerate(layers):
        a = layers[i + 1][0] if i + 1 < len(layers) else y
        st = forward_stats(h, a, h if stream else a, sdt, sample_size)
        samp = st["act.sample"]
        st["act.sample"] = jnp.pad(samp, (0, sample_size - samp.shape[0]), constant_values=jnp.nan)
        g = grads_h[i].astype(sdt)
        st["grad.second_moment"] = jnp.mean(g * g)
        st["grad_output.second_moment"] = jnp.array(jnp.nan, sdt)
        st["grad.nonfinite"] = nonfinite_count(g)
        st["units"] = jnp.asarray(h.shape[-1], jnp.float32)
        for name, norms in param_norms.items():
            st[f"param_grad_norm.{name}"] = norms[i]
        per.append(st)
    return {k: jnp.stack([jnp.asarray(d[k]) for d in per]) for k in per[0]}


@dataclasses.dataclass(frozen=True, eq=False)
class FlaxModel:
    r"""A Flax model wrapped for :func:`sweep` (see :func:`linen_model` and :func:`nnx_model`).

    Per seed the model is built with the initialiser under test, initialised with a fresh key,
    and run on a fresh input; every *layer* (by default each Flax ``Dense``/``Conv``/``Einsum``/
    ``Linear`` call) is one row of the result: its output is the pre-activation, the input of the
    next layer (the model output for the last one) the activation. Gradients are those of
    :math:`\langle v, y\rangle` with :math:`v\sim\mathcal N(0, I)` on the model output ``y``.

    Sharding annotations of the model (``nnx.with_partitioning``, ``nn.with_partitioning``,
    ``nn.with_logical_partitioning``) are dropped, and a mesh the caller has set
    (``jax.set_mesh``) is set aside while the sweep runs: each seed's model runs whole on one
    device, and the sweep shards the *seed* axis over its ``devices`` (its own 1-D mesh).
    """

    build: Callable[..., Any]
    sample_input: Callable[[jax.Array, int, Any], jax.Array]
    is_layer: Callable[[Any], bool]
    kind: str
    name: str
    batch: int = 64
    apply_kwargs: Mapping[str, Any] | None = None
    residual: bool = False
    #: why there is no prediction (:meth:`theory_inputs` is None)
    theory_note: ClassVar[str] = "no mean-field prediction for an arbitrary Flax model"

    def describe(self) -> str:
        return f"flax.{self.kind} model {self.name}"

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arch": f"flax.{self.kind}", "name": self.name}
        if self.apply_kwargs:
            out["apply_kwargs"] = {k: repr(v) for k, v in self.apply_kwargs.items()}
        if self.residual:
            out["residual"] = True
        return out

    def default_batch(self) -> int:
        return self.batch

    def saved_bytes(self, batch: int, dtype) -> int:
        x = jax.eval_shape(lambda k: self.sample_input(k, batch, dtype), jax.random.key(0))
        return 64 * math.prod(x.shape) * np.dtype(dtype).itemsize

    def theory_inputs(self) -> None:
        return None

    def judged(self) -> dict[str, str]:
        if self.residual:  # each row is a block; its output is the stream
            return {
                "forward": "output.second_moment",
                "backward": "grad.second_moment",
                "std": "output.std",
                "what": "residual stream",
            }
        return dict(JUDGE_ACTIVATION)

    def loss_description(self) -> str:
        return "<v, y>, v ~ N(0, I) (unit cotangent on the model output y)"

    def check_input(self, api: str, batch: int, dtype, key) -> None:
        """``sample_input(key, batch, dtype)`` returns one array with ``batch`` examples."""
        call = f"`sample_input(key, {batch}, {np.dtype(dtype).name})` of the {self.describe()}"
        got: list[Any] = []

        def draw(k):
            x = self.sample_input(k, batch, dtype)
            got.append(x)
            return x if isinstance(x, (jax.Array, np.ndarray)) else None

        try:
            x = jax.eval_shape(draw, key)
        except Exception as e:
            kind = TypeError if isinstance(e, TypeError) else ValueError
            raise kind(f"`{api}`: {call} fails: {type(e).__name__}: {e}") from e
        if x is None:
            x = got[0] if got else None
            raise TypeError(
                f"`{api}`: {call} returned {x!r:.60} of type {type(x).__name__}; it must return "
                f"one array of shape ({batch}, ...), e.g. "
                f"`jax.random.normal(key, (batch, features), dtype)`."
            )
        if len(x.shape) < 1 or x.shape[0] != batch:
            raise ValueError(
                f"`{api}`: {call} returned shape {tuple(x.shape)}; it must return an array "
                f"whose first axis is the batch ({batch}, ...). Use its `batch` argument."
            )

    def probe(self, api, label, init, batch, dtype, sample_size, root) -> int:
        """:meth:`probe_all` for one initialiser."""
        return self.probe_all(api, {label: init}, batch, dtype, sample_size, root)

    def probe_all(self, api, inits, batch, dtype, sample_size, root) -> int:
        """Traces one seed abstractly (ONE trace of the model) with every initialiser called and
        checked at every parameter; returns the bytes of one seed's results. Raises a clean error
        naming the initialiser for a broken initialiser, and the first one for a broken model."""
        labels = list(inits)

        def checked(key, shape, dtype=jnp.float32, *args, **kwargs):
            shp = tuple(shape) if isinstance(shape, (tuple, list)) else (int(shape),)
            where = f"a parameter of shape {shp} in the {self.describe()}"
            outs = []
            for label in labels:
                who = f"initialiser {label!r}"
                try:
                    out = inits[label](key, shape, dtype, *args, **kwargs)
                except Exception as e:
                    raise wrap_init_error(api, who, where, e) from e
                check_init_output(api, who, out, shp, dtype, where)
                outs.append(out)
            return outs[0]

        fn = self.seed_fn(checked, None, batch, dtype, sample_size, 1.0, root, [0])
        try:
            out = jax.eval_shape(fn, jax.ShapeDtypeStruct((), jnp.uint32))
        except Exception as e:
            raise wrap_init_error(
                api, f"initialiser {labels[0]!r}", f"the {self.describe()}", e
            ) from e
        leaves = jax.tree_util.tree_leaves(out)
        return sum(math.prod(t.shape) * np.dtype(t.dtype).itemsize for t in leaves)

    def units(self) -> None:
        return None

    def seed_fn(
        self,
        init,
        bias_init,
        batch,
        dtype,
        sample_size,
        input_second_moment,
        root,
        counter,
        names_out: list | None = None,
    ):
        """The per-seed function; ``names_out`` (if given) receives the layers' module paths
        when it is traced."""
        del bias_init, input_second_moment  # the model's own choices
        sdt = stat_dtype(dtype)
        run_fn = self._run_linen if self.kind == "linen" else self._run_nnx

        def one_seed(idx):
            counter[0] += 1
            key = jax.random.fold_in(root, idx)
            kp, kx, kv = (jax.random.fold_in(key, i) for i in range(3))
            x = self.sample_input(kx, batch, dtype)
            params, run = run_fn(init, kp, x)
            names: list[tuple[str, ...]] = []
            shapes = jax.eval_shape(lambda p: run(p, {}, names), params)
            y_shape, cap_shapes = shapes
            if not names:
                raise ValueError(
                    f"`sweep` found no layer in the {self.kind} model {self.name!r}: the "
                    f"`layers` filter matched no module call."
                )
            v = jax.random.normal(kv, y_shape.shape, jnp.float32).astype(y_shape.dtype)
            probes = {
                "/".join(n): jnp.zeros(c[1].shape, c[1].dtype)
                for n, c in zip(names, cap_shapes, strict=True)
            }

            def loss(p, pr):
                y, cap = run(p, pr, [])
                return jnp.sum(v.astype(sdt) * y.astype(sdt)), (y, cap)

            (_, (y, cap)), (gp, gpr) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
                params, probes
            )
            if names_out is not None:
                names_out[:] = names
            grads_h = [gpr["/".join(n)] for n in names]
            module_paths = [tuple(p for p in n[:-1]) if n[-1].startswith("#") else n for n in names]
            norms = _param_norms(gp, module_paths, sdt)
            return _flax_stats(cap, y, grads_h, norms, sdt, sample_size, self.residual)

        return one_seed

    def _immutable_error(self, e: Exception) -> ValueError:

        m = re.search(r'collection "(\w+)"', str(e))
        coll = m.group(1) if m else "batch_stats"
        return ValueError(
            f"`sweep`: the {self.describe()} writes its {coll!r} collection while it runs "
            f"(BatchNorm in training mode), which `module.apply` refuses unless the collection "
            f"is mutable. Pass `apply_kwargs={{'mutable': [{coll!r}]}}` to `jinit.linen_model` to "
            f"sweep it in training mode (each batch normalised by its own statistics), or the "
            f"model's own switch for inference mode, e.g. `apply_kwargs={{'train': False}}`."
        )

    def _run_linen(self, init, kp, x):
        import flax.errors as flax_errors
        import flax.linen as nn

        module = self.build(init)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"`sweep`: `build(init)` of the {self.describe()} returned {module!r} of type "
                f"{type(module).__name__}; it must return a `flax.linen.Module` built with "
                f"`init` (did it forget `return`?)."
            )
        kw = dict(self.apply_kwargs or {})
        mutable = kw.pop("mutable", False)
        # annotations dropped: plain arrays, no sharding constraint when they are read
        variables = _unbox(module.init(kp, x, **kw))
        params = variables["params"]
        rest = {k: v for k, v in variables.items() if k != "params"}

        def run(p, probes, names):
            cap, seen = [], {}

            def icpt(next_fun, args, kwargs, ctx):
                out = next_fun(*args, **kwargs)
                if ctx.method_name == "__call__" and self.is_layer(ctx.module):
                    path = tuple(str(c) for c in ctx.module.path)
                    k = seen.get(path, 0)
                    seen[path] = k + 1
                    name = path + ((f"#{k}",) if k else ())
                    tag = "/".join(name)
                    if tag in probes:
                        out = out + probes[tag]
                    names.append(name)
                    cap.append((args[0] if args else out, out))
                return out

            with nn.intercept_methods(icpt):
                try:
                    y = module.apply({"params": p, **rest}, x, mutable=mutable, **kw)
                except flax_errors.ModifyScopeVariableError as e:
                    raise self._immutable_error(e) from None
            if mutable is not False:  # (output, updated collections)
                y = y[0]
            return y, cap

        return params, run

    def _run_nnx(self, init, kp, x):
        from flax import nnx

        model = self.build(init, nnx.Rngs(kp))
        if not isinstance(model, nnx.Module):
            raise TypeError(
                f"`sweep`: `build(init, rngs)` of the {self.describe()} returned {model!r} of "
                f"type {type(model).__name__}; it must return a `flax.nnx.Module` built with "
                f"`init` and `rngs` (did it forget `return`?)."
            )
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def run(p, probes, names):
            # fresh Variables in this trace: BatchNorm may update its statistics in place
            m = nnx.merge(graphdef, p, rest, copy=True)
            cap, seen = [], {}

            def hook(path, args, out):
                k = seen.get(path, 0)
                seen[path] = k + 1
                name = path + ((f"#{k}",) if k else ())
                if "/".join(name) in probes:
                    out = out + probes["/".join(name)]
                names.append(name)
                cap.append((args[0] if args else out, out))
                return out

            with nnx_layer_calls(m, self.is_layer, hook):
                y = m(x, **(self.apply_kwargs or {}))
            return y, cap

        return params, run


def _unbox(tree):
    """``tree`` with every Flax ``AxisMetadata`` box (``Partitioned``,
    ``LogicallyPartitioned``) replaced by its value, without a sharding constraint."""
    from flax.core import meta

    def one(x):
        if isinstance(x, meta.AxisMetadata):
            try:
                return x.unbox(apply_constraint=False)
            except TypeError:  # a box type without that option
                return x.unbox()
        return x

    return jax.tree_util.tree_map(one, tree, is_leaf=lambda x: isinstance(x, meta.AxisMetadata))


def _check_flag(api: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`{api}` needs `{name}` to be True or False; got {value!r} of type "
            f"{type(value).__name__}. Pass `{name}=True` or `{name}=False`."
        )
    return bool(value)


def _check_apply_kwargs(api: str, apply_kwargs: Any) -> dict[str, Any] | None:
    if apply_kwargs is None:
        return None
    if not isinstance(apply_kwargs, Mapping) or not all(isinstance(k, str) for k in apply_kwargs):
        raise TypeError(
            f"`{api}` needs `apply_kwargs` to be None or a dict of keyword arguments for the "
            f"model call; got {apply_kwargs!r} of type {type(apply_kwargs).__name__}. Pass e.g. "
            f"`apply_kwargs={{'train': True, 'mutable': ['batch_stats']}}`."
        )
    out = dict(apply_kwargs)
    if "rngs" in out:
        raise ValueError(
            f"`{api}` got `apply_kwargs` with 'rngs'; one fixed key would be shared by every "
            f"seed. Sweep the model in its deterministic mode (e.g. `apply_kwargs="
            f"{{'deterministic': True}}` or dropout rate 0)."
        )
    if api == "nnx_model" and "mutable" in out:
        raise ValueError(
            f"`{api}` got `apply_kwargs` with 'mutable'; nnx modules update their state (e.g. "
            f"BatchNorm statistics) in place, so there is nothing to make mutable. Drop it; pass "
            f"only the model's call arguments (e.g. `{{'train': True}}`)."
        )
    if "mutable" in out:
        m = out["mutable"]
        ok = isinstance(m, (bool, str)) or (
            isinstance(m, (list, tuple)) and all(isinstance(c, str) for c in m)
        )
        if not ok:
            raise TypeError(
                f"`{api}` needs `apply_kwargs['mutable']` to be a collection name, a list of "
                f"them or a bool (as `flax.linen.Module.apply` takes); got {m!r}. Pass e.g. "
                f"`['batch_stats']`."
            )
    return out


def _check_flax_args(api, build, sample_input, layers, name):
    if not callable(build):
        what = "build(init) -> nn.Module" if api == "linen_model" else "build(init, rngs)"
        raise TypeError(
            f"`{api}` needs `build` to be a callable `{what}`; got {build!r} of type "
            f"{type(build).__name__}."
        )
    if not callable(sample_input):
        raise TypeError(
            f"`{api}` needs `sample_input` to be a callable `sample_input(key, batch, dtype) -> "
            f"array`; got {sample_input!r} of type {type(sample_input).__name__}."
        )
    if not isinstance(name, str):
        raise TypeError(
            f"`{api}` needs `name` to be a str (a label for reports); got {name!r} of type "
            f"{type(name).__name__}."
        )
    return check_layers(api, layers)


def linen_model(
    build,
    sample_input,
    *,
    layers=None,
    name: str = "",
    batch: int = 64,
    apply_kwargs: Mapping[str, Any] | None = None,
    residual: bool = False,
) -> FlaxModel:
    """Wraps a ``flax.linen`` model for :func:`sweep`.

    A model with BatchNorm in training mode writes its ``batch_stats`` while it runs: pass
    ``apply_kwargs={"mutable": ["batch_stats"]}`` (and e.g. ``"train": True`` where the model
    takes such a switch); the sweep then runs it in training mode, each batch normalised by its
    own statistics. Without it such a model is refused, before anything is compiled, with an
    error naming ``apply_kwargs``. Sharding annotations are dropped (see :class:`FlaxModel`).

    Args:
      build: ``build(init) -> nn.Module``: the model whose kernels use the initialiser ``init``.
      sample_input: ``sample_input(key, batch, dtype) -> x``: a fresh input batch.
      layers: which submodule calls are layers: ``None`` (Flax ``Dense``, ``DenseGeneral``,
        ``Conv``, ``ConvTranspose``, ``ConvLocal``, ``Einsum``), a type or tuple of types, or a
        predicate ``module -> bool``. Their outputs are captured with
        ``nn.intercept_methods`` (a module called twice gives two rows).
      name: a label for the configuration.
      batch: the default batch size.
      apply_kwargs: keyword arguments of the model call: every key but ``"mutable"`` is passed
        to ``module.init`` and ``module.apply`` (e.g. ``{"train": True}``), ``"mutable"`` to
        ``module.apply`` only (e.g. ``["batch_stats"]``; the updated collections are
        discarded). ``"rngs"`` is refused (one key would be shared by every seed).
      residual: the rows are residual blocks (pass ``layers=`` the block type, e.g. Flax
        lm1b's ``EncoderDecoder1DBlock``): each row's output is the residual stream, which the
        verdicts, :func:`assert_stable_propagation`, the table and the figures then judge
        (``output.*``) instead of the next row's input, which a pre-LN block normalises.

    Returns:
      A :class:`FlaxModel` to pass to :func:`sweep`.

    Examples:
      >>> import jax, jinit, flax.linen as nn
      >>> from jinit import linen_model, sweep
      >>> class MLP(nn.Module):
      ...     kernel_init: object
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         for _ in range(3):
      ...             x = nn.relu(nn.Dense(32, kernel_init=self.kernel_init)(x))
      ...         return x
      >>> model = linen_model(
      ...     lambda init: MLP(init), lambda k, b, dt: jax.random.normal(k, (b, 32), dt))
      >>> r = sweep(model, jinit.he_normal(), seeds=2, batch=16)
      >>> r.n_layers
      3
    """
    is_layer = _check_flax_args("linen_model", build, sample_input, layers, name)
    batch = check_int("linen_model", "batch", batch, minimum=1)
    kw = _check_apply_kwargs("linen_model", apply_kwargs)
    residual = _check_flag("linen_model", "residual", residual)
    return FlaxModel(
        build, sample_input, is_layer, "linen", name or _callable_name(build), batch, kw, residual
    )


def nnx_model(
    build,
    sample_input,
    *,
    layers=None,
    name: str = "",
    batch: int = 64,
    apply_kwargs: Mapping[str, Any] | None = None,
    residual: bool = False,
) -> FlaxModel:
    """Wraps a ``flax.nnx`` model for :func:`sweep`.

    Sharding annotations (``nnx.with_partitioning``, as in Flax's lm1b example) are dropped and
    a mesh set by the caller is set aside while the sweep runs (see :class:`FlaxModel`): the
    model is built with eager sharding off, each seed's copy runs whole on one device.

    Args:
      build: ``build(init, rngs) -> nnx.Module``: the model whose kernels use ``init``, its
        parameters drawn from ``rngs`` (an ``nnx.Rngs`` holding the seed's key).
      sample_input: ``sample_input(key, batch, dtype) -> x``: a fresh input batch.
      layers: which submodules are layers: ``None`` (``nnx.Linear``, ``LinearGeneral``,
        ``Conv``, ``ConvTranspose``, ``Einsum``), a type or tuple of types, or a predicate. Their
        ``__call__`` outputs are captured (the class's ``__call__`` is wrapped while tracing).
      name: a label for the configuration.
      batch: the default batch size.
      apply_kwargs: keyword arguments of the model call ``model(x, **apply_kwargs)`` (nnx
        modules update BatchNorm statistics in place: no ``"mutable"``; no ``"rngs"``).
      residual: the rows are residual blocks (pass ``layers=`` the block type, e.g. Flax
        lm1b's ``EncoderDecoder1DBlock``): each row's output is the residual stream, which the
        verdicts, :func:`assert_stable_propagation`, the table and the figures then judge
        (``output.*``) instead of the next row's input, which a pre-LN block normalises.

    Returns:
      A :class:`FlaxModel` to pass to :func:`sweep`.

    Examples:
      >>> import jax, jinit
      >>> from flax import nnx
      >>> from jinit import nnx_model, sweep
      >>> class MLP(nnx.Module):
      ...     def __init__(self, init, rngs):
      ...         self.layers = nnx.List(
      ...             [nnx.Linear(32, 32, kernel_init=init, rngs=rngs) for _ in range(3)])
      ...     def __call__(self, x):
      ...         for layer in self.layers:
      ...             x = nnx.relu(layer(x))
      ...         return x
      >>> model = nnx_model(MLP, lambda k, b, dt: jax.random.normal(k, (b, 32), dt))
      >>> sweep(model, jinit.he_normal(), seeds=2, batch=16).n_layers
      3
    """
    is_layer = _check_flax_args("nnx_model", build, sample_input, layers, name)
    batch = check_int("nnx_model", "batch", batch, minimum=1)
    kw = _check_apply_kwargs("nnx_model", apply_kwargs)
    residual = _check_flag("nnx_model", "residual", residual)
    return FlaxModel(
        build, sample_input, is_layer, "nnx", name or _callable_name(build), batch, kw, residual
    )


def _callable_name(f) -> str:
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)
