"""The report's plots (matplotlib): scores, IoUs, sizes and error classes of a comparison.

Each ``plot_*`` draws on a matplotlib ``Axes`` it is given (the report's PNG
files, the Metrics tab of the widget); :func:`report_figures` makes the
report's figures. Colours from :mod:`.colours`. No Qt, no napari; matplotlib
is imported when a plot is made, without pyplot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import colours

__all__ = ["plot_iou_histogram", "plot_scores", "plot_sizes", "plot_taxonomy", "report_figures"]


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(figsize=kwargs.pop("figsize", (6, 4)), layout="constrained", **kwargs)


def plot_scores(ax, matching: Sequence[dict], *, title: str | None = None) -> None:
    """Precision, recall, F1 and panoptic quality against the IoU threshold.

    Parameters
    ----------
    ax : matplotlib Axes
    matching : list of dict
        :func:`.stats.matching_stats`.
    """
    thresholds = [r["thresh"] for r in matching]
    for key, label in (("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
                       ("panoptic_quality", "panoptic quality")):
        ax.plot(thresholds, [r[key] for r in matching], marker="o", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("score")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="x-small", framealpha=0.6)
    if title:
        ax.set_title(title)


def plot_iou_histogram(ax, ious: Sequence[float], *, thresh: float | None = None,
                       title: str | None = None) -> None:
    """Histogram of IoUs (of the paired groups), with the threshold marked.

    Parameters
    ----------
    ax : matplotlib Axes
    ious : sequence of float in [0, 1]
    thresh : float, optional
    """
    ax.hist(np.asarray(ious, dtype=float), bins=np.linspace(0, 1, 21), color=colours.MATCHED,
            edgecolor="white")
    if thresh is not None:
        ax.axvline(thresh, color="black", linestyle="--", label=f"threshold {thresh:g}")
        ax.legend(loc="upper left", fontsize="small")
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(0, 1)
    ax.set_xlabel("best IoU of a paired group")
    ax.set_ylabel("groups")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not len(ious):
        ax.text(0.5, 0.5, "no paired objects", ha="center", va="center",
                transform=ax.transAxes)
    if title:
        ax.set_title(title)


def plot_sizes(ax, sizes_a: Sequence[float], sizes_b: Sequence[float], *,
               unit: str = "voxels", title: str | None = None) -> None:
    """Object size distributions of A and B, on a log scale when they span decades."""
    sizes_a = np.asarray(sizes_a, dtype=float)
    sizes_b = np.asarray(sizes_b, dtype=float)
    both = np.concatenate([sizes_a, sizes_b])
    both = both[both > 0]
    if both.size == 0:
        ax.text(0.5, 0.5, "no objects", ha="center", va="center", transform=ax.transAxes)
        return
    lo, hi = both.min(), both.max()
    if hi > 10 * lo:
        from matplotlib.ticker import NullFormatter

        bins = np.geomspace(lo, hi * 1.001, 31)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        bins = np.linspace(lo, hi * 1.001 + 1e-9, 31)
    ax.hist(sizes_a, bins=bins, alpha=0.6, label=f"A ({len(sizes_a)})", color=colours.A)
    ax.hist(sizes_b, bins=bins, alpha=0.6, label=f"B ({len(sizes_b)})", color=colours.B)
    ax.set_xlabel(f"object size ({unit})")
    ax.set_ylabel("objects")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)


def plot_taxonomy(ax, taxonomy: dict, *, title: str | None = None) -> None:
    """Objects of each error class per size class, as stacked bars (all objects in one bar
    when there are no size classes).

    Parameters
    ----------
    taxonomy : dict
        :func:`.suite.error_taxonomy`.
    """
    classes = list(taxonomy["counts"])
    size_classes = taxonomy.get("size_classes") or [{"label": "all",
                                                     "counts": taxonomy["counts"]}]
    labels = [str(c["label"]) for c in size_classes]
    bottom = np.zeros(len(size_classes))
    for name in classes:
        counts = np.array([c["counts"].get(name, 0) for c in size_classes], dtype=float)
        ax.bar(labels, counts, bottom=bottom, label=name)
        bottom += counts
    ax.set_xlabel("object size class (voxels)")
    ax.set_ylabel("objects")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)


def report_figures(comparison, morphology_a: dict, morphology_b: dict, *, threshold: float,
                   unit: str, spacing) -> dict:
    """The report's PNG figures, by file name.

    Parameters
    ----------
    comparison : compare.Comparison
        A against B (its groups, table and summary).
    morphology_a, morphology_b : dict of str to ndarray
        :func:`.measure.measure_objects` of A and of B (their ``area`` or ``volume``).
    threshold : float
        The report's IoU threshold, marked on the IoU histogram.
    unit : str
        The voxel size's unit ("pixel": sizes in pixels or voxels).
    spacing : sequence of float or None
        The voxel size; None: sizes in pixels or voxels.

    Returns
    -------
    dict of str to matplotlib.figure.Figure
    """
    figures = {}
    fig = _figure()
    plot_iou_histogram(fig.add_subplot(), [g.iou for g in comparison.groups if g.paired],
                       thresh=threshold, title="IoU of paired groups")
    figures["iou_histogram.png"] = fig
    fig = _figure()
    plot_scores(fig.add_subplot(), comparison.summary["matching"], title="B against A")
    figures["scores.png"] = fig
    fig = _figure()
    ndim = len(comparison.table.shape)
    if spacing is None or unit == "pixel":
        size_unit = "pixels" if ndim == 2 else "voxels"
    else:
        size_unit = f"{unit}²" if ndim == 2 else f"{unit}³"
    key = "area" if ndim == 2 else "volume"
    plot_sizes(fig.add_subplot(), morphology_a[key], morphology_b[key], unit=size_unit,
               title="object sizes")
    figures["sizes.png"] = fig
    fig = _figure()
    plot_taxonomy(fig.add_subplot(), comparison.summary["taxonomy"],
                  title="errors by object size")
    figures["taxonomy.png"] = fig
    return figures
