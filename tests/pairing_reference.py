"""The overlap table the slow obvious way, to check the fast one against (test_pairing,
test_pairing_kernel)."""

import numpy as np


def brute_force(a, b):
    """Sizes, boxes and intersections by scanning every id (the slow obvious way)."""
    def objects(labels):
        result = {}
        for i in np.unique(labels[labels > 0]):
            where = np.argwhere(labels == i)
            result[int(i)] = (len(where), tuple(where.min(0)) + tuple(where.max(0) + 1))
        return result

    pairs = {}
    for x, y in zip(a.ravel().tolist(), b.ravel().tolist()):
        if x and y:
            pairs[x, y] = pairs.get((x, y), 0) + 1
    return objects(a), objects(b), pairs


def table_as_dicts(t):
    def objects(ids, sizes, bbox):
        return {int(i): (int(n), tuple(int(v) for v in box))
                for i, n, box in zip(ids, sizes, bbox)}

    pairs = {(int(t.ids_a[i]), int(t.ids_b[j])): int(n)
             for i, j, n in zip(t.pair_a, t.pair_b, t.intersection)}
    return objects(t.ids_a, t.sizes_a, t.bbox_a), objects(t.ids_b, t.sizes_b, t.bbox_b), pairs
