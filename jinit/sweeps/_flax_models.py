"""Any Flax model in a sweep: :func:`linen_model` / :func:`nnx_model` wrap a model for
:func:`jinit.sweep` (each ``Dense``/``Conv``/``Einsum``/``Linear`` call is a layer).
"""

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
from jinit._core._flax import nnx_layer_calls
from jinit.sweeps._flax_helpers import (
    check_apply_kwargs,
    check_flag,
    check_flax_args,
    flax_stats,
    layer_param_norms,
    unbox_tree,
)
from jinit.sweeps._statistics import (
    JUDGE_ACTIVATION,
    check_init_output,
    stat_dtype,
    wrap_init_error,
)

# ---------------------------------------------------------------------------------------------
# The model adapter
# ---------------------------------------------------------------------------------------------


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
    theory_note: ClassVar[str] = "no mean-field prediction: see the sweep's notes"

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
        gradients: bool = True,
        exact_stats: bool = True,
    ):
        """The per-seed function; ``names_out`` (if given) receives the layers' module paths
        when it is traced; without ``gradients`` the model runs forward only; without
        ``exact_stats`` the stds are one-pass and the non-finite counts are flags
        (``forward_stats``)."""
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

            if names_out is not None:
                names_out[:] = names
            if not gradients:
                y, cap = run(params, probes, [])
                return flax_stats(cap, y, None, {}, sdt, sample_size, self.residual, exact_stats)

            def loss(p, pr):
                y, cap = run(p, pr, [])
                return jnp.sum(v.astype(sdt) * y.astype(sdt)), (y, cap)

            (_, (y, cap)), (gp, gpr) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
                params, probes
            )
            grads_h = [gpr["/".join(n)] for n in names]
            module_paths = [tuple(p for p in n[:-1]) if n[-1].startswith("#") else n for n in names]
            norms = layer_param_norms(gp, module_paths, sdt)
            return flax_stats(cap, y, grads_h, norms, sdt, sample_size, self.residual, exact_stats)

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
        variables = unbox_tree(module.init(kp, x, **kw))
        params = variables["params"]
        rest = {k: v for k, v in variables.items() if k != "params"}

        def run(p, probes, names, xin=None):
            xin = x if xin is None else xin
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
                    y = module.apply({"params": p, **rest}, xin, mutable=mutable, **kw)
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

        def run(p, probes, names, xin=None):
            xin = x if xin is None else xin
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
                y = m(xin, **(self.apply_kwargs or {}))
            return y, cap

        return params, run


# ---------------------------------------------------------------------------------------------
# Constructors
# ---------------------------------------------------------------------------------------------


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
    is_layer = check_flax_args("linen_model", build, sample_input, layers, name)
    batch = check_int("linen_model", "batch", batch, minimum=1)
    kw = check_apply_kwargs("linen_model", apply_kwargs)
    residual = check_flag("linen_model", "residual", residual)
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
    is_layer = check_flax_args("nnx_model", build, sample_input, layers, name)
    batch = check_int("nnx_model", "batch", batch, minimum=1)
    kw = check_apply_kwargs("nnx_model", apply_kwargs)
    residual = check_flag("nnx_model", "residual", residual)
    return FlaxModel(
        build, sample_input, is_layer, "nnx", name or _callable_name(build), batch, kw, residual
    )


def _callable_name(f) -> str:
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)
