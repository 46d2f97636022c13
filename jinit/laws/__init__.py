"""Law types: the exact distributions jinit initialisers produce (see :func:`jinit.law`)."""

from jinit.laws._laws import ComplexDiskUniform as ComplexDiskUniform
from jinit.laws._laws import ComplexNormal as ComplexNormal
from jinit.laws._laws import ComplexTruncatedNormal as ComplexTruncatedNormal
from jinit.laws._laws import DeltaOrthogonalLaw as DeltaOrthogonalLaw
from jinit.laws._laws import DeterministicLaw as DeterministicLaw
from jinit.laws._laws import ElementwiseLaw as ElementwiseLaw
from jinit.laws._laws import Law as Law
from jinit.laws._laws import Normal as Normal
from jinit.laws._laws import OrthogonalLaw as OrthogonalLaw
from jinit.laws._laws import SparseLaw as SparseLaw
from jinit.laws._laws import TruncatedNormal as TruncatedNormal
from jinit.laws._laws import Uniform as Uniform
from jinit.laws._laws import complex_truncated_normal_rms as complex_truncated_normal_rms
from jinit.laws._laws import truncated_normal_std as truncated_normal_std

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
