"""Where a transformer's parameters live: :class:`TransformerNames` (Flax, fairseq and lm1b/ViT
naming presets) and the helpers that turn its patterns into defining roles and fallback rules."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from jinit.initializers._basic import ones, zeros
from jinit.recipes._recipe import RECIPES_PREFIX, Patterns, Rules, check_patterns, defining_role
from jinit.trees._rules import Rule

# ---------------------------------------------------------------------------------------------
# Names of a transformer's parameters
# ---------------------------------------------------------------------------------------------


_BLOCKS = (
    "block_{i}",
    "blocks/{i}",
    "layers/{i}",
    "Block_{i}",
    "encoderblock_{i}",
    "encoderdecoderblock_{i}",
)


@dataclasses.dataclass(frozen=True)
class TransformerNames:
    """Glob patterns naming the parameters of a transformer, for the transformer recipes.

    Each role is a glob or a tuple of globs matched by :func:`jinit.reinit` against the whole
    '/'-joined path (``*`` spans '/'; a leading ``*/`` also matches at the top level). The
    defaults recognise Flax's layers and the naming of Flax's own example models:

    ==========  =================================================================================
    role        default patterns (and whose naming they are)
    ==========  =================================================================================
    attention   ``*/query/kernel``, ``*/key/kernel``, ``*/value/kernel``, ``*/out/kernel``: linen
                ``MultiHeadDotProductAttention``, nnx ``MultiHeadAttention``
    mlp_in      ``*fc1/kernel`` (fairseq, torchscale), ``*linear1/kernel`` (Flax lm1b nnx
                ``MlpBlock``), ``*MlpBlock_0/Dense_0/kernel`` (Flax lm1b/wmt linen, ViT)
    mlp_out     ``*fc2/kernel``, ``*linear2/kernel``, ``*MlpBlock_0/Dense_1/kernel``
    embed       ``*embedding`` (``nn.Embed``/``nnx.Embed`` tables)
    head        ``*head/kernel`` (ViT ``head``, ``lm_head``), ``*logitdense/kernel`` (lm1b)
    block       ``block_{i}``, ``blocks/{i}``, ``layers/{i}`` (nnx lists), ``Block_{i}`` (linen
                auto-names), ``encoderblock_{i}`` (wmt, ViT), ``encoderdecoderblock_{i}`` (lm1b)
    ==========  =================================================================================

    A recipe raises (in :func:`jinit.reinit`) when one of the roles that define it matches no
    parameter; pass your names here then.

    Attributes:
      block: the path component(s) of the i-th block, with ``{i}`` for the layer index (a str
        or a tuple of str; the first that occurs in a path gives its index). Only the recipes
        whose init depends on the layer index use it.
      query: query projection kernels.
      key: key projection kernels.
      value: value projection kernels.
      attn_out: attention output projection kernels (they write into the residual stream).
      mlp_in: feed-forward input kernels (for a gated MLP, the gate projection).
      mlp_out: feed-forward output kernels (they write into the residual stream).
      mlp_up: the second input projection of a gated MLP (OLMo-core's ``w3``); ``()`` if none.
      embed: embedding tables.
      head: the output head (classifier / LM head) kernel; ``()`` for a model without one (tied
        embeddings, an encoder).
      encoder: the path component of the encoder of an encoder–decoder model.
      decoder: the path component of its decoder.
      index_base: the index of the first block in ``block`` names: 0 (default; Flax's
        ``Block_0``, ``layers/0``, lm1b's ``encoderdecoderblock_0``) or 1 (``h1``, ``layer_1``
        ... as in some torch ports). Recipes always use the 0-based layer index i.
      kernel: every other weight matrix, drawn by the recipe's fallback rule (``"*kernel"``,
        Flax; ``"*weight"`` for equinox, with ``norm`` naming the norm gains first).
      norm: the norm gains, set to 1 by the fallback rules (``"*scale"``, Flax's
        ``LayerNorm``/``RMSNorm``; e.g. ``"*norm*/weight"`` for equinox's ``LayerNorm``).

    **torch/equinox layout.** The recipes' fans come from each leaf's layer whenever
    :func:`jinit.reinit` knows it (an nnx or equinox module, or ``layouts=``; see
    :meth:`FanScaled.with_layout`), so an equinox transformer (``(out, in)`` weights) is drawn
    right once its names are given, e.g. ``TransformerNames(query="*query_proj/weight",
    key="*key_proj/weight", value="*value_proj/weight", attn_out="*output_proj/weight",
    mlp_in="*linear1/weight", mlp_out="*linear2/weight", embed="*embed*/weight",
    head="*head/weight", norm="*norm*/weight", kernel="*weight")``. A bare dict of torch-layout
    weights says nothing about its layout: pass ``layouts={"*weight": "torch"}`` to
    :func:`jinit.reinit`.

    Examples:
      >>> import jinit
      >>> names = jinit.recipes.TransformerNames(mlp_in="*w1/kernel", mlp_out="*w2/kernel")
      >>> jinit.recipes.gpt2(2, names=names)[1][0]
      '*w2/kernel'
    """

    block: str | tuple[str, ...] = _BLOCKS
    query: Patterns = "*/query/kernel"
    key: Patterns = "*/key/kernel"
    value: Patterns = "*/value/kernel"
    attn_out: Patterns = "*/out/kernel"
    mlp_in: Patterns = ("*fc1/kernel", "*linear1/kernel", "*MlpBlock_0/Dense_0/kernel")
    mlp_out: Patterns = ("*fc2/kernel", "*linear2/kernel", "*MlpBlock_0/Dense_1/kernel")
    mlp_up: Patterns = ()
    embed: Patterns = "*embedding"
    head: Patterns = ("*head/kernel", "*logitdense/kernel")
    encoder: str = "encoder"
    decoder: str = "decoder"
    index_base: int = 0
    kernel: Patterns = "*kernel"
    norm: Patterns = "*scale"

    def __post_init__(self):
        api = RECIPES_PREFIX + "TransformerNames"
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("encoder", "decoder"):
                if not isinstance(v, str) or not v:
                    raise TypeError(f"`{api}` needs `{f.name}` to be a non-empty str; got {v!r}.")
            elif f.name == "index_base":
                object.__setattr__(self, f.name, check_index_base(api, v))
            elif f.name == "block":
                blocks = check_patterns(api, "block", v)
                bad = [b for b in blocks if "{i}" not in b]
                if bad:
                    raise ValueError(
                        f"`{api}` needs `block` to contain the placeholder '{{i}}' for the layer "
                        f"index; got {bad[0]!r}. Pass e.g. `block='block_{{i}}'` or "
                        f"`block='blocks/{{i}}'`."
                    )
                object.__setattr__(self, f.name, blocks[0] if len(blocks) == 1 else blocks)
            else:
                v = check_patterns(api, f.name, v, allow_empty=f.name in ("mlp_up", "head", "norm"))
                object.__setattr__(self, f.name, v)

    @property
    def blocks(self) -> tuple[str, ...]:
        """:attr:`block` as a tuple."""
        return (self.block,) if isinstance(self.block, str) else self.block

    def block_regex(self) -> re.Pattern:
        """A regex finding the layer index (as written in the path) from :attr:`block`."""
        bodies = []
        for b in self.blocks:
            bodies.append(r"(\d+)".join(re.escape(p) for p in b.split("{i}")))
        return re.compile(r"(?:^|/)(?:" + "|".join(bodies) + r")(?:/|$)")

    def layer_index(self, path: str) -> int | None:
        """The 0-based layer index of ``path`` (None outside every block)."""
        m = self.block_regex().search(path)
        if m is None:
            return None
        return int(next(g for g in m.groups() if g is not None)) - self.index_base


def check_index_base(api: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value not in (0, 1):
        raise ValueError(
            f"`{api}` needs `index_base` to be 0 or 1 (the index of the first layer in the "
            f"names: 0 for Flax's Conv_0, Block_0, layers/0; 1 for conv1, layer_1); got "
            f"{value!r}."
        )
    return int(value)


def transformer_role(
    api: str, call: str, nm: TransformerNames, role: str, what: str, patterns=None
):
    """The defining role ``role`` of a transformer recipe (its patterns from ``nm``)."""
    pats = getattr(nm, role) if patterns is None else patterns
    fix = f"`names=jinit.recipes.TransformerNames({role}='*<your layer>/kernel')`"
    return defining_role(api, call, f"{role} ({what})", pats, fix)


def transformer_fallbacks(nm: TransformerNames, kernel: Any) -> Rules:
    """The fallback rules of a transformer recipe: norm gains 1 (first, so that a ``*weight``
    kernel pattern does not take equinox's norm weights), other kernels ``kernel`` (none when
    None), biases 0."""
    rules: Rules = [Rule(p, ones, fallback=True) for p in nm.norm]
    if kernel is not None:
        rules += [Rule(p, kernel, fallback=True) for p in nm.kernel]
    return [*rules, Rule("*bias", zeros, fallback=True)]


def check_names(api: str, names: Any) -> TransformerNames:
    if names is None:
        return TransformerNames()
    if not isinstance(names, TransformerNames):
        raise TypeError(
            f"`{api}` needs `names` to be a `jinit.recipes.TransformerNames`; got {names!r}. "
            f"Pass e.g. `names=jinit.recipes.TransformerNames(mlp_out='*Dense_1/kernel')`."
        )
    return names
