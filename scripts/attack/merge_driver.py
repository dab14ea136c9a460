"""A folder merge that kills itself at one step of one pair's record (run by :mod:`.kills`).

    python merge_driver.py POINT PAIR merge A B --out OUT ...

Runs ``mask-compare merge ...`` in this process with the records' steps
patched so that the process ends with ``os._exit(9)`` (as a SIGKILL: nothing
is cleaned up) at ``POINT`` of pair ``PAIR`` (its output's name without
suffix), one of :data:`POINTS`:

- "before the pending record": the output is written to its temporary
  file, nothing recorded;
- "before the rename": the pending record names the new output's digest,
  the earlier output (if any) still in place;
- "before the record": the new output is in place, its record not written.

A random SIGKILL rarely lands in these windows; this is how a kill there
leaves the folder (the same as ``tests/test_batch_kill.py`` makes).
"""

from __future__ import annotations

import os
import sys

POINTS = ("before the pending record", "before the rename", "before the record")


def main(point: str, victim: str, argv: list[str]) -> int:
    from napari_mask_compare.batch import Records
    from napari_mask_compare.cli import main as mask_compare

    if point not in POINTS:
        raise SystemExit(f"POINT must be one of {POINTS}, got {point!r}")
    pending, add = Records.pending, Records.add

    def killed_pending(self, name, **kwargs):
        if name == victim and point == "before the pending record":
            os._exit(9)
        pending(self, name, **kwargs)
        if name == victim and point == "before the rename":
            os._exit(9)

    def killed_add(self, name, **kwargs):
        if name == victim and point == "before the record":
            os._exit(9)
        add(self, name, **kwargs)

    Records.pending, Records.add = killed_pending, killed_add
    return mask_compare(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
