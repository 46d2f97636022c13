"""jinit: JAX/Flax weight initialisation — jax-exact, torch-faithful, with exact laws.

Public API. Please import from here (``import jinit``), not from ``jinit._src``.
"""

from jinit import _cli_guard  # noqa: F401  (first: the CLI's clean Ctrl-C while jax imports)
from jinit import laws as laws
from jinit import mup as mup
from jinit import recipes as recipes
from jinit import testing as testing
from jinit import theory as theory
from jinit import torch as torch
from jinit._src.base import Initializer as Initializer
from jinit._src.base import default_float_dtype as default_float_dtype
from jinit._src.basic import constant as constant
from jinit._src.basic import normal as normal
from jinit._src.basic import ones as ones
from jinit._src.basic import ones_init as ones_init
from jinit._src.basic import truncated_normal as truncated_normal
from jinit._src.basic import uniform as uniform
from jinit._src.basic import zeros as zeros
from jinit._src.basic import zeros_init as zeros_init
from jinit._src.extra import bias_prior as bias_prior
from jinit._src.extra import dirac as dirac
from jinit._src.extra import gpt2_residual as gpt2_residual
from jinit._src.extra import hadamard as hadamard
from jinit._src.extra import identity as identity
from jinit._src.extra import scaled_uniform_orthogonal as scaled_uniform_orthogonal
from jinit._src.extra import sparse as sparse
from jinit._src.extra import transformer_normal as transformer_normal
from jinit._src.extra import zerO as zerO
from jinit._src.fans import Fans as Fans
from jinit._src.fans import fans as fans
from jinit._src.laws import law as law
from jinit._src.layouts import Layout as Layout
from jinit._src.layouts import layouts as layouts
from jinit._src.lsuv import LSUVLayer as LSUVLayer
from jinit._src.lsuv import LSUVReport as LSUVReport
from jinit._src.lsuv import lsuv as lsuv
from jinit._src.networks import cnn as cnn
from jinit._src.networks import mlp as mlp
from jinit._src.networks import transformer as transformer
from jinit._src.propagate import SweepResult as SweepResult
from jinit._src.propagate import linen_model as linen_model
from jinit._src.propagate import nnx_model as nnx_model
from jinit._src.propagate import sweep as sweep
from jinit._src.stats import InitStats as InitStats
from jinit._src.stats import PooledStats as PooledStats
from jinit._src.stats import init_stats as init_stats
from jinit._src.structured import delta_orthogonal as delta_orthogonal
from jinit._src.structured import orthogonal as orthogonal
from jinit._src.summary import Summary as Summary
from jinit._src.summary import SummaryRow as SummaryRow
from jinit._src.summary import summary as summary
from jinit._src.train import CurveSummary as CurveSummary
from jinit._src.train import Dataset as Dataset
from jinit._src.train import TrainResult as TrainResult
from jinit._src.train import digits as digits
from jinit._src.train import train_sweep as train_sweep
from jinit._src.tree import Contextual as Contextual
from jinit._src.tree import LeafInfo as LeafInfo
from jinit._src.tree import ReinitRecord as ReinitRecord
from jinit._src.tree import ReinitTable as ReinitTable
from jinit._src.tree import Rule as Rule
from jinit._src.tree import contextual as contextual
from jinit._src.tree import path_key as path_key
from jinit._src.tree import reinit as reinit
from jinit._src.variance import glorot_normal as glorot_normal
from jinit._src.variance import glorot_uniform as glorot_uniform
from jinit._src.variance import he_normal as he_normal
from jinit._src.variance import he_uniform as he_uniform
from jinit._src.variance import kaiming_normal as kaiming_normal
from jinit._src.variance import kaiming_uniform as kaiming_uniform
from jinit._src.variance import lecun_normal as lecun_normal
from jinit._src.variance import lecun_uniform as lecun_uniform
from jinit._src.variance import variance_scaling as variance_scaling
from jinit._src.variance import xavier_normal as xavier_normal
from jinit._src.variance import xavier_uniform as xavier_uniform

__version__ = "0.1.0"

__all__ = [
    "LSUVLayer",
    "LSUVReport",
    "lsuv",
    "Summary",
    "SummaryRow",
    "summary",
    "CurveSummary",
    "Dataset",
    "TrainResult",
    "digits",
    "train_sweep",
    "Rule",
    "mup",
    "recipes",
    "reinit",
    "contextual",
    "path_key",
    "Contextual",
    "LeafInfo",
    "ReinitRecord",
    "ReinitTable",
    "bias_prior",
    "cnn",
    "constant",
    "default_float_dtype",
    "delta_orthogonal",
    "dirac",
    "Fans",
    "fans",
    "glorot_normal",
    "glorot_uniform",
    "gpt2_residual",
    "hadamard",
    "he_normal",
    "he_uniform",
    "identity",
    "init_stats",
    "Initializer",
    "InitStats",
    "kaiming_normal",
    "kaiming_uniform",
    "law",
    "laws",
    "Layout",
    "layouts",
    "lecun_normal",
    "lecun_uniform",
    "linen_model",
    "mlp",
    "nnx_model",
    "normal",
    "ones",
    "ones_init",
    "orthogonal",
    "PooledStats",
    "scaled_uniform_orthogonal",
    "sparse",
    "sweep",
    "SweepResult",
    "testing",
    "theory",
    "torch",
    "transformer",
    "transformer_normal",
    "truncated_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zerO",
    "zeros",
    "zeros_init",
]
