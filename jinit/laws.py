"""Law types: the exact distributions jinit initialisers produce (see :func:`jinit.law`)."""

from jinit._src.laws import ComplexDiskUniform as ComplexDiskUniform
from jinit._src.laws import ComplexNormal as ComplexNormal
from jinit._src.laws import ComplexTruncatedNormal as ComplexTruncatedNormal
from jinit._src.laws import DeltaOrthogonalLaw as DeltaOrthogonalLaw
from jinit._src.laws import DeterministicLaw as DeterministicLaw
from jinit._src.laws import ElementwiseLaw as ElementwiseLaw
from jinit._src.laws import Law as Law
from jinit._src.laws import Normal as Normal
from jinit._src.laws import OrthogonalLaw as OrthogonalLaw
from jinit._src.laws import SparseLaw as SparseLaw
from jinit._src.laws import TruncatedNormal as TruncatedNormal
from jinit._src.laws import Uniform as Uniform
from jinit._src.laws import complex_truncated_normal_rms as complex_truncated_normal_rms
from jinit._src.laws import truncated_normal_std as truncated_normal_std

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
