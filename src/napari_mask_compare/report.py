"""The quality report of a comparison: CSV, JSON, an RGB association TIFF and PNG plots.

Everything is computed first, then every file is written to a temporary name
in the out folder, flushed and fsynced; only when all are written are they
renamed over their final names. A reader sees old files or new ones, never a
partial one, and a failed report leaves nothing behind.

Files of :func:`write_report`:

=========================== =================================================
``summary.json``            every statistic (as ``mask-compare stats --json``)
                            and the parameters
``matching.csv``            StarDist's matching fields per threshold
``pairs.csv``               one row per review group: kind, ids, sizes, IoU
``objects.csv``             every object of A and of B: its best partner, IoU,
                            group, kind, error class, size
``taxonomy.csv``            objects per error class (one-to-one, over-, under-
                            segmented, many-to-many, missing, spurious) and
                            size class
``boundary.csv``            per matched pair (IoU >= 0.5): Hausdorff, its
                            95th percentile, ASSD, surface Dice
``morphology_a.csv``        per-object morphology of A (and ``_b``, ``_curated``)
``association.tif``         RGB at the chosen threshold, A as the reference:
                            true positives green, false negatives red,
                            false positives blue
``iou_histogram.png``       best IoU of each paired group
``scores.png``              precision, recall, F1, PQ against the threshold
``sizes.png``               object size distributions of A and B
``taxonomy.png``            error classes per size class
=========================== =================================================

With a curated output: ``morphology_curated.csv``, ``matching_curated_vs_a.csv``
and ``matching_curated_vs_b.csv``; with a filter, ``filter_curated.csv`` and
``curated_filtered.tif`` (see :func:`report_files`).

Nothing is overwritten that the report did not write: a report goes into a new
or empty folder, or into an earlier report's folder, known by its
``summary.json`` (``"generator": "napari-mask-compare report"``), whose files
are replaced only with ``overwrite=True``; an input is never replaced
(:func:`check_report_folder`, by :func:`._files.check_output_folder` and
:func:`._files.check_output`).

The PNG plots are drawn by :mod:`.plots`. No Qt, no napari.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _files, measure, plots, read, stats
from .compare import compare
from .pairing import Group, OverlapTable, overlap_table
from .read import labels_tiff

__all__ = [
    "RoiResult",
    "apply_roi",
    "association_map",
    "check_report_folder",
    "filter_rows",
    "pairs_rows",
    "report_files",
    "write_csv",
    "write_report",
]

#: Voxels coloured at once by :func:`association_map` (bounds its temporary memory).
_CHUNK_VOXELS = 1 << 24
#: ``summary.json["generator"]``: marks a folder whose files a report wrote.
GENERATOR = "napari-mask-compare report"
#: Files of every report, of a report with a curated output, and of a filtered one.
_FILES = ("matching.csv", "pairs.csv", "objects.csv", "taxonomy.csv", "boundary.csv",
          "morphology_a.csv", "morphology_b.csv", "association.tif", "iou_histogram.png",
          "scores.png", "sizes.png", "taxonomy.png", "summary.json")
_CURATED_FILES = ("morphology_curated.csv", "matching_curated_vs_a.csv",
                  "matching_curated_vs_b.csv")
_FILTER_FILES = ("filter_curated.csv", "curated_filtered.tif")


# --------------------------------------------------------------------------- output checks


def report_files(*, curated: bool = False, filtered: bool = False) -> list[str]:
    """Names of the files that :func:`write_report` writes.

    Parameters
    ----------
    curated : bool
        With a curated output.
    filtered : bool
        With a property filter on it.

    Examples
    --------
    >>> report_files(curated=True, filtered=True)[-2:]
    ['filter_curated.csv', 'curated_filtered.tif']
    """
    return [*_FILES, *_CURATED_FILES * curated, *_FILTER_FILES * filtered]


def check_report_folder(
    out: str | os.PathLike,
    *,
    names: Sequence[str],
    inputs: Sequence[str | os.PathLike] = (),
    overwrite: bool = False,
) -> Path:
    """Check that the files ``names`` may be written into ``out``, before anything is computed.

    ``out`` is new, empty, or an earlier report's folder
    (:func:`is_report_folder`): a folder holding anything else (the user's
    files, a zarr store, a review) is never written into. The files of an
    earlier report are replaced only with ``overwrite``; any other existing
    file of these names, and any of ``inputs``, never.

    Parameters
    ----------
    out : path
        The report folder (it need not exist).
    names : sequence of str
        :func:`report_files`.
    inputs : sequence of path
        Files the report reads (masks, image, ROI, curated output).
    overwrite : bool
        Replace the files of an earlier report.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        One line naming the file that is not written and why.
    """
    out = _files.check_output_folder(out, ours=is_report_folder, what="a report")
    ours = is_report_folder(out)
    for name in names:
        _files.check_output(out / name, inputs=inputs, ours=lambda _: ours,
                            overwrite=overwrite)
    return out


def is_report_folder(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a ``summary.json`` that :func:`write_report` wrote."""
    path = Path(folder) / "summary.json"
    if path.is_symlink() or not path.is_file():
        return False
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("generator") == GENERATOR


def write_csv(path: str | os.PathLike, rows: Sequence[dict] | dict[str, np.ndarray], *,
              opener=_files.atomic_open) -> Path:
    """Write rows (list of dicts) or columns (dict of arrays) as CSV, atomically.

    Floats are written with full precision, NaN as ``nan``. ``opener`` opens
    the binary file (:func:`._files.atomic_open` by default).
    """
    if isinstance(rows, dict):
        names = list(rows)
        columns = [np.asarray(rows[n]).tolist() for n in names]
        rows = [dict(zip(names, values)) for values in zip(*columns)]
    else:
        names = list(rows[0]) if rows else []
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with opener(path) as f:
        f.write(text.getvalue().encode())
    return Path(path)


def _write_json(path: Path, obj: dict, *, opener=_files.atomic_open) -> Path:
    with opener(path) as f:
        f.write((json.dumps(obj, indent=2, allow_nan=False, default=_json_default) + "\n")
                .encode())
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _write_figure(path: Path, figure, *, opener=_files.atomic_open) -> Path:
    with opener(path) as f:
        figure.savefig(f, format="png", dpi=100)
    return path


def _association_tiff(table, a, b, *, threshold: float, image, voxel_size,
                      unit: str) -> tuple[np.ndarray, dict]:
    """The RGB association map and its ``tifffile.imwrite`` keywords (ImageJ)."""
    rgb = association_map(table, a, b, thresh=threshold, image=image)
    spatial = rgb.ndim - 1
    voxel_size = tuple(voxel_size) if voxel_size else (1.0,) * spatial
    metadata = {"axes": "ZYXS" if spatial == 3 else "YXS",
                "unit": read._unit_to_imagej(unit)}
    if spatial == 3:
        metadata["spacing"] = voxel_size[0]
    return rgb, dict(imagej=True, photometric="rgb", metadata=metadata,
                     resolution=(1.0 / voxel_size[-1], 1.0 / voxel_size[-2]))


def filter_rows(result: measure.FilterResult) -> list[dict]:
    """:meth:`..measure.FilterResult.rows` plus ``new_label``: the id in the filtered
    mask once relabelled 1..n (0 when removed)."""
    kept = np.sort(result.label[~result.removed])
    new_labels = np.where(result.removed, 0, np.searchsorted(kept, result.label) + 1)
    return [{**row, "new_label": int(new)} for row, new in zip(result.rows(), new_labels)]


# --------------------------------------------------------------------------- region of interest


@dataclass(frozen=True)
class RoiResult:
    """Masks restricted to a region of interest.

    Attributes
    ----------
    a, b : ndarray, shape (y, x) or (z, y, x)
        Copies without the objects mostly outside the region (the inputs
        themselves when nothing was removed).
    removed_a, removed_b : ndarray of uint64
        Ids of the removed objects.
    """

    a: np.ndarray
    b: np.ndarray
    removed_a: np.ndarray
    removed_b: np.ndarray


def apply_roi(a: np.ndarray, b: np.ndarray, roi: np.ndarray) -> RoiResult:
    """Remove from A and B the objects that lie mostly (more than half) outside ``roi``.

    An object with exactly half of its voxels inside is kept.

    Parameters
    ----------
    a, b : ndarray of int, shape (y, x) or (z, y, x)
    roi : ndarray, same shape
        Non-zero inside the region (e.g. a cryo-ET lamella mask).

    Returns
    -------
    RoiResult

    Examples
    --------
    >>> a = np.array([[1, 1, 1, 0, 2, 2]])
    >>> roi = np.array([[0, 1, 1, 1, 1, 0]])
    >>> r = apply_roi(a, np.zeros_like(a), roi)
    >>> r.a.tolist(), r.removed_a.tolist()
    ([[1, 1, 1, 0, 2, 2]], [])
    >>> apply_roi(a, a, np.array([[0, 0, 1, 1, 1, 1]])).a.tolist()
    [[0, 0, 0, 0, 2, 2]]
    """
    a, b, roi = np.asarray(a), np.asarray(b), np.asarray(roi)
    if not a.shape == b.shape == roi.shape:
        raise ValueError(f"roi has shape {roi.shape}, the masks {a.shape} and {b.shape}")
    inside = (roi != 0).view(np.uint8)
    kept = []
    for labels in (a, b):
        table = overlap_table(labels, inside)
        n_inside = np.zeros(table.n_a, dtype=np.int64)
        n_inside[table.pair_a] = table.intersection
        out = 2 * n_inside < table.sizes_a
        removed = table.ids_a[out]
        if len(removed):
            labels = measure.remove_objects(labels, removed, bboxes=table.bbox_a[out])
        kept.append((labels, removed))
    return RoiResult(kept[0][0], kept[1][0], kept[0][1], kept[1][1])


# --------------------------------------------------------------------------- association map


def association_map(
    table: OverlapTable,
    a: np.ndarray,
    b: np.ndarray,
    *,
    thresh: float = 0.5,
    image: np.ndarray | None = None,
) -> np.ndarray:
    """RGB map of the one-to-one matching at ``thresh``, A as the reference.

    Red channel: A objects without a match (false negatives); green: A
    objects matched (true positives); blue: B objects without a match (false
    positives). Where a false negative and a false positive overlap, magenta.

    Parameters
    ----------
    table : OverlapTable
        Of ``a`` and ``b``.
    a, b : ndarray of int, shape (y, x) or (z, y, x)
    thresh : float in [0, 1]
    image : ndarray, optional
        Shape ``a.shape`` or ``a.shape + (c,)``: shown in grey under the
        colours (half and half), scaled between its 1st and 99th percentiles.

    Returns
    -------
    ndarray of uint8, shape ``a.shape + (3,)``

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2]])
    >>> b = np.array([[5, 5, 6, 0]])
    >>> rgb = association_map(overlap_table(a, b), a, b)
    >>> rgb[0].tolist()
    [[0, 255, 0], [0, 255, 0], [0, 0, 255], [255, 0, 0]]
    """
    matched = stats.matched_pairs(table, thresh=thresh)
    # per object: 1 = unmatched, 2 = matched; 0 for background
    code_a = np.ones(table.n_a, dtype=np.uint8)
    code_a[table.pair_a[matched]] = 2
    code_b = np.ones(table.n_b, dtype=np.uint8)
    code_b[table.pair_b[matched]] = 2
    lookup_a, lookup_b = _lookup(table.ids_a, code_a), _lookup(table.ids_b, code_b)
    grey = _grey(image, a.shape) if image is not None else None
    rgb = np.zeros(a.shape + (3,), dtype=np.uint8)
    step = max(1, _CHUNK_VOXELS // a[0].size)  # whole planes or rows at a time
    for lo in range(0, a.shape[0], step):
        part = slice(lo, lo + step)
        status_a, status_b = lookup_a(a[part]), lookup_b(b[part])
        out = rgb[part]
        out[..., 0] = (status_a == 1) * np.uint8(255)   # red: false negatives
        out[..., 1] = (status_a == 2) * np.uint8(255)   # green: true positives
        out[..., 2] = (status_b == 1) * np.uint8(255)   # blue: false positives
        if grey is not None:
            g = grey[part][..., None]
            coloured = out.any(axis=-1, keepdims=True)
            out[...] = np.where(coloured, (out.astype(np.uint16) + g) // 2, g)
    return rgb


#: Largest id for which :func:`_lookup` uses a table indexed by id (one byte per id).
_MAX_LUT_ID = 1 << 26


def _lookup(ids: np.ndarray, codes: np.ndarray):
    """A function mapping a label array to the uint8 code of each voxel's id (0 for 0).

    Parameters
    ----------
    ids : ndarray of uint64, shape (n,)
        Sorted non-zero ids.
    codes : ndarray of uint8, shape (n,)
    """
    if len(ids) == 0:
        return lambda labels: np.zeros(labels.shape, dtype=np.uint8)
    if int(ids[-1]) <= _MAX_LUT_ID:
        lut = np.zeros(int(ids[-1]) + 1, dtype=np.uint8)
        lut[ids.astype(np.int64)] = codes
        return lambda labels: lut[labels]
    padded = np.r_[np.uint8(0), codes]

    def search(labels):
        index = np.searchsorted(ids, labels.astype(np.uint64)) + 1
        index[labels == 0] = 0
        return padded[index]

    return search


def _grey(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The image as uint8 grey of ``shape``, scaled between its 1st and 99th percentiles."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape != shape:
        if image.shape[:-1] != shape:
            raise ValueError(f"image has shape {image.shape}, expected {shape} (+ channels)")
        image = image.mean(axis=-1)
    lo, hi = np.percentile(image, [1, 99])
    scaled = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- tables


def pairs_rows(groups: Sequence[Group]) -> list[dict]:
    """One row per review group, for ``pairs.csv``.

    Returns
    -------
    list of dict
        ``group``, ``kind``, ``ids_a``, ``ids_b``, ``sizes_a``, ``sizes_b``
        (space-separated), ``iou`` (best pair), ``min_iou`` and ``pairs``
        (``id_a:id_b:iou`` of each linking pair).
    """
    def join(values):
        return " ".join(str(v) for v in values)

    return [{
        "group": g.index,
        "kind": g.kind,
        "ids_a": join(g.ids_a),
        "ids_b": join(g.ids_b),
        "sizes_a": join(g.sizes_a),
        "sizes_b": join(g.sizes_b),
        "iou": g.iou,
        "min_iou": g.min_iou,
        "pairs": join(f"{ia}:{ib}:{iou:.6g}" for ia, ib, iou in g.pairs),
    } for g in groups]


def taxonomy_rows(taxonomy: dict) -> list[dict]:
    """One row per size class (and "all"): the count of objects of each error class.

    Parameters
    ----------
    taxonomy : dict
        :func:`.suite.error_taxonomy`.
    """
    classes = list(taxonomy["counts"])
    rows = [{"size_class": c["label"], "min_size": c["min"], "max_size": c["max"],
             **{name: c["counts"].get(name, 0) for name in classes}}
            for c in taxonomy.get("size_classes") or []]
    rows.append({"size_class": "all", "min_size": None, "max_size": None,
                 **taxonomy["counts"]})
    return rows


# --------------------------------------------------------------------------- the report


def write_report(
    out: str | os.PathLike,
    a: np.ndarray,
    b: np.ndarray,
    *,
    voxel_size: Sequence[float] | None = None,
    unit: str = "pixel",
    image: np.ndarray | None = None,
    roi: np.ndarray | None = None,
    curated: np.ndarray | None = None,
    threshold: float = 0.5,
    thresholds: Sequence[float] = stats.DEFAULT_THRESHOLDS,
    iou_threshold: float = 0.1,
    filter_rules=None,
    sources: dict | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    overwrite: bool = False,
    table: OverlapTable | None = None,
    groups: Sequence[Group] | None = None,
) -> dict[str, Path]:
    """Compute the report of B against A and write its files into ``out``.

    Parameters
    ----------
    out : path
        Folder, created if needed.
    a, b : ndarray of int, shape (y, x) or (z, y, x)
        A is the reference.
    voxel_size : sequence of float, optional
        (y, x) or (z, y, x), for the physical morphology.
    unit : str
    image : ndarray, optional
        Shape ``a.shape`` (+ channels): the grey base of the association map.
    roi : ndarray, optional
        Same shape; objects more than half outside are removed from A, B and
        the curated output before anything is paired or measured.
    curated : ndarray, optional
        Same shape: a curated output, measured and compared with A and B.
    threshold : float in [0, 1]
        IoU of the association map and of the marker in the IoU histogram.
    thresholds : sequence of float in [0, 1]
        Thresholds of the matching statistics.
    iou_threshold : float in (0, 1]
        IoU that links objects into review groups (``pairs.csv``).
    filter_rules : sequence of rules, optional
        A property filter on the curated output (see
        :func:`..measure.evaluate_filter` and :func:`..measure.parse_rules`):
        writes ``filter_curated.csv`` (each object Removed or Correct, the
        conditions it met, its id in the filtered mask) and
        ``curated_filtered.tif`` (ids 1..n). Needs ``curated``.
    sources : dict, optional
        Written to ``summary.json`` as they are (e.g. input paths).
    inputs : sequence of path
        The files read for this report: none of them is ever replaced.
    overwrite : bool
        Replace the files of an earlier report in ``out``. Files that a report
        did not write are never replaced (see :func:`check_report_folder`).
    table, groups : optional
        The overlap table of ``a`` and ``b`` and their review groups at
        ``iou_threshold``, when already computed (e.g. by a review): not
        computed again. Not used with ``roi``, which changes the masks.

    Returns
    -------
    dict of str to Path
        The files written, by name.

    Raises
    ------
    InputError
        A file of the report may not be written (before anything is computed).
    OSError
        :class:`._files.WriteError` when writing fails (a full disk): no file
        is replaced, and the folders that this call created are removed.
    """
    import tifffile

    a, b = np.asarray(a), np.asarray(b)
    shape = a.shape
    for name, arr in (("b", b), ("roi", roi), ("curated", curated)):
        if arr is not None and np.shape(arr) != shape:
            raise ValueError(f"{name} has shape {np.shape(arr)}, mask A has {shape}")
    if filter_rules is not None and curated is None:
        raise ValueError("a property filter applies to a curated output: give one")
    threshold = stats.check_threshold(threshold)
    thresholds = [stats.check_threshold(t) for t in thresholds]
    out = check_report_folder(
        out, names=report_files(curated=curated is not None, filtered=filter_rules is not None),
        inputs=inputs, overwrite=overwrite)

    roi_info = None
    if roi is not None:
        restricted = apply_roi(a, b, roi)
        a, b = restricted.a, restricted.b
        roi_info = {"removed_a": len(restricted.removed_a),
                    "removed_b": len(restricted.removed_b)}
        if curated is not None:
            restricted_c = apply_roi(curated, curated, roi)
            curated = restricted_c.a
            roi_info["removed_curated"] = len(restricted_c.removed_a)
        table = groups = None  # of the masks before the ROI

    spacing = tuple(voxel_size) if voxel_size is not None else None
    ab = compare(a, b, table=table, groups=groups, thresholds=thresholds,
                 iou_threshold=iou_threshold, voxel_size=spacing)
    boundary = ab.summary["boundary"]
    files: dict[str, object] = {
        "matching.csv": ab.summary["matching"],
        "pairs.csv": pairs_rows(ab.groups),
        "objects.csv": ab.objects,
        "taxonomy.csv": taxonomy_rows(ab.summary["taxonomy"]),
        "boundary.csv": boundary.get("pairs", {"id_a": [], "id_b": []}),
        "morphology_a.csv": measure.measure_objects(
            a, voxel_size=spacing, objects=(ab.table.ids_a, ab.table.bbox_a)),
        "morphology_b.csv": measure.measure_objects(
            b, voxel_size=spacing, objects=(ab.table.ids_b, ab.table.bbox_b)),
    }
    summary = {"generator": GENERATOR, **ab.summary, "parameters": {
        "threshold": threshold, "thresholds": thresholds, "iou_threshold": iou_threshold,
        "voxel_size": list(spacing) if spacing else None, "unit": unit,
        "shape": list(shape)}, "roi": roi_info, "sources": sources or {}}
    if curated is not None:
        curated = np.asarray(curated)
        vs_a, vs_b = (compare(reference, curated, thresholds=thresholds,
                              iou_threshold=iou_threshold, voxel_size=spacing,
                              boundary=False, objects=False) for reference in (a, b))
        files["morphology_curated.csv"] = measure.measure_objects(
            curated, voxel_size=spacing, objects=(vs_a.table.ids_b, vs_a.table.bbox_b))
        files["matching_curated_vs_a.csv"] = vs_a.summary["matching"]
        files["matching_curated_vs_b.csv"] = vs_b.summary["matching"]
        summary["curated_vs_a"] = vs_a.summary
        summary["curated_vs_b"] = vs_b.summary
    tiffs = {"association.tif": (_association_tiff(ab.table, a, b, threshold=threshold,
                                                   image=image, voxel_size=spacing, unit=unit))}
    if filter_rules is not None:
        filtered, result = measure.filter_labels(curated, filter_rules,
                                                 props=files["morphology_curated.csv"])
        files["filter_curated.csv"] = filter_rows(result)
        tiffs["curated_filtered.tif"] = labels_tiff(filtered, voxel_size=spacing, unit=unit)
        summary["filter"] = {"rules": [[str(c) for c in rule] for rule in result.rules],
                             "removed": int(result.removed.sum()),
                             "kept": int((~result.removed).sum())}
    figures = plots.report_figures(ab, files["morphology_a.csv"], files["morphology_b.csv"],
                                   threshold=threshold, unit=unit, spacing=spacing)

    written = {}
    with _files.staged() as stage:  # every file appears at the end, or none
        for name, content in files.items():
            written[name] = write_csv(out / name, content, opener=stage.open)
        for name, (data, kwargs) in tiffs.items():
            with stage.open(out / name) as f:
                tifffile.imwrite(f, data, **kwargs)
            written[name] = out / name
        for name, figure in figures.items():
            written[name] = _write_figure(out / name, figure, opener=stage.open)
        written["summary.json"] = _write_json(out / "summary.json", summary,
                                              opener=stage.open)
        if is_report_folder(out):  # an earlier report's files that this one does not write
            for name in set(report_files(curated=True, filtered=True)) - set(written):
                if not any(_files.same_file(out / name, given) for given in inputs):
                    stage.remove(out / name)  # never an input living in the folder
    return written
