"""Compare two instance segmentations of one image: see, measure and curate their differences.

The public API, listed once (each name is imported on first use, so that
``mask-compare --help`` and napari's plugin discovery stay fast):

- reading: :func:`load_pair`, :func:`load_mask`, :class:`InputError`
- pairing: :func:`overlap_table`, :func:`review_groups`
- reviewing: :class:`Review` (one open review on disk), :class:`Session` (its state in
  memory), :func:`decide_by_policy` (one policy for every group)
- measuring: :func:`summarize` (every statistic of a comparison), :func:`write_report`
- writing: :func:`write_labels`
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

#: Public name -> the module that defines it.
_API = {
    "InputError": "errors", "load_mask": "read", "load_pair": "read", "write_labels": "read",
    "overlap_table": "pairing", "review_groups": "pairing", "blockwise_table": "pairing",
    "Engine": "engine",
    "Review": "review", "Session": "session",
    "decide_by_policy": "merging", "merge_masks": "merging", "merge_tables": "merging",
    "apply_tables": "merging",
    "compare": "compare", "summarize": "compare", "write_report": "report",
    "open_array": "store", "write_ome_zarr_labels": "ome_zarr_out",
}

__all__ = sorted(_API)

try:
    __version__ = version("napari-mask-compare")
except PackageNotFoundError:  # not installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), *_API]
