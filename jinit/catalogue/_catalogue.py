"""The catalogue: every initialiser jinit ships, and the one name -> initialiser lookup.

The tables below are the single list that ``jinit list``, ``jinit check``, ``--inits`` specs,
the README's catalogue table and the tests read. The implementation modules know nothing of the
catalogue (it imports them; none imports it), so adding an initialiser is: write it, then add
its row here.

Each row names the public name (``he_normal``, ``torch.kaiming_uniform``), a zero-argument
``build`` giving the initialiser with representative arguments, its family, a shape it accepts,
a one-line summary of its law in terms of the fans, and the dtypes its law covers. Where
``build`` is not itself the public builder (a lambda with arguments, an initialiser instance),
``builder`` names the public builder, which :func:`public_builder` returns for calls with
parameters (``jinit check sparse --param nonzeros=3``, ``--inits "sparse(nonzeros=3)"``).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable
from typing import Any

from jinit.initializers import _basic as basic
from jinit.initializers import _orthogonal as structured
from jinit.initializers import _variance_scaling as variance
from jinit.initializers._conventions import bias_prior, gpt2_residual, transformer_normal
from jinit.initializers._deterministic import dirac, hadamard, identity, zerO
from jinit.initializers._dks import scaled_uniform_orthogonal
from jinit.initializers._sparse import sparse
from jinit.torch import _defaults as torch_defaults
from jinit.torch import _fan_scaled as torch_fan_scaled
from jinit.torch import _simple as torch_simple
from jinit.torch import _structured as torch_structured

__all__ = ["Entry", "entries", "lookup", "public_builder"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One catalogue row.

    Attributes:
      name: the public name (``jinit.<name>`` or ``jinit.torch.<name>``).
      build: a zero-argument callable returning the initialiser with representative arguments.
      family: "constant", "simple", "variance scaling", "orthogonal", "structured", "sparse",
        "recipe" or "torch".
      example_shape: a shape the initialiser accepts, used by tests and the CLI.
      law: a human-readable summary of the law in terms of the fans, e.g.
        "N(0, 2/fan_in) truncated ±2σ".
      dtypes: the dtypes its law covers ("real", "real+complex" or "any").
      builder: the public builder taking the initialiser's parameters, where ``build`` is not
        it (``None``: ``build`` itself if it takes parameters, else the entry has none).
    """

    name: str
    build: Callable[[], Any]
    family: str
    example_shape: tuple[int, ...]
    law: str
    dtypes: str = "real"
    builder: Callable[..., Any] | None = None


def _core() -> list[Entry]:
    b = basic
    return [
        Entry("zeros", lambda: b.zeros, "constant", (4, 3), "0 (exact)", "any"),
        Entry("ones", lambda: b.ones, "constant", (4, 3), "1 (exact)", "any"),
        Entry(
            "constant",
            lambda: b.constant(0.5),
            "constant",
            (4, 3),
            "value (exact)",
            "any",
            builder=b.constant,
        ),
        Entry("uniform", b.uniform, "simple", (64, 32), "U[0, scale), scale=1e-2"),
        Entry("normal", b.normal, "simple", (64, 32), "N(0, stddev²), stddev=1e-2", "real+complex"),
        Entry(
            "truncated_normal",
            b.truncated_normal,
            "simple",
            (64, 32),
            "N(0, stddev²) truncated to (lower·σ, upper·σ), std not corrected (0.88·stddev)",
        ),
    ]


def _variance_scaling() -> list[Entry]:
    v, rc, fam = variance, "real+complex", "variance scaling"
    out = [
        Entry(
            "variance_scaling",
            lambda: v.variance_scaling(1.0, "fan_in", "normal"),
            fam,
            (3, 3, 16, 32),
            "scale/n(mode) with n = fan_in | fan_out | fan_avg | √(fan_in·fan_out); "
            "truncated_normal | normal | uniform",
            rc,
            builder=v.variance_scaling,
        )
    ]
    for name, text in (
        ("glorot_uniform", "U(±√(6/(fan_in+fan_out))), variance 1/fan_avg"),
        ("glorot_normal", "N(0, 1/fan_avg) truncated ±2σ (variance-corrected)"),
        ("lecun_uniform", "U(±√(3/fan_in)), variance 1/fan_in"),
        ("lecun_normal", "N(0, 1/fan_in) truncated ±2σ (variance-corrected)"),
        ("he_uniform", "U(±√(6/fan_in)), variance 2/fan_in"),
        ("he_normal", "N(0, 2/fan_in) truncated ±2σ (variance-corrected)"),
    ):
        out.append(Entry(name, getattr(v, name), fam, (64, 32), text, rc))
    for alias, target in (
        ("xavier_uniform", "glorot_uniform"),
        ("xavier_normal", "glorot_normal"),
        ("kaiming_uniform", "he_uniform"),
        ("kaiming_normal", "he_normal"),
    ):
        out.append(Entry(alias, getattr(v, alias), fam, (64, 32), f"alias of {target}", rc))
    return out


def _orthogonal() -> list[Entry]:
    s, rc = structured, "real+complex"
    return [
        Entry(
            "orthogonal",
            s.orthogonal,
            "orthogonal",
            (64, 32),
            "scale × Haar orthogonal over (rest × column_axis); MᵀM = scale²·I on the smaller side",
            rc,
        ),
        Entry(
            "delta_orthogonal",
            s.delta_orthogonal,
            "orthogonal",
            (3, 3, 16, 32),
            "zeros except spatial centre (k-1)//2 = scale × Haar orthogonal (in, out), in ≤ out",
            rc,
        ),
    ]


def _extra() -> list[Entry]:
    rc = "real+complex"
    return [
        Entry(
            "identity",
            identity,
            "structured",
            (16, 16),
            "gain·I on the last two axes, batched for rank > 2 (exact)",
            rc,
        ),
        Entry(
            "dirac",
            dirac,
            "structured",
            (3, 3, 16, 16),
            "1 at [(k-1)//2, d, g·out/groups + d] for d < min(out/groups, in), else 0 (exact): "
            "identity conv under SAME padding",
            rc,
        ),
        Entry(
            "sparse",
            lambda: sparse(nonzeros=15),
            "sparse",
            (64, 32),
            "exactly k non-zeros N(0, stddev²) per unit along in_axis (Martens k = nonzeros; "
            "torch: ceil(sparsity·n) zeros), uniformly random positions",
            rc,
            builder=sparse,
        ),
        Entry(
            "hadamard",
            hadamard,
            "structured",
            (64, 32),
            "scale·H_p[:in, :out]/√p, p = 2^⌈log2 max(in, out)⌉, Sylvester H (exact); conv: "
            "centre tap",
            rc,
        ),
        Entry(
            "zerO",
            zerO,
            "structured",
            (32, 64),
            "I* if in ≥ out, else H_p[:in, :out]/√p with p = 2^⌈log2 out⌉ (exact); conv: "
            "centre tap",
            rc,
        ),
        Entry(
            "scaled_uniform_orthogonal",
            scaled_uniform_orthogonal,
            "orthogonal",
            (64, 32),
            "scale·max(√(out/in), 1) × Haar orthogonal; conv with delta: centre tap only "
            "(odd sizes)",
            rc,
        ),
        Entry(
            "bias_prior",
            lambda: bias_prior(0.01),
            "recipe",
            (80,),
            "constant log(p/(1−p)); p = 0.01 → −4.59512 (exact)",
            rc,
            builder=bias_prior,
        ),
        Entry(
            "transformer_normal",
            transformer_normal,
            "recipe",
            (768, 3072),
            "N(0, stddev²), stddev = 0.02 (GPT-2/BERT)",
            rc,
        ),
        Entry(
            "gpt2_residual",
            lambda: gpt2_residual(12),
            "recipe",
            (3072, 768),
            "N(0, (stddev/√(2·n_layers))²); 12 layers: std 0.0040825",
            rc,
            builder=gpt2_residual,
        ),
    ]


def _torch() -> list[Entry]:
    rows = [
        ("uniform", torch_simple.uniform, None, (64, 32), "U[a, b), a=0, b=1", "real"),
        (
            "normal",
            torch_simple.normal,
            None,
            (64, 32),
            "N(mean, std²), mean=0, std=1",
            "real+complex",
        ),
        (
            "trunc_normal",
            torch_simple.trunc_normal,
            None,
            (64, 32),
            "N(mean, std²) conditioned on a ≤ x ≤ b (absolute; default ±2), std not corrected",
            "real",
        ),
        (
            "xavier_uniform",
            torch_fan_scaled.xavier_uniform,
            None,
            (64, 32),
            "U(±gain·√(6/(fan_in+fan_out)))",
            "real",
        ),
        (
            "xavier_normal",
            torch_fan_scaled.xavier_normal,
            None,
            (64, 32),
            "N(0, 2·gain²/(fan_in+fan_out)), untruncated",
            "real+complex",
        ),
        (
            "kaiming_uniform",
            torch_fan_scaled.kaiming_uniform,
            None,
            (64, 32),
            "U(±gain·√(3/fan)), gain = calculate_gain(nonlinearity, a), fan_in | fan_out",
            "real",
        ),
        (
            "kaiming_normal",
            torch_fan_scaled.kaiming_normal,
            None,
            (64, 32),
            "N(0, gain²/fan), untruncated, gain = calculate_gain(nonlinearity, a)",
            "real+complex",
        ),
        (
            "orthogonal",
            torch_structured.orthogonal,
            None,
            (64, 32),
            "gain × Haar orthogonal of w.reshape(-1, out); Gram = gain²·I on the smaller side",
            "real",
        ),
        (
            "sparse",
            lambda: torch_structured.sparse(0.1),
            torch_structured.sparse,
            (64, 32),
            "N(0, std²) with ceil(sparsity·out) zeros in each row (in, out); std=0.01",
            "real+complex",
        ),
        ("eye", torch_structured.eye, None, (64, 32), "identity (in, out) (exact)", "any"),
        (
            "dirac",
            torch_structured.dirac,
            None,
            (3, 3, 16, 32),
            "zeros; centre k//2 holds identity (in/groups, out) per group (exact)",
            "any",
        ),
        (
            "linear_weight",
            torch_defaults.linear_weight,
            None,
            (64, 32),
            "U(±1/√fan_in): std 1/√(3·fan_in) (torch nn.Linear default)",
            "real",
        ),
        (
            "linear_bias",
            lambda: torch_defaults.linear_bias(64),
            torch_defaults.linear_bias,
            (32,),
            "U(±1/√fan_in) from the weight's fan_in; 0 if fan_in = 0 (nn.Linear default)",
            "real",
        ),
        (
            "conv_weight",
            torch_defaults.conv_weight,
            None,
            (3, 3, 16, 32),
            "U(±1/√fan_in), fan_in = in/groups·prod(k) (torch nn.ConvNd default)",
            "real",
        ),
        (
            "conv_bias",
            lambda: torch_defaults.conv_bias(144),
            torch_defaults.conv_bias,
            (32,),
            "U(±1/√fan_in) from the weight's fan_in (torch nn.ConvNd default)",
            "real",
        ),
        (
            "embedding",
            torch_defaults.embedding,
            None,
            (1000, 64),
            "N(0, 1) (torch nn.Embedding default)",
            "real+complex",
        ),
    ]
    return [
        Entry("torch." + name, build, "torch", shape, law, dtypes, builder=builder)
        for name, build, builder, shape, law, dtypes in rows
    ]


_ENTRIES: tuple[Entry, ...] = (
    *_core(),
    *_variance_scaling(),
    *_orthogonal(),
    *_extra(),
    *_torch(),
)
_BY_NAME: dict[str, Entry] = {e.name: e for e in _ENTRIES}


def entries() -> list[Entry]:
    """All catalogue entries, in display order.

    Examples:
        >>> [e.name for e in entries()][:3]
        ['zeros', 'ones', 'constant']
    """
    return list(_ENTRIES)


def lookup(api: str, name: Any) -> Entry:
    """The entry called ``name`` (``he_normal``, ``torch.kaiming_uniform``; a leading
    ``jinit.`` is allowed). Anything else raises a ValueError from ``api`` naming the closest
    names (or a TypeError for a non-string).

    Examples:
        >>> lookup("jinit check", "torch.eye").family
        'torch'
        >>> lookup("jinit check", "he_norml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `jinit check`: no initialiser named 'he_norml' ... Did you mean he_normal, ....
    """
    if not isinstance(name, str):
        raise TypeError(
            f"`{api}` needs an initialiser's name, e.g. 'he_normal'; got {type(name).__name__} "
            f"{name!r}."
        )
    key = name.strip().removeprefix("jinit.")
    entry = _BY_NAME.get(key)
    if entry is not None:
        return entry
    close = difflib.get_close_matches(key, list(_BY_NAME), n=5, cutoff=0.6)
    close += [n for n in _BY_NAME if key and key.lower() in n.lower() and n not in close]
    hint = f" Did you mean {', '.join(close[:5])}?" if close else ""
    raise ValueError(
        f"`{api}`: no initialiser named {name!r} in the catalogue.{hint} See `jinit list` for "
        f"every name."
    )


def public_builder(entry: Entry) -> Callable[..., Any] | None:
    """The public builder that takes ``entry``'s parameters (``jinit.sparse`` for the row
    ``sparse``), or ``None`` where it has none (``zeros``, a ready initialiser)."""
    if entry.builder is not None:
        return entry.builder
    try:
        takes = bool(inspect.signature(entry.build).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        takes = False
    return entry.build if takes else None
