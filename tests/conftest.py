"""Shared fixtures: small label images with one case of every group kind."""

import numpy as np
import pytest


@pytest.fixture
def every_kind_2d():
    """A (y, x) pair of masks with a match, a split, a merge, a complex case, only-A and only-B.

    Returns
    -------
    a, b : ndarray of uint16, shape (12, 40)
    """
    a = np.zeros((12, 40), dtype=np.uint16)
    b = np.zeros_like(a)
    a[1:5, 1:5] = 1          # match: B is the same square shifted by one column
    b[1:5, 2:6] = 11
    a[1:5, 8:16] = 2         # split: B cuts it in two
    b[1:5, 8:12] = 12
    b[1:5, 12:16] = 13
    a[1:5, 19:23] = 3        # merge: B joins A 3 and A 4
    a[1:5, 23:27] = 4
    b[1:5, 19:27] = 14
    a[7:11, 1:5] = 5         # complex: 2 A x 2 B, crossing cuts
    a[7:11, 5:9] = 6
    b[7:9, 1:9] = 15
    b[9:11, 1:9] = 16
    a[7:11, 12:15] = 7       # only in A
    b[7:11, 18:21] = 17      # only in B
    return a, b
