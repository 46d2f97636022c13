"""Faithful small-configuration copies of models that other people wrote, for tests.

jinit's tree tools (``reinit``, ``summary``, ``lsuv``, the recipes, ``init_like_torch``, sweeps)
must be right on the models users actually have, not only on toy models written for jinit. Each
class below re-states one public example model with the SAME module names, layer types, parameter
names and init calls as its source (cited at the top of each class); only the configuration is
tiny so that the tests stay fast. Where this file departs from the source it says so, and why.

Builders (cheap; a few milliseconds to a second on one CPU core):

==========================  ======================================================================
``flax_resnet(...)``        Flax ImageNet ResNet (linen, BatchNorm) -> ``((module, variables), x)``
``flax_resnet18(...)``      the same with ResNet-18's ``stage_sizes=[2, 2, 2, 2]``
``flax_lm1b_nnx(...)``      Flax lm1b_nnx ``TransformerLM`` (nnx, ``nnx.with_partitioning``)
                            -> ``(model, tokens)``
``flax_lm1b_linen(...)``    Flax lm1b ``TransformerLM`` (linen, ``nn.with_logical_partitioning``)
                            -> ``((module, variables), tokens)``
``flax_wmt_encoder(...)``   Flax wmt ``Encoder`` (linen; ``Encoder1DBlock``, ``MlpBlock``)
                            -> ``((module, variables), tokens)``
``vit(...)``                google-research ``VisionTransformer`` (linen) -> ``((module, variables),
                            images)``
``eqx_mlp(...)``            ``equinox.nn.MLP`` -> ``(model, x)``
``eqx_mnist_cnn(...)``      the equinox docs' MNIST tutorial ``CNN`` -> ``(model, image)``
==========================  ======================================================================

Linen builders return ``(module, variables)`` exactly as ``module.init`` gives them (boxed
``nn.LogicallyPartitioned`` leaves where the source annotates partitioning; pass ``unbox=True``
for plain arrays). ``param_shapes`` lists any built model's parameter paths and shapes. Builds
compile one init program at low XLA optimisation (:func:`fast_jit`): seconds instead of a minute
for ResNet-18 on a loaded machine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import nnx
from jax import lax

ModuleDef = Any
Dtype = Any


# XLA's slow optimisation passes cost far more than they save for a one-off init program (a
# ResNet-18 init compiles in ~9 s instead of ~80 s on a loaded 2-core machine). The random bits
# are integer programs, identical at any optimisation level; float transforms of them (normal,
# uniform scaling) may differ from the eager init by float rounding only.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def fast_jit(fn: Callable, *args: Any) -> Any:
    """``jax.jit(fn)(*args)``, compiled at low XLA optimisation (one-off init programs)."""
    return jax.jit(fn).lower(*args).compile(_FAST_COMPILE)(*args)


def _nnx_build(ctor: Callable[[], nnx.Module]) -> nnx.Module:
    graphdef, _ = nnx.split(nnx.eval_shape(ctor))
    return nnx.merge(graphdef, fast_jit(lambda: nnx.state(ctor())))


def _eqx_build(ctor: Callable[[], Any]) -> Any:
    import equinox as eqx

    _, static = eqx.partition(eqx.filter_eval_shape(ctor), eqx.is_array)
    arrays = fast_jit(lambda: eqx.filter(ctor(), eqx.is_array))
    return eqx.combine(arrays, static)


# ================================================================================================
# Flax ImageNet ResNet (linen).
# Source: github.com/google/flax examples/imagenet/models.py ("Flax implementation of ResNet
# V1.5"), at commit 18f8f311c275d57f46d95e41b15aa97b454754c0.
# Departure: ``ResNet.bn_axis_name`` (the source hard-codes ``axis_name='batch'``, which needs a
# named mapped axis in training mode, i.e. ``pmap``/``vmap(axis_name='batch')``). The attribute
# defaults to the source's ``'batch'``; the builders default to ``None`` so the model also runs
# unmapped. Everything else (names, init calls, zero-init last norm scale) is as in the source.
# ================================================================================================


class ResNetBlock(nn.Module):
    """ResNet block (examples/imagenet/models.py ``ResNetBlock``)."""

    filters: int
    conv: ModuleDef
    norm: ModuleDef
    act: Callable
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = self.conv(self.filters, (3, 3), self.strides)(x)
        y = self.norm()(y)
        y = self.act(y)
        y = self.conv(self.filters, (3, 3))(y)
        # The source's intentional zero-init of the block's last BatchNorm scale.
        y = self.norm(scale_init=nn.initializers.zeros_init())(y)

        if residual.shape != y.shape:
            residual = self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)

        return self.act(residual + y)


class BottleneckResNetBlock(nn.Module):
    """Bottleneck ResNet block (examples/imagenet/models.py ``BottleneckResNetBlock``)."""

    filters: int
    conv: ModuleDef
    norm: ModuleDef
    act: Callable
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = self.conv(self.filters, (1, 1))(x)
        y = self.norm()(y)
        y = self.act(y)
        y = self.conv(self.filters, (3, 3), self.strides)(y)
        y = self.norm()(y)
        y = self.act(y)
        y = self.conv(self.filters * 4, (1, 1))(y)
        y = self.norm(scale_init=nn.initializers.zeros_init())(y)

        if residual.shape != y.shape:
            residual = self.conv(self.filters * 4, (1, 1), self.strides, name="conv_proj")(residual)
            residual = self.norm(name="norm_proj")(residual)

        return self.act(residual + y)


class ResNet(nn.Module):
    """ResNet V1.5 (examples/imagenet/models.py ``ResNet``)."""

    stage_sizes: Sequence[int]
    block_cls: ModuleDef
    num_classes: int
    num_filters: int = 64
    dtype: Any = jnp.float32
    act: Callable = nn.relu
    conv: ModuleDef = nn.Conv
    bn_axis_name: str | None = "batch"  # departure, see the section header

    @nn.compact
    def __call__(self, x, train: bool = True):
        conv = partial(self.conv, use_bias=False, dtype=self.dtype)
        norm = partial(
            nn.BatchNorm,
            use_running_average=not train,
            momentum=0.9,
            epsilon=1e-5,
            dtype=self.dtype,
            axis_name=self.bn_axis_name,
        )

        x = conv(
            self.num_filters,
            (7, 7),
            (2, 2),
            padding=[(3, 3), (3, 3)],
            name="conv_init",
        )(x)
        x = norm(name="bn_init")(x)
        x = nn.relu(x)
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, block_size in enumerate(self.stage_sizes):
            for j in range(block_size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = self.block_cls(
                    self.num_filters * 2**i,
                    strides=strides,
                    conv=conv,
                    norm=norm,
                    act=self.act,
                )(x)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dense(self.num_classes, dtype=self.dtype)(x)
        x = jnp.asarray(x, self.dtype)
        return x


ResNet18 = partial(ResNet, stage_sizes=[2, 2, 2, 2], block_cls=ResNetBlock)
ResNet34 = partial(ResNet, stage_sizes=[3, 4, 6, 3], block_cls=ResNetBlock)
ResNet50 = partial(ResNet, stage_sizes=[3, 4, 6, 3], block_cls=BottleneckResNetBlock)


def flax_resnet(
    stage_sizes: Sequence[int] = (2, 2, 2, 2),
    *,
    bottleneck: bool = False,
    num_filters: int = 4,
    num_classes: int = 10,
    image_size: int = 16,
    batch: int = 2,
    seed: int = 0,
    bn_axis_name: str | None = None,
    train: bool = False,
) -> tuple[tuple[nn.Module, dict], jax.Array]:
    """Flax's ImageNet ResNet with a tiny width; returns ``((module, variables), images)``.

    ``variables`` has ``params`` and ``batch_stats``, as ``module.init`` gives them (the source's
    ``train.py`` initialises with ``module.init({'params': key}, ones)``; ``train`` picks the
    BatchNorm mode used at init). Images are NHWC normal draws.
    """
    block = BottleneckResNetBlock if bottleneck else ResNetBlock
    module = ResNet(
        stage_sizes=list(stage_sizes),
        block_cls=block,
        num_classes=num_classes,
        num_filters=num_filters,
        bn_axis_name=bn_axis_name,
    )
    x = jax.random.normal(jax.random.key(seed + 1), (batch, image_size, image_size, 3))
    # One compiled program (as the source's ``jax.jit(model.init)``), not one per eager op.
    variables = fast_jit(partial(module.init, train=train), {"params": jax.random.key(seed)}, x)
    return (module, variables), x


def flax_resnet18(**kwargs: Any) -> tuple[tuple[nn.Module, dict], jax.Array]:
    """ResNet-18 (``stage_sizes=[2, 2, 2, 2]``, ``ResNetBlock``), tiny: see ``flax_resnet``."""
    return flax_resnet((2, 2, 2, 2), **kwargs)


# ================================================================================================
# Flax lm1b decoder, NNX version.
# Source: github.com/google/flax examples/lm1b_nnx/models.py and configs/default.py (MeshRules),
# as of commit 881b8ed4aa171365db96659ea3edc57b7c360520^ (the example was later folded into
# examples/gemma). Departures: ``MeshRules`` is defined here (the source imports it from its
# configs module); ``AddPositionEmbs`` builds the sinusoid directly; decode-cache code is left out
# (jinit never decodes).
# ================================================================================================


@dataclasses.dataclass(unsafe_hash=True)
class MeshRules:
    """lm1b_nnx configs/default.py ``MeshRules``: logical axis -> mesh axis (or None)."""

    embed: str | None = None
    mlp: str | None = None
    kv: str | None = None
    vocab: str | None = None

    def __call__(self, *keys: str) -> tuple[str | None, ...]:
        return tuple(getattr(self, key) for key in keys)


#: The lm1b_nnx default configuration's rules (configs/default.py ``Config.axis_rules``).
LM1B_MESH_RULES = MeshRules(embed="fsdp", mlp="tensor", kv="tensor", vocab="tensor")
#: Its mesh axes (``Config.mesh_axes``).
LM1B_MESH_AXES = ("data", "fsdp", "tensor")


@dataclasses.dataclass(unsafe_hash=True)
class TransformerConfig:
    """Global hyperparameters (lm1b_nnx models.py ``TransformerConfig``)."""

    vocab_size: int
    output_vocab_size: int
    logits_via_embedding: bool = False
    dtype: Any = jnp.float32
    emb_dim: int = 512
    num_heads: int = 8
    num_layers: int = 6
    qkv_dim: int = 512
    mlp_dim: int = 2048
    max_len: int = 2048
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    kernel_init: Callable = nnx.initializers.xavier_uniform()
    bias_init: Callable = nnx.initializers.normal(stddev=1e-6)
    posemb_init: Callable | None = None
    axis_rules: MeshRules = dataclasses.field(default_factory=MeshRules)

    def replace(self, **kwargs):
        return dataclasses.replace(self, **kwargs)


def shift_right(x: jax.Array, axis: int = 1) -> jax.Array:
    """Shift the input to the right by padding and slicing on ``axis`` (as in the source)."""
    pad_widths: list[tuple[int, int]] = [(0, 0)] * len(x.shape)
    pad_widths[axis] = (1, 0)
    padded = jnp.pad(x, pad_widths, mode="constant", constant_values=x.dtype.type(0))
    return lax.dynamic_slice_in_dim(padded, 0, padded.shape[axis] - 1, axis)


def sinusoidal_init(max_len: int = 2048, min_scale: float = 1.0, max_scale: float = 10000.0):
    """1-D sinusoidal position table ``(1, max_len, d_feature)`` (as in the source)."""

    def init(key, shape, dtype=np.float32):
        del key, dtype
        d_feature = shape[-1]
        pe = np.zeros((max_len, d_feature), dtype=np.float32)
        position = np.arange(0, max_len)[:, np.newaxis]
        scale_factor = -np.log(max_scale / min_scale) / (d_feature // 2 - 1)
        div_term = min_scale * np.exp(np.arange(0, d_feature // 2) * scale_factor)
        pe[:, : d_feature // 2] = np.sin(position * div_term)
        pe[:, d_feature // 2 : 2 * (d_feature // 2)] = np.cos(position * div_term)
        return jnp.array(pe[np.newaxis, :, :])

    return init


class AddPositionEmbs(nnx.Module):
    """Adds (optionally learned) position embeddings (lm1b_nnx ``AddPositionEmbs``)."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.pos_emb_shape = (1, config.max_len, config.emb_dim)
        if config.posemb_init is not None:
            self.pos_embedding = nnx.Param(config.posemb_init(rngs(), self.pos_emb_shape))
        else:
            self.pos_embedding = None

    def __call__(self, inputs: jax.Array) -> jax.Array:
        length = inputs.shape[1]
        if self.pos_embedding is None:
            pos_embedding = sinusoidal_init(max_len=self.config.max_len)(None, self.pos_emb_shape)
        else:
            pos_embedding = self.pos_embedding[...]
        return inputs + pos_embedding[:, :length, :]


class MlpBlock(nnx.Module):
    """Transformer MLP block (lm1b_nnx ``MlpBlock``: ``linear1`` -> relu -> ``linear2``)."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.linear1 = nnx.Linear(
            config.emb_dim,
            config.mlp_dim,
            dtype=config.dtype,
            kernel_init=nnx.with_partitioning(
                config.kernel_init, config.axis_rules("embed", "mlp")
            ),
            bias_init=nnx.with_partitioning(config.bias_init, config.axis_rules("mlp")),
            rngs=rngs,
        )
        self.linear2 = nnx.Linear(
            config.mlp_dim,
            config.emb_dim,
            dtype=config.dtype,
            kernel_init=nnx.with_partitioning(
                config.kernel_init, config.axis_rules("mlp", "embed")
            ),
            bias_init=nnx.with_partitioning(config.bias_init, config.axis_rules("embed")),
            rngs=rngs,
        )
        self.dropout = nnx.Dropout(rate=config.dropout_rate)

    def __call__(self, inputs: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        x = self.linear1(inputs)
        x = nnx.relu(x)
        x = self.dropout(x, rngs=rngs)
        output = self.linear2(x)
        return self.dropout(output, rngs=rngs)


def _ln(config: TransformerConfig, rngs: nnx.Rngs) -> nnx.LayerNorm:
    return nnx.LayerNorm(
        num_features=config.emb_dim,
        dtype=config.dtype,
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), config.axis_rules("embed")),
        scale_init=nnx.with_partitioning(nnx.initializers.ones_init(), config.axis_rules("embed")),
        rngs=rngs,
    )


class EncoderDecoder1DBlock(nnx.Module):
    """Decoder layer (lm1b_nnx ``EncoderDecoder1DBlock``: ln1, attention, ln2, mlp)."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.ln1 = _ln(config, rngs)
        self.ln2 = _ln(config, rngs)
        self.attention = nnx.MultiHeadAttention(
            num_heads=config.num_heads,
            in_features=config.emb_dim,
            qkv_features=config.qkv_dim,
            dtype=config.dtype,
            kernel_init=nnx.with_partitioning(config.kernel_init, config.axis_rules("embed", "kv")),
            bias_init=nnx.with_partitioning(config.bias_init, config.axis_rules("embed")),
            use_bias=False,
            broadcast_dropout=False,
            dropout_rate=config.attention_dropout_rate,
            rngs=rngs,
            keep_rngs=False,
            decode=False,
        )
        self.mlp = MlpBlock(config=config, rngs=rngs)
        self.dropout = nnx.Dropout(rate=config.dropout_rate)

    def __call__(
        self,
        inputs: jax.Array,
        *,
        decoder_mask: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        x = self.ln1(inputs)
        x = self.attention(x, mask=decoder_mask, rngs=rngs)
        x = self.dropout(x, rngs=rngs)
        x = x + inputs
        z = self.ln2(x)
        z = self.mlp(z, rngs=rngs)
        return x + z


class Decoder(nnx.Module):
    """Decoder stack (lm1b_nnx ``Decoder``: output_embed, encoderdecoderblock_{i}, logitdense)."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.output_embed = nnx.Embed(
            num_embeddings=config.output_vocab_size,
            features=config.emb_dim,
            embedding_init=nnx.with_partitioning(
                nnx.initializers.normal(stddev=1.0), config.axis_rules("vocab", "embed")
            ),
            rngs=rngs,
        )
        self.posembed_output = AddPositionEmbs(config=config, rngs=rngs)
        self.dropout = nnx.Dropout(rate=config.dropout_rate)
        for idx in range(config.num_layers):
            setattr(self, f"encoderdecoderblock_{idx}", EncoderDecoder1DBlock(config, rngs=rngs))
        self.encoderdecoder_norm = _ln(config, rngs)
        if not config.logits_via_embedding:
            self.logitdense = nnx.Linear(
                in_features=config.emb_dim,
                out_features=config.output_vocab_size,
                dtype=config.dtype,
                kernel_init=nnx.with_partitioning(
                    config.kernel_init, config.axis_rules("embed", "vocab")
                ),
                bias_init=nnx.with_partitioning(config.bias_init, config.axis_rules("vocab")),
                rngs=rngs,
            )
        else:
            self.logitdense = None

    def __call__(self, inputs, *, decoder_mask=None, rngs: nnx.Rngs | None = None):
        config = self.config
        y = inputs.astype("int32")
        y = shift_right(y)
        y = self.output_embed(y)
        y = self.posembed_output(y)
        y = self.dropout(y, rngs=rngs)
        y = y.astype(config.dtype)
        for idx in range(config.num_layers):
            layer = getattr(self, f"encoderdecoderblock_{idx}")
            y = layer(y, decoder_mask=decoder_mask, rngs=rngs)
        y = self.encoderdecoder_norm(y)
        if self.logitdense is not None:
            return self.logitdense(y)
        logits = self.output_embed.attend(y.astype(jnp.float32))
        return logits / jnp.sqrt(y.shape[-1])


class TransformerLM(nnx.Module):
    """Decoder-only language model (lm1b_nnx ``TransformerLM``; parameters under ``decoder``)."""

    def __init__(self, config: TransformerConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.decoder = Decoder(config=config, rngs=rngs)

    def __call__(self, inputs, *, rngs: nnx.Rngs | None = None):
        config = self.config
        decoder_mask = nnx.combine_masks(
            nnx.make_attention_mask(inputs > 0, inputs > 0, dtype=config.dtype),
            nnx.make_causal_mask(inputs, dtype=config.dtype),
        )
        logits = self.decoder(inputs, decoder_mask=decoder_mask, rngs=rngs)
        return logits.astype(config.dtype)


def lm1b_config(
    *,
    num_layers: int = 4,
    emb_dim: int = 32,
    num_heads: int = 4,
    qkv_dim: int = 32,
    mlp_dim: int = 64,
    vocab_size: int = 64,
    max_len: int = 16,
    dropout_rate: float = 0.0,
    axis_rules: MeshRules | None = None,
) -> TransformerConfig:
    """A tiny lm1b ``TransformerConfig`` (source defaults for init calls; dropout off)."""
    return TransformerConfig(
        vocab_size=vocab_size,
        output_vocab_size=vocab_size,
        emb_dim=emb_dim,
        num_heads=num_heads,
        num_layers=num_layers,
        qkv_dim=qkv_dim,
        mlp_dim=mlp_dim,
        max_len=max_len,
        dropout_rate=dropout_rate,
        attention_dropout_rate=dropout_rate,
        axis_rules=MeshRules() if axis_rules is None else axis_rules,
    )


def _tokens(seed: int, batch: int, length: int, vocab: int) -> jax.Array:
    # Tokens in [1, vocab): 0 is lm1b's padding id, which the attention mask drops.
    return jax.random.randint(jax.random.key(seed), (batch, length), 1, vocab)


def lm1b_mesh(shape: tuple[int, int, int] = (1, 1, 1)) -> jax.sharding.Mesh:
    """A mesh like lm1b_nnx's ``Mesh(devices, ('data', 'fsdp', 'tensor'))`` (Auto axes) over the
    first ``prod(shape)`` devices."""
    n = int(np.prod(shape))
    return jax.make_mesh(
        shape,
        LM1B_MESH_AXES,
        axis_types=(jax.sharding.AxisType.Auto,) * 3,
        devices=jax.devices()[:n],
    )


def flax_lm1b_nnx(
    *,
    num_layers: int = 4,
    emb_dim: int = 32,
    num_heads: int = 4,
    qkv_dim: int = 32,
    mlp_dim: int = 64,
    vocab_size: int = 64,
    max_len: int = 16,
    batch: int = 2,
    seed: int = 0,
    axis_rules: MeshRules | None = LM1B_MESH_RULES,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[TransformerLM, jax.Array]:
    """Flax lm1b_nnx ``TransformerLM`` (tiny) and int32 tokens; returns ``(model, tokens)``.

    As in the source's ``utils.setup_initial_state``, the model is built under a mesh (here
    ``jax.set_mesh(mesh)``; flax 0.12's eager sharding needs one for ``nnx.with_partitioning``
    even when every name is ``None``), so every parameter is a ``NamedSharding`` array over
    ``mesh`` (default ``lm1b_mesh()``: one device). ``axis_rules`` default to the source's
    training rules ``LM1B_MESH_RULES``; ``None`` gives ``MeshRules()`` (annotated, unsharded).
    Tokens are replicated over the mesh. Dropout is off (``rate=0``) so calls without ``rngs``
    run, as in evaluation.
    """
    config = lm1b_config(
        num_layers=num_layers,
        emb_dim=emb_dim,
        num_heads=num_heads,
        qkv_dim=qkv_dim,
        mlp_dim=mlp_dim,
        vocab_size=vocab_size,
        max_len=max_len,
        axis_rules=axis_rules,
    )
    mesh = lm1b_mesh() if mesh is None else mesh
    with jax.set_mesh(mesh):
        # Built inside one compiled program, not op by op.
        model = _nnx_build(lambda: TransformerLM(config, rngs=nnx.Rngs(seed)))
    tokens = jax.device_put(
        _tokens(seed + 1, batch, max_len, vocab_size),
        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
    )
    return model, tokens


# ================================================================================================
# Flax lm1b decoder, linen version (logical partitioning) and wmt encoder (no annotations).
# Sources: github.com/google/flax examples/lm1b/models.py and examples/wmt/models.py, at commit
# 18f8f311c275d57f46d95e41b15aa97b454754c0. Departures: decode-cache and packed-segment code left
# out; ``LinenConfig`` is the sources' ``TransformerConfig`` (a ``flax.struct.dataclass``).
# ================================================================================================


@dataclasses.dataclass(frozen=True)
class LinenConfig:
    """lm1b/wmt models.py ``TransformerConfig`` (``deterministic=True`` here: evaluation)."""

    vocab_size: int
    output_vocab_size: int
    logits_via_embedding: bool = False
    dtype: Any = jnp.float32
    emb_dim: int = 512
    num_heads: int = 8
    num_layers: int = 6
    qkv_dim: int = 512
    mlp_dim: int = 2048
    max_len: int = 2048
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    deterministic: bool = True
    kernel_init: Callable = nn.initializers.xavier_uniform()
    bias_init: Callable = nn.initializers.normal(stddev=1e-6)
    posemb_init: Callable | None = None


def _lp(init: Callable, names: tuple[str, ...], annotate: bool) -> Callable:
    return nn.with_logical_partitioning(init, names) if annotate else init


class LinenMlpBlock(nn.Module):
    """lm1b/wmt ``MlpBlock`` (named ``MlpBlock_0`` in its parent): ``Dense_0`` -> relu ->
    ``Dense_1``. ``annotate`` selects lm1b's logical partitioning (wmt has none)."""

    config: LinenConfig
    out_dim: int | None = None
    annotate: bool = True

    @nn.compact
    def __call__(self, inputs):
        config = self.config
        actual_out_dim = inputs.shape[-1] if self.out_dim is None else self.out_dim
        x = nn.Dense(
            config.mlp_dim,
            dtype=config.dtype,
            kernel_init=_lp(config.kernel_init, ("embed", "mlp"), self.annotate),
            bias_init=_lp(config.bias_init, ("mlp",), self.annotate),
        )(inputs)
        x = nn.relu(x)
        x = nn.Dropout(rate=config.dropout_rate)(x, deterministic=config.deterministic)
        output = nn.Dense(
            actual_out_dim,
            dtype=config.dtype,
            kernel_init=_lp(config.kernel_init, ("mlp", "embed"), self.annotate),
            bias_init=_lp(config.bias_init, ("embed",), self.annotate),
        )(x)
        return nn.Dropout(rate=config.dropout_rate)(output, deterministic=config.deterministic)


def _linen_ln(config: LinenConfig, annotate: bool, name: str | None = None) -> nn.LayerNorm:
    return nn.LayerNorm(
        dtype=config.dtype,
        name=name,
        bias_init=_lp(nn.initializers.zeros, ("embed",), annotate),
        scale_init=_lp(nn.initializers.ones, ("embed",), annotate),
    )


def _linen_attention(config: LinenConfig, annotate: bool) -> nn.MultiHeadDotProductAttention:
    return nn.MultiHeadDotProductAttention(
        num_heads=config.num_heads,
        dtype=config.dtype,
        qkv_features=config.qkv_dim,
        kernel_init=_lp(config.kernel_init, ("embed", "kv"), annotate),
        bias_init=_lp(config.bias_init, ("embed",), annotate),
        use_bias=False,
        broadcast_dropout=False,
        dropout_rate=config.attention_dropout_rate,
        deterministic=config.deterministic,
    )


class LinenDecoderBlock(nn.Module):
    """lm1b ``EncoderDecoder1DBlock``: LayerNorm_0, MultiHeadDotProductAttention_0 (query, key,
    value, out), LayerNorm_1, MlpBlock_0 (Dense_0, Dense_1)."""

    config: LinenConfig

    @nn.compact
    def __call__(self, inputs, decoder_mask=None):
        x = _linen_ln(self.config, True)(inputs)
        x = _linen_attention(self.config, True)(x, mask=decoder_mask)
        x = nn.Dropout(rate=self.config.dropout_rate)(x, deterministic=self.config.deterministic)
        x = x + inputs
        z = _linen_ln(self.config, True)(x)
        z = LinenMlpBlock(config=self.config, annotate=True, name="MlpBlock_0")(z)
        return x + z


class LinenDecoder(nn.Module):
    """lm1b ``Decoder``: Embed_0, posembed_output, encoderdecoderblock_{i}, encoderdecoder_norm,
    logitdense."""

    config: LinenConfig

    @nn.compact
    def __call__(self, inputs, decoder_mask=None):
        config = self.config
        output_embed = nn.Embed(
            num_embeddings=config.output_vocab_size,
            features=config.emb_dim,
            embedding_init=nn.with_logical_partitioning(
                nn.initializers.normal(stddev=1.0), ("vocab", "embed")
            ),
        )
        y = shift_right(inputs.astype("int32"))
        y = output_embed(y)
        y = (
            y
            + sinusoidal_init(max_len=config.max_len)(None, (1, config.max_len, y.shape[-1]))[
                :, : y.shape[1], :
            ]
        )
        y = y.astype(config.dtype)
        for lyr in range(config.num_layers):
            y = LinenDecoderBlock(config=config, name=f"encoderdecoderblock_{lyr}")(
                y, decoder_mask=decoder_mask
            )
        y = _linen_ln(config, True, name="encoderdecoder_norm")(y)
        if config.logits_via_embedding:
            return output_embed.attend(y.astype(jnp.float32)) / jnp.sqrt(y.shape[-1])
        return nn.Dense(
            config.output_vocab_size,
            dtype=config.dtype,
            kernel_init=nn.with_logical_partitioning(config.kernel_init, ("embed", "vocab")),
            bias_init=nn.with_logical_partitioning(config.bias_init, ("vocab",)),
            name="logitdense",
        )(y)


class LinenTransformerLM(nn.Module):
    """lm1b ``TransformerLM`` (parameters under ``decoder``)."""

    config: LinenConfig

    @nn.compact
    def __call__(self, inputs):
        config = self.config
        decoder_mask = nn.combine_masks(
            nn.make_attention_mask(inputs > 0, inputs > 0, dtype=config.dtype),
            nn.make_causal_mask(inputs, dtype=config.dtype),
        )
        logits = LinenDecoder(config=config, name="decoder")(inputs, decoder_mask=decoder_mask)
        return logits.astype(config.dtype)


class Encoder1DBlock(nn.Module):
    """wmt ``Encoder1DBlock``: LayerNorm_0, MultiHeadDotProductAttention_0, LayerNorm_1,
    MlpBlock_0 (Dense_0, Dense_1); no partitioning annotations."""

    config: LinenConfig

    @nn.compact
    def __call__(self, inputs, encoder_mask=None):
        x = nn.LayerNorm(dtype=self.config.dtype)(inputs)
        x = _linen_attention(self.config, False)(x, mask=encoder_mask)
        x = nn.Dropout(rate=self.config.dropout_rate)(x, deterministic=self.config.deterministic)
        x = x + inputs
        y = nn.LayerNorm(dtype=self.config.dtype)(x)
        y = LinenMlpBlock(config=self.config, annotate=False, name="MlpBlock_0")(y)
        return x + y


class WmtEncoder(nn.Module):
    """wmt ``Encoder``: Embed_0, encoderblock_{i}, encoder_norm (sinusoidal positions)."""

    config: LinenConfig

    @nn.compact
    def __call__(self, inputs, encoder_mask=None):
        config = self.config
        input_embed = nn.Embed(
            num_embeddings=config.vocab_size,
            features=config.emb_dim,
            embedding_init=nn.initializers.normal(stddev=1.0),
        )
        x = input_embed(inputs.astype("int32"))
        x = (
            x
            + sinusoidal_init(max_len=config.max_len)(None, (1, config.max_len, x.shape[-1]))[
                :, : x.shape[1], :
            ]
        )
        x = x.astype(config.dtype)
        for lyr in range(config.num_layers):
            x = Encoder1DBlock(config=config, name=f"encoderblock_{lyr}")(x, encoder_mask)
        return nn.LayerNorm(dtype=config.dtype, name="encoder_norm")(x)


def _linen_config(**kw: Any) -> LinenConfig:
    vocab = kw.pop("vocab_size")
    rate = kw.pop("dropout_rate")
    return LinenConfig(
        vocab_size=vocab,
        output_vocab_size=vocab,
        dropout_rate=rate,
        attention_dropout_rate=rate,
        **kw,
    )


def flax_lm1b_linen(
    *,
    num_layers: int = 4,
    emb_dim: int = 32,
    num_heads: int = 4,
    qkv_dim: int = 32,
    mlp_dim: int = 64,
    vocab_size: int = 64,
    max_len: int = 16,
    batch: int = 2,
    seed: int = 0,
    unbox: bool = False,
) -> tuple[tuple[nn.Module, dict], jax.Array]:
    """Flax lm1b (linen) ``TransformerLM``; returns ``((module, variables), tokens)``.

    Parameters are ``nn.LogicallyPartitioned`` boxes as ``init`` returns them, unless ``unbox``.
    """
    config = _linen_config(
        num_layers=num_layers,
        emb_dim=emb_dim,
        num_heads=num_heads,
        qkv_dim=qkv_dim,
        mlp_dim=mlp_dim,
        vocab_size=vocab_size,
        max_len=max_len,
        dropout_rate=0.0,
    )
    module = LinenTransformerLM(config)
    tokens = _tokens(seed + 1, batch, max_len, vocab_size)
    variables = fast_jit(module.init, jax.random.key(seed), tokens)
    if unbox:
        variables = nn.unbox(variables)
    return (module, variables), tokens


def flax_wmt_encoder(
    *,
    num_layers: int = 2,
    emb_dim: int = 32,
    num_heads: int = 4,
    qkv_dim: int = 32,
    mlp_dim: int = 64,
    vocab_size: int = 64,
    max_len: int = 16,
    batch: int = 2,
    seed: int = 0,
) -> tuple[tuple[nn.Module, dict], jax.Array]:
    """Flax wmt ``Encoder`` (linen, no annotations); returns ``((module, variables), tokens)``."""
    config = _linen_config(
        num_layers=num_layers,
        emb_dim=emb_dim,
        num_heads=num_heads,
        qkv_dim=qkv_dim,
        mlp_dim=mlp_dim,
        vocab_size=vocab_size,
        max_len=max_len,
        dropout_rate=0.0,
    )
    module = WmtEncoder(config)
    tokens = _tokens(seed + 1, batch, max_len, vocab_size)
    variables = fast_jit(module.init, jax.random.key(seed), tokens)
    return (module, variables), tokens


# ================================================================================================
# Vision Transformer (linen).
# Source: github.com/google-research/vision_transformer vit_jax/models_vit.py, at commit
# c6de1e5378c9831a8477feb30994971bdc409e46. Departures: no hybrid ResNet root (``resnet=None``
# only); ``patches`` is a plain dict-like with ``size`` (the source uses ml_collections).
# ================================================================================================


class IdentityLayer(nn.Module):
    """Identity layer, convenient for giving a name to an array (as in the source)."""

    @nn.compact
    def __call__(self, x):
        return x


class VitAddPositionEmbs(nn.Module):
    """Learned position embeddings ``pos_embedding`` (models_vit.py ``AddPositionEmbs``)."""

    posemb_init: Callable
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, inputs):
        pos_emb_shape = (1, inputs.shape[1], inputs.shape[2])
        pe = self.param("pos_embedding", self.posemb_init, pos_emb_shape, self.param_dtype)
        return inputs + pe


class VitMlpBlock(nn.Module):
    """models_vit.py ``MlpBlock``: Dense_0 -> gelu -> Dense_1 (xavier_uniform, normal(1e-6))."""

    mlp_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    out_dim: int | None = None
    dropout_rate: float = 0.1
    kernel_init: Callable = nn.initializers.xavier_uniform()
    bias_init: Callable = nn.initializers.normal(stddev=1e-6)

    @nn.compact
    def __call__(self, inputs, *, deterministic):
        actual_out_dim = inputs.shape[-1] if self.out_dim is None else self.out_dim
        x = nn.Dense(
            features=self.mlp_dim,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
        )(inputs)
        x = nn.gelu(x)
        x = nn.Dropout(rate=self.dropout_rate)(x, deterministic=deterministic)
        output = nn.Dense(
            features=actual_out_dim,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
        )(x)
        return nn.Dropout(rate=self.dropout_rate)(output, deterministic=deterministic)


class VitEncoder1DBlock(nn.Module):
    """models_vit.py ``Encoder1DBlock``: LayerNorm_0, MultiHeadDotProductAttention_0,
    LayerNorm_1, MlpBlock_0."""

    mlp_dim: int
    num_heads: int
    dtype: Dtype = jnp.float32
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1

    @nn.compact
    def __call__(self, inputs, *, deterministic):
        x = nn.LayerNorm(dtype=self.dtype)(inputs)
        x = nn.MultiHeadDotProductAttention(
            dtype=self.dtype,
            kernel_init=nn.initializers.xavier_uniform(),
            broadcast_dropout=False,
            deterministic=deterministic,
            dropout_rate=self.attention_dropout_rate,
            num_heads=self.num_heads,
        )(x, x)
        x = nn.Dropout(rate=self.dropout_rate)(x, deterministic=deterministic)
        x = x + inputs
        y = nn.LayerNorm(dtype=self.dtype)(x)
        y = VitMlpBlock(
            mlp_dim=self.mlp_dim,
            dtype=self.dtype,
            dropout_rate=self.dropout_rate,
            name="MlpBlock_0",
        )(y, deterministic=deterministic)
        return x + y


class VitEncoder(nn.Module):
    """models_vit.py ``Encoder``: posembed_input, encoderblock_{i}, encoder_norm."""

    num_layers: int
    mlp_dim: int
    num_heads: int
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    add_position_embedding: bool = True

    @nn.compact
    def __call__(self, x, *, train):
        if self.add_position_embedding:
            x = VitAddPositionEmbs(
                posemb_init=nn.initializers.normal(stddev=0.02),  # from BERT.
                name="posembed_input",
            )(x)
            x = nn.Dropout(rate=self.dropout_rate)(x, deterministic=not train)
        for lyr in range(self.num_layers):
            x = VitEncoder1DBlock(
                mlp_dim=self.mlp_dim,
                dropout_rate=self.dropout_rate,
                attention_dropout_rate=self.attention_dropout_rate,
                name=f"encoderblock_{lyr}",
                num_heads=self.num_heads,
            )(x, deterministic=not train)
        return nn.LayerNorm(name="encoder_norm")(x)


@dataclasses.dataclass(frozen=True)
class Patches:
    """The config's ``patches`` (``size``: the patch's (height, width))."""

    size: tuple[int, int]


class VisionTransformer(nn.Module):
    """models_vit.py ``VisionTransformer`` (``resnet=None``): embedding (Conv patches), cls,
    Transformer, pre_logits, head (zero kernel, constant bias)."""

    num_classes: int
    patches: Any
    transformer: Any
    hidden_size: int
    representation_size: int | None = None
    classifier: str = "token"
    head_bias_init: float = 0.0

    @nn.compact
    def __call__(self, inputs, *, train):
        x = nn.Conv(
            features=self.hidden_size,
            kernel_size=self.patches.size,
            strides=self.patches.size,
            padding="VALID",
            name="embedding",
        )(inputs)
        n, h, w, c = x.shape
        x = jnp.reshape(x, [n, h * w, c])
        if self.classifier in ["token", "token_unpooled"]:
            cls = self.param("cls", nn.initializers.zeros, (1, 1, c))
            cls = jnp.tile(cls, [n, 1, 1])
            x = jnp.concatenate([cls, x], axis=1)
        x = VitEncoder(name="Transformer", **self.transformer)(x, train=train)
        if self.classifier == "token":
            x = x[:, 0]
        elif self.classifier == "gap":
            x = jnp.mean(x, axis=list(range(1, x.ndim - 1)))
        elif self.classifier not in ["unpooled", "token_unpooled"]:
            raise ValueError(f"Invalid classifier={self.classifier}")
        if self.representation_size is not None:
            x = nn.Dense(features=self.representation_size, name="pre_logits")(x)
            x = nn.tanh(x)
        else:
            x = IdentityLayer(name="pre_logits")(x)
        if self.num_classes:
            x = nn.Dense(
                features=self.num_classes,
                name="head",
                kernel_init=nn.initializers.zeros,
                bias_init=nn.initializers.constant(self.head_bias_init),
            )(x)
        return x


def vit(
    *,
    num_layers: int = 2,
    hidden_size: int = 32,
    mlp_dim: int = 64,
    num_heads: int = 4,
    patch: int = 4,
    image_size: int = 16,
    num_classes: int = 10,
    representation_size: int | None = None,
    batch: int = 2,
    seed: int = 0,
) -> tuple[tuple[nn.Module, dict], jax.Array]:
    """A tiny ViT (ViT-B/16's structure); returns ``((module, variables), images)``.

    Call as ``module.apply(variables, images, train=False)``.
    """
    module = VisionTransformer(
        num_classes=num_classes,
        patches=Patches(size=(patch, patch)),
        transformer=dict(
            num_layers=num_layers,
            mlp_dim=mlp_dim,
            num_heads=num_heads,
            dropout_rate=0.0,
            attention_dropout_rate=0.0,
        ),
        hidden_size=hidden_size,
        representation_size=representation_size,
    )
    x = jax.random.normal(jax.random.key(seed + 1), (batch, image_size, image_size, 3))
    variables = fast_jit(partial(module.init, train=False), jax.random.key(seed), x)
    return (module, variables), x


# ================================================================================================
# Equinox.
# Sources: equinox.nn.MLP (the library's own class), and the equinox docs' MNIST tutorial CNN:
# github.com/patrick-kidger/equinox docs/examples/mnist.ipynb ``class CNN`` at commit
# 9336d820b2ef66b360fc6cb3611b3da5cefbb14d, copied structure-for-structure.
# ================================================================================================


def eqx_mlp(
    in_size: int = 784,
    out_size: int = 10,
    width_size: int = 128,
    depth: int = 3,
    *,
    batch: int = 4,
    seed: int = 0,
) -> tuple[Any, jax.Array]:
    """``eqx.nn.MLP(in_size, out_size, width_size, depth, key=...)``; returns ``(model, x)``.

    ``x`` is a batch ``(batch, in_size)``: call ``jax.vmap(model)(x)`` (equinox layers take
    single examples). Weights are stored ``(out, in)``, as in torch.
    """
    import equinox as eqx

    key = jax.random.key(seed)
    model = _eqx_build(lambda: eqx.nn.MLP(in_size, out_size, width_size, depth, key=key))
    x = jax.random.normal(jax.random.key(seed + 1), (batch, in_size))
    return model, x


def _eqx_cnn_class():
    import equinox as eqx

    class CNN(eqx.Module):
        """The equinox MNIST tutorial's CNN (docs/examples/mnist.ipynb)."""

        layers: list

        def __init__(self, key):
            key1, key2, key3, key4 = jax.random.split(key, 4)
            # Standard CNN setup: convolutional layer, followed by flattening,
            # with a small MLP on top.
            self.layers = [
                eqx.nn.Conv2d(1, 3, kernel_size=4, key=key1),
                eqx.nn.MaxPool2d(kernel_size=2),
                jax.nn.relu,
                jnp.ravel,
                eqx.nn.Linear(1728, 512, key=key2),
                jax.nn.sigmoid,
                eqx.nn.Linear(512, 64, key=key3),
                jax.nn.relu,
                eqx.nn.Linear(64, 10, key=key4),
                jax.nn.log_softmax,
            ]

        def __call__(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    return CNN


def eqx_mnist_cnn(*, batch: int = 4, seed: int = 0) -> tuple[Any, jax.Array]:
    """The equinox tutorial ``CNN(key)``; returns ``(model, images)``, images ``(batch, 1, 28,
    28)`` (call ``jax.vmap(model)(images)``). Its layers: ``layers[0]`` Conv2d(1, 3, 4) with
    weight ``(3, 1, 4, 4)``, ``layers[4]`` Linear(1728, 512), ``layers[6]`` Linear(512, 64),
    ``layers[8]`` Linear(64, 10)."""
    cnn = _eqx_cnn_class()
    model = _eqx_build(lambda: cnn(jax.random.key(seed)))
    x = jax.random.normal(jax.random.key(seed + 1), (batch, 1, 28, 28))
    return model, x


def param_shapes(params: Any) -> dict[str, tuple[int, ...]]:
    """``{'/'-joined path: shape}`` of every array leaf of ``params`` (boxes unwrapped; nnx
    modules via ``nnx.state``; equinox modules via ``equinox.filter``)."""
    if isinstance(params, nnx.Module):
        params = nnx.state(params, nnx.Param)
    elif not isinstance(params, (dict, list, tuple)) and hasattr(params, "__dataclass_fields__"):
        import equinox as eqx

        params = eqx.filter(params, eqx.is_array)
    params = nn.unbox(params) if isinstance(params, dict) else params
    out: dict[str, tuple[int, ...]] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if hasattr(leaf, "shape"):
            name = "/".join(_key(k) for k in path)
            out[name.removesuffix("/value")] = tuple(leaf.shape)  # nnx.Variable's inner leaf
    return out


def _key(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)
