"""The models a training sweep trains: the built-in MLP classifier, a user's custom model, the
role of each parameter, and the compiled per-row pieces (draw, start, one segment of periods)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jinit.sweeps._mlp import MLP
from jinit.sweeps._network_base import activation_fn, layer_norm
from jinit.sweeps._train_data import ROLES

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Opaque:
    """A user's spec for a custom model, hashed by identity (it may not be hashable)."""

    value: Any

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.value is self.value


@dataclasses.dataclass(frozen=True)
class MLPClassifier:
    """``jinit.mlp(width, depth, ...)`` as a classifier: input layer, hidden stack, readout.

    Layer 1 maps the ``in_features`` inputs to ``width`` units, layers 2..depth are the scanned
    ``width × width`` stack of :class:`jinit.sweeps._mlp.MLP` (same residual/LayerNorm
    conventions), and a dense readout maps ``width`` to ``n_classes`` logits. Hashable, so the
    compiled loop is cached across calls.
    """

    net: MLP
    in_features: int
    n_classes: int

    def describe(self) -> str:
        n = self.net
        extras = [n.activation] + ["LayerNorm"] * n.layernorm + ["residual"] * n.residual
        return f"MLP {self.in_features}→{n.width}×{n.depth}→{self.n_classes}, {', '.join(extras)}"

    def init(self, key: jax.Array, roles: Mapping[str, Any]) -> dict[str, Any]:
        # Few RNG call sites on purpose: XLA:CPU compile time grows with each threefry.
        n = self.net
        w, c = n.width, self.n_classes
        k_in, k_hidden, k_out, k_bias = jax.random.split(key, 4)

        def f32(x):
            return jnp.asarray(x, jnp.float32)

        params: dict[str, Any] = {
            "input": {"kernel": f32(roles["input"](k_in, (self.in_features, w)))},
            "hidden": {},
            "readout": {
                "kernel": f32(roles["readout"](k_out, (w, c))),
                "bias": jnp.zeros((c,), jnp.float32),
            },
        }
        n_hidden = n.depth - 1
        if n_hidden:
            keys = jax.random.split(k_hidden, n_hidden)
            params["hidden"]["kernel"] = jax.vmap(lambda k: f32(roles["hidden"](k, (w, w))))(keys)
        else:
            params["hidden"]["kernel"] = jnp.zeros((0, w, w), jnp.float32)
        if n.bias:
            keys = jax.random.split(k_bias, n.depth)
            biases = jax.vmap(lambda k: f32(roles["bias"](k, (w,))))(keys)
            params["input"]["bias"] = biases[0]
            params["hidden"]["bias"] = biases[1:]
        return params

    def __call__(self, params: Mapping[str, Any], x: jax.Array) -> jax.Array:
        n = self.net
        phi = activation_fn(n.activation)
        p = params["input"]
        h = x.reshape(x.shape[0], -1) @ p["kernel"]
        if n.bias:
            h = h + p["bias"]
        a = phi(layer_norm(h) if n.layernorm else h)
        carry = (h, a) if n.residual else a

        def layer(carry, lp):
            h, aux = n.pre(lp, carry)
            carry, _ = n.post(lp, h, carry, aux)
            return carry, None

        carry, _ = jax.lax.scan(layer, carry, params["hidden"])
        a = carry[1] if n.residual else carry
        return a @ params["readout"]["kernel"] + params["readout"]["bias"]


@dataclasses.dataclass(frozen=True, eq=False)
class CustomModel:
    """A user model ``(init_fn, apply_fn)``; hashed by the identity of the two functions."""

    init_fn: Callable[..., Any]
    apply_fn: Callable[..., jax.Array]

    def __hash__(self) -> int:
        return hash((self.init_fn, self.apply_fn))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CustomModel)
            and other.init_fn is self.init_fn
            and other.apply_fn is self.apply_fn
        )

    def describe(self) -> str:
        name = getattr(self.apply_fn, "__qualname__", type(self.apply_fn).__name__)
        return f"custom model {name}"

    def init(self, key: jax.Array, spec: Any) -> Any:
        return self.init_fn(key, spec.value if isinstance(spec, Opaque) else spec)

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        return self.apply_fn(params, x)


def resolve_roles(api: str, label: str, spec: Any, bias_init, readout_init) -> dict[str, Any]:
    """``{role: initialiser}`` for the built-in MLP from an initialiser or a role mapping."""
    if isinstance(spec, Mapping):
        unknown = sorted(set(map(str, spec)) - set(ROLES))
        if unknown or "hidden" not in spec:
            raise ValueError(
                f"`{api}`: the rules of {label!r} must be a mapping with a 'hidden' initialiser "
                f"and optionally 'input', 'readout', 'bias' (roles {', '.join(ROLES)}); got keys "
                f"{sorted(map(str, spec))}."
            )
        roles = {
            "hidden": spec["hidden"],
            "input": spec.get("input", spec["hidden"]),
            "readout": spec.get("readout", readout_init or spec["hidden"]),
            "bias": spec.get("bias", bias_init),
        }
    else:
        roles = {"hidden": spec, "input": spec, "readout": readout_init or spec, "bias": bias_init}
    for role, init in roles.items():
        if not callable(init):
            raise TypeError(
                f"`{api}`: the {role} initialiser of {label!r} must be a `(key, shape, dtype)` "
                f"callable such as `jinit.he_normal()`; got {init!r}."
            )
    return roles


def init_label(init: Any) -> str:
    r = repr(init)
    return r[len("jinit.") :] if r.startswith("jinit.") else r


def normalize_inits(api: str, inits: Any) -> dict[str, Any]:
    if isinstance(inits, Mapping):
        out = {str(k): v for k, v in inits.items()}
    elif callable(inits):
        out = {init_label(inits): inits}
    elif isinstance(inits, Sequence) and not isinstance(inits, str):
        out = {init_label(v): v for v in inits}
    else:
        raise TypeError(
            f"`{api}` needs `inits` to be an initialiser, a sequence of them or a mapping "
            f"name -> initialiser (or name -> role rules); got {inits!r}."
        )
    if not out:
        raise ValueError(f"`{api}` needs at least one initialiser in `inits`; got none.")
    return out


# ---------------------------------------------------------------------------------------------
# The compiled pieces
# ---------------------------------------------------------------------------------------------


def _metrics(model, params, x, y) -> tuple[jax.Array, jax.Array]:
    logits = model(params, x).astype(jnp.float32)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    acc = jnp.mean(jnp.argmax(logits, axis=-1) == y)
    return loss, acc.astype(jnp.float32)


def _evaluate(model, params, data) -> jax.Array:
    """``(4,)``: train loss, train accuracy, test loss, test accuracy."""
    x_tr, y_tr, x_te, y_te = data
    return jnp.stack([*_metrics(model, params, x_tr, y_tr), *_metrics(model, params, x_te, y_te)])


@functools.partial(jax.jit, static_argnames=("model", "spec"))
def draw_params(key, *, model, spec):
    """One seed's initial parameters (not vmapped: a vmapped threefry compiles ~3x slower)."""
    return model.init(key, spec)


@functools.partial(jax.jit, static_argnames=("model", "optimizer"))
def start_rows(params, data_keys, data, *, model, optimizer):
    """Per row: the training state ``(params, optimiser state, data key)`` and step-0 metrics."""

    def one(p, k):
        return (p, optimizer.init(p), k), _evaluate(model, p, data)

    return jax.vmap(one)(params, data_keys)


@functools.partial(jax.jit, static_argnames=("model", "optimizer", "batch_size", "eval_every"))
def run_segment(state, periods, data, *, model, optimizer, batch_size, eval_every):
    """Runs the periods ``periods`` (each ``eval_every`` steps + an evaluation) for every row."""
    x_tr, y_tr = data[0], data[1]

    def loss_fn(params, idx):
        return _metrics(model, params, x_tr[idx], y_tr[idx])[0]

    def one(row):
        def period(carry, p):
            params, opt_state, dkey = carry
            idx = jax.random.randint(
                jax.random.fold_in(dkey, p), (eval_every, batch_size), 0, x_tr.shape[0]
            )

            def step(c, i):
                params, opt_state = c
                grads = jax.grad(loss_fn)(params, i)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), idx)
            return (params, opt_state, dkey), _evaluate(model, params, data)

        return jax.lax.scan(period, row, periods)

    return jax.vmap(one)(state)
