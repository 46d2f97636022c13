"""jinit: JAX/Flax weight initialisation — jax-exact, torch-faithful, with exact laws.

Public API. Please import from here (``import jinit``) or from the public sub-modules
(``jinit.laws``, ``jinit.testing``, ``jinit.torch``, ...), not from private modules (``_*``).
"""

from jinit import _cli_guard  # noqa: F401  (first: the CLI's clean Ctrl-C while jax imports)
from jinit import laws as laws
from jinit import mup as mup
from jinit import recipes as recipes
from jinit import testing as testing
from jinit import theory as theory
from jinit import torch as torch
from jinit._core._checks import default_float_dtype as default_float_dtype
from jinit._core._fans import Fans as Fans
from jinit._core._fans import fans as fans
from jinit._core._layout import Layout as Layout
from jinit._core._layouts import layouts as layouts
from jinit.initializers._base import Initializer as Initializer
from jinit.initializers._basic import constant as constant
from jinit.initializers._basic import normal as normal
from jinit.initializers._basic import ones as ones
from jinit.initializers._basic import ones_init as ones_init
from jinit.initializers._basic import truncated_normal as truncated_normal
from jinit.initializers._basic import uniform as uniform
from jinit.initializers._basic import zeros as zeros
from jinit.initializers._basic import zeros_init as zeros_init
from jinit.initializers._conventions import bias_prior as bias_prior
from jinit.initializers._conventions import gpt2_residual as gpt2_residual
from jinit.initializers._conventions import transformer_normal as transformer_normal
from jinit.initializers._deterministic import dirac as dirac
from jinit.initializers._deterministic import hadamard as hadamard
from jinit.initializers._deterministic import identity as identity
from jinit.initializers._deterministic import zerO as zerO
from jinit.initializers._dks import scaled_uniform_orthogonal as scaled_uniform_orthogonal
from jinit.initializers._orthogonal import delta_orthogonal as delta_orthogonal
from jinit.initializers._orthogonal import orthogonal as orthogonal
from jinit.initializers._sparse import sparse as sparse
from jinit.initializers._variance_scaling import glorot_normal as glorot_normal
from jinit.initializers._variance_scaling import glorot_uniform as glorot_uniform
from jinit.initializers._variance_scaling import he_normal as he_normal
from jinit.initializers._variance_scaling import he_uniform as he_uniform
from jinit.initializers._variance_scaling import kaiming_normal as kaiming_normal
from jinit.initializers._variance_scaling import kaiming_uniform as kaiming_uniform
from jinit.initializers._variance_scaling import lecun_normal as lecun_normal
from jinit.initializers._variance_scaling import lecun_uniform as lecun_uniform
from jinit.initializers._variance_scaling import variance_scaling as variance_scaling
from jinit.initializers._variance_scaling import xavier_normal as xavier_normal
from jinit.initializers._variance_scaling import xavier_uniform as xavier_uniform
from jinit.laws._structured import law as law
from jinit.stats._results import InitStats as InitStats
from jinit.stats._results import PooledStats as PooledStats
from jinit.stats._stats import init_stats as init_stats
from jinit.sweeps._cnn import cnn as cnn
from jinit.sweeps._configs import SweepConfig as SweepConfig
from jinit.sweeps._configs import TrainConfig as TrainConfig
from jinit.sweeps._flax_models import linen_model as linen_model
from jinit.sweeps._flax_models import nnx_model as nnx_model
from jinit.sweeps._mlp import mlp as mlp
from jinit.sweeps._propagate import sweep as sweep
from jinit.sweeps._sweep_result import SweepResult as SweepResult
from jinit.sweeps._train import train_sweep as train_sweep
from jinit.sweeps._train_data import Dataset as Dataset
from jinit.sweeps._train_data import digits as digits
from jinit.sweeps._train_results import CurveSummary as CurveSummary
from jinit.sweeps._train_results import TrainResult as TrainResult
from jinit.sweeps._transformer import transformer as transformer
from jinit.trees._explain import ReinitRecord as ReinitRecord
from jinit.trees._explain import ReinitTable as ReinitTable
from jinit.trees._lsuv import lsuv as lsuv
from jinit.trees._lsuv_types import LSUVLayer as LSUVLayer
from jinit.trees._lsuv_types import LSUVReport as LSUVReport
from jinit.trees._own import OwnRules as OwnRules
from jinit.trees._own import own_rules as own_rules
from jinit.trees._reinit import reinit as reinit
from jinit.trees._rules import Contextual as Contextual
from jinit.trees._rules import LeafInfo as LeafInfo
from jinit.trees._rules import Rule as Rule
from jinit.trees._rules import contextual as contextual
from jinit.trees._rules import path_key as path_key
from jinit.trees._sharded import init_sharded as init_sharded
from jinit.trees._sharded_table import ShardedInitTable as ShardedInitTable
from jinit.trees._sharded_table import ShardedLeaf as ShardedLeaf
from jinit.trees._summary import summary as summary
from jinit.trees._summary_types import Summary as Summary
from jinit.trees._summary_types import SummaryRow as SummaryRow

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
    "TrainConfig",
    "digits",
    "train_sweep",
    "Rule",
    "mup",
    "recipes",
    "reinit",
    "init_sharded",
    "own_rules",
    "OwnRules",
    "ShardedInitTable",
    "ShardedLeaf",
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
    "SweepConfig",
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

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit")
