"""Sparse matrices made from arrays already in the form scipy's constructors would store.

For a one-row matrix of a few dozen entries, scipy's constructor spends more time checking and converting
its input (15-30 us) than the arithmetic that follows; the hot paths that build such rows (the intent
classifier's input in bot/ops/nlu_speedups.py, the safety classifier's features) build exactly what the
constructor would have stored and skip the checks.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Tuple

import numpy as np
import scipy.sparse

_STORED: Dict[type, Tuple[str, ...]] = {
    scipy.sparse.coo_matrix: ("_shape", "maxprint", "row", "col", "data", "has_canonical_format"),
    scipy.sparse.csr_matrix: ("_shape", "maxprint", "indices", "indptr", "data"),
}


@functools.cache
def _maxprint(cls: type) -> int | None:
    """scipy's maxprint when its constructor stores exactly _STORED[cls] (scipy 1.10), else None."""
    empty = np.zeros(0, np.int32)
    if cls is scipy.sparse.coo_matrix:
        made = cls((np.zeros(0, np.int64), (empty, empty)), (1, 1))
    else:
        made = cls((np.zeros(0), empty, np.zeros(2, np.int32)), shape=(1, 1))
    return made.maxprint if tuple(vars(made)) == _STORED[cls] else None


def sparse_without_checks(cls: Any, **stored: Any) -> Any:
    """What cls's constructor makes of arrays that already have the dtypes and shape it would check and
    convert to, without the checks (15-30 us per matrix); the constructor itself if scipy changed."""
    maxprint = _maxprint(cls)
    if maxprint is None:
        if cls is scipy.sparse.coo_matrix:
            return cls((stored["data"], (stored["row"], stored["col"])), stored["_shape"])
        return cls((stored["data"], stored["indices"], stored["indptr"]), shape=stored["_shape"])
    matrix = cls.__new__(cls)
    matrix.__dict__.update(stored, maxprint=maxprint)
    if cls is scipy.sparse.coo_matrix:
        matrix.has_canonical_format = False  # as coo_matrix((data, (row, col))) leaves it
    return matrix
