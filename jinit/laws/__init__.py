"""Law types: the exact distributions jinit initialisers produce (see :func:`jinit.law`)."""

from jinit.laws._base import Law as Law
from jinit.laws._elementwise import ComplexDiskUniform as ComplexDiskUniform
from jinit.laws._elementwise import ComplexNormal as ComplexNormal
from jinit.laws._elementwise import ComplexTruncatedNormal as ComplexTruncatedNormal
from jinit.laws._elementwise import ElementwiseLaw as ElementwiseLaw
from jinit.laws._elementwise import Normal as Normal
from jinit.laws._elementwise import TruncatedNormal as TruncatedNormal
from jinit.laws._elementwise import Uniform as Uniform
from jinit.laws._elementwise import complex_truncated_normal_rms as complex_truncated_normal_rms
from jinit.laws._elementwise import truncated_normal_std as truncated_normal_std
from jinit.laws._structured import DeltaOrthogonalLaw as DeltaOrthogonalLaw
from jinit.laws._structured import DeterministicLaw as DeterministicLaw
from jinit.laws._structured import OrthogonalLaw as OrthogonalLaw
from jinit.laws._structured import SparseLaw as SparseLaw

__all__ = [
    "ComplexDiskUniform",
    "ComplexNormal",
    "ComplexTruncatedNormal",
    "DeltaOrthogonalLaw",
    "DeterministicLaw",
    "ElementwiseLaw",
    "Law",
    "Normal",
    "OrthogonalLaw",
    "SparseLaw",
    "TruncatedNormal",
    "Uniform",
    "complex_truncated_normal_rms",
    "truncated_normal_std",
]

from jinit._core._public import set_public_home as _set_public_home  # noqa: E402

_set_public_home(globals(), __all__, "jinit.laws")
