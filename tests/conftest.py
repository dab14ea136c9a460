"""Shared fixtures (small label images with one case of every group kind) and hypothesis'
profiles.

Property tests take their number of examples from the profile named by the environment
variable ``HYPOTHESIS_PROFILE``:

``default``
    100 examples a property (the README's test command, CI).
``dev``
    10 examples: a quick run while editing (``HYPOTHESIS_PROFILE=dev pytest -m "not slow"``).
``thorough``
    1,000 examples, by hand before a release or after a change to the core
    (``HYPOTHESIS_PROFILE=thorough pytest tests/test_pairing.py ...``): minutes to hours.

No test sets its own number, except where an example costs a second or so (a store
written, a review killed and resumed): those take a share of the profile's number
(:func:`examples.share`), written beside them with its reason, so that they follow the
profile too. No deadline: a loaded machine is not a failure.
"""

import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("default", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=10, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# --doctest-modules would import each conftest as a test module named "conftest": this one and
# tests/_qt's clash (pytest's own conftest loading keeps them apart); they hold no doctests
collect_ignore_glob = ["*conftest.py"]


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
