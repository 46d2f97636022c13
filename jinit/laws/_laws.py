"""Every law type in one module: the import the layers above ``laws`` use
(``from jinit.laws import _laws as laws``; ``laws.Normal``), re-exporting :mod:`._base`,
:mod:`._elementwise` and :mod:`._structured`."""

from jinit.laws._base import Law as Law
from jinit.laws._elementwise import ComplexDiskUniform as ComplexDiskUniform
from jinit.laws._elementwise import ComplexNormal as ComplexNormal
from jinit.laws._elementwise import ComplexTruncatedNormal as ComplexTruncatedNormal
from jinit.laws._elementwise import ElementwiseLaw as ElementwiseLaw
from jinit.laws._elementwise import Normal as Normal
from jinit.laws._elementwise import TruncatedNormal as TruncatedNormal
from jinit.laws._elementwise import Uniform as Uniform
from jinit.laws._elementwise import complex_truncated_normal_rms as complex_truncated_normal_rms
from jinit.laws._elementwise import truncated_mass as truncated_mass
from jinit.laws._elementwise import truncated_normal_std as truncated_normal_std
from jinit.laws._structured import DeltaOrthogonalLaw as DeltaOrthogonalLaw
from jinit.laws._structured import DeterministicLaw as DeterministicLaw
from jinit.laws._structured import OrthogonalLaw as OrthogonalLaw
from jinit.laws._structured import SparseLaw as SparseLaw
from jinit.laws._structured import law as law
from jinit.laws._structured import rounded_to as rounded_to
