"""The Llama-style decoder ``jinit init-bench`` initialises: pre-RMSNorm blocks of causal
self-attention and a SwiGLU MLP, with Flax partitioning annotations for a ``("data",
"model")`` mesh (weights fully sharded over ``data``, tensor-parallel over ``model``).

Flax's default laws throughout (LeCun truncated normal kernels, a unit-variance embedding,
unit RMSNorm scales); :data:`RULES` gives jinit the same laws by path. flax is imported only
when a model is built (the CLI's start-up path stays light).
"""

from __future__ import annotations

from typing import Any

import jinit

# jinit rules with Flax's default laws for every leaf of the decoder
RULES = (
    ("*/kernel", jinit.lecun_normal()),
    ("*/embedding", jinit.variance_scaling(1.0, "fan_in", "normal", out_axis=0)),
    ("*/scale", jinit.ones),
)


def decoder(layers: int, width: int, ffn: int, vocab: int, heads: int, dtype: Any) -> Any:
    """A linen decoder of ``layers`` blocks; parameters in ``dtype`` (``param_dtype``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = decoder(2, 32, 64, 128, 4, jnp.float32)
      >>> shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
      >>> shapes["params"]["block_1"]["mlp_down"]["kernel"].value.shape
      (64, 32)
    """
    import flax.linen as nn
    import jax.numpy as jnp

    lecun = nn.initializers.lecun_normal()
    embed_init = nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)

    def dense(features: int, names: tuple[str | None, ...], name: str) -> nn.Dense:
        return nn.Dense(
            features,
            use_bias=False,
            kernel_init=nn.with_partitioning(lecun, names),
            param_dtype=dtype,
            name=name,
        )

    def norm(name: str) -> nn.RMSNorm:
        ones = nn.with_partitioning(nn.initializers.ones, (None,))
        return nn.RMSNorm(param_dtype=dtype, scale_init=ones, name=name)

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            b, t, _ = x.shape
            h = norm("attn_norm")(x)
            q, k, v = (
                dense(width, ("data", "model"), n)(h).reshape(b, t, heads, width // heads)
                for n in ("q", "k", "v")
            )
            mask = nn.make_causal_mask(jnp.ones((b, t)))
            a = nn.dot_product_attention(q, k, v, mask=mask).reshape(b, t, width)
            x = x + dense(width, ("model", "data"), "o")(a)
            h = norm("mlp_norm")(x)
            gate = dense(ffn, ("data", "model"), "mlp_gate")(h)
            up = dense(ffn, ("data", "model"), "mlp_up")(h)
            return x + dense(width, ("model", "data"), "mlp_down")(nn.silu(gate) * up)

    class Decoder(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            emb = nn.with_partitioning(embed_init, ("model", "data"))
            x = nn.Embed(vocab, width, embedding_init=emb, param_dtype=dtype, name="embed")(tokens)
            for i in range(layers):
                x = Block(name=f"block_{i}")(x)
            return dense(vocab, ("data", "model"), "head")(norm("final_norm")(x))

    return Decoder()
