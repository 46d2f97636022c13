"""Data for training sweeps: the :class:`Dataset` of arrays (standardised scikit-learn digits by
default, never downloaded), its checks, and the metric and role names the sweep reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jinit._core._checks import check_int

METRICS: tuple[str, ...] = ("train.loss", "train.accuracy", "test.loss", "test.accuracy")

#: Roles of a per-initialiser rule mapping for the built-in MLP.
ROLES: tuple[str, ...] = ("input", "hidden", "readout", "bias")


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


class Dataset(NamedTuple):
    """A classification data set with a fixed train/test split.

    Attributes:
      x_train: training inputs, ``(n_train, ...)`` floats.
      y_train: training labels, ``(n_train,)`` ints in ``[0, n_classes)``.
      x_test: test inputs, ``(n_test, ...)``.
      y_test: test labels, ``(n_test,)``.
      name: a name for reports and plots.
      n_classes: the number of classes (``None``: one more than the largest label).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "data"
    n_classes: int | None = None


def digits(*, test_size: int = 360, seed: int = 0) -> Dataset:
    r"""scikit-learn's bundled 8×8 handwritten digits, standardised, with a fixed split.

    1797 images of 64 pixels (values 0..16) in 10 nearly balanced classes, read from the copy
    that ships with scikit-learn (``sklearn.datasets.load_digits``; nothing is downloaded). A
    permutation drawn with ``numpy.random.default_rng(seed)`` puts ``test_size`` images in the
    test split. Each pixel is standardised with the *training* mean :math:`\mu_j` and std
    :math:`s_j`: :math:`x_j \mapsto (x_j-\mu_j)/s_j` (:math:`s_j := 1` for pixels that are
    constant on the training split).

    Args:
      test_size: number of test images (1..1796).
      seed: seed of the split.

    Returns:
      A :class:`Dataset` named ``"digits"`` with float32 inputs ``(n, 64)`` and int32 labels.

    Raises:
      ImportError: scikit-learn is not installed.
      ValueError: a ``test_size`` outside 1..1796.

    Examples:
      >>> from jinit import digits
      >>> d = digits()
      >>> d.x_train.shape, d.x_test.shape, d.n_classes
      ((1437, 64), (360, 64), 10)
      >>> round(float(d.x_train.mean()), 6), round(float(d.x_train[:, 20].std()), 6)
      (0.0, 1.0)
    """
    api = "digits"
    test_size = check_int(api, "test_size", test_size, minimum=1)
    seed = check_int(api, "seed", seed, minimum=0)
    load_digits = _load_digits(api)
    raw = load_digits()
    x = np.asarray(raw.data, np.float64)
    y = np.asarray(raw.target, np.int32)
    if test_size >= len(x):
        raise ValueError(
            f"`{api}` needs 1 <= `test_size` < {len(x)} (the data set has {len(x)} images); "
            f"got {test_size}. The default is 360 (20 %)."
        )
    perm = np.random.default_rng(seed).permutation(len(x))
    test, train = perm[:test_size], perm[test_size:]
    mu = x[train].mean(axis=0)
    sd = x[train].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)

    def standardise(a: np.ndarray) -> np.ndarray:
        return ((a - mu) / sd).astype(np.float32)

    return Dataset(standardise(x[train]), y[train], standardise(x[test]), y[test], "digits", 10)


def _load_digits(api: str):
    """``sklearn.datasets.load_digits``, or an ImportError with the exact install command."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            f"`{api}` reads the 8×8 digits bundled with scikit-learn, which is not installed in "
            f"this Python ({e}). Install it with `python -m pip install scikit-learn`."
        ) from e
    return load_digits


def check_data(api: str, data: Any) -> Dataset:
    if isinstance(data, Dataset):
        ds = data
    elif isinstance(data, Sequence) and not isinstance(data, str) and len(data) == 4:
        ds = Dataset(*data)
    else:
        raise TypeError(
            f"`{api}` needs `data` to be a `jinit.Dataset` (e.g. `jinit.digits()`) or a tuple "
            f"(x_train, y_train, x_test, y_test); got {type(data).__name__}."
        )
    arrays = {}
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a = np.asarray(getattr(ds, name))
        if name.startswith("y"):
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
                raise TypeError(
                    f"`{api}` needs `data.{name}` to be a 1-D array of integer class labels; got "
                    f"dtype {a.dtype} and shape {a.shape}."
                )
        elif a.ndim < 2 or not np.issubdtype(a.dtype, np.number):
            raise TypeError(
                f"`{api}` needs `data.{name}` to be a numeric array (examples, features...); got "
                f"dtype {a.dtype} and shape {a.shape}."
            )
        elif np.iscomplexobj(a) or not np.all(np.isfinite(a)):
            bad = "complex values" if np.iscomplexobj(a) else f"{np.sum(~np.isfinite(a))} inf/NaN"
            raise ValueError(
                f"`{api}` needs finite real inputs; `data.{name}` has {bad} (shape {a.shape}). "
                f"Clean or impute them first: every loss would otherwise be NaN."
            )
        arrays[name] = a
    for split in ("train", "test"):
        nx, ny = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if nx != ny or nx == 0:
            raise ValueError(
                f"`{api}` needs as many {split} labels as {split} inputs, at least one; got "
                f"{nx} inputs and {ny} labels."
            )
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(
            f"`{api}` needs train and test inputs of the same shape per example; got "
            f"{arrays['x_train'].shape[1:]} and {arrays['x_test'].shape[1:]}."
        )
    top = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    low = int(min(arrays["y_train"].min(), arrays["y_test"].min()))
    n_classes = top if ds.n_classes is None else check_int(api, "n_classes", ds.n_classes)
    if low < 0 or top > n_classes or n_classes < 2:
        raise ValueError(
            f"`{api}` needs labels in [0, n_classes) with n_classes >= 2; got labels in "
            f"[{low}, {top - 1}] and n_classes={n_classes}."
        )
    return Dataset(
        arrays["x_train"].astype(np.float32),
        arrays["y_train"].astype(np.int32),
        arrays["x_test"].astype(np.float32),
        arrays["y_test"].astype(np.int32),
        str(ds.name),
        n_classes,
    )
