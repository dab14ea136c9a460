"""Inputs of a review: layer pickers that follow the layer list, and loading.

:class:`LayerCombo` lists the viewer's layers of some kinds, best first, and
:func:`preselect_layers` keeps the image, mask A and mask B combos filled
with sensible, distinct layers. :func:`load_from_layers` and
:func:`load_from_files` run off the GUI thread and return an
:class:`~napari_mask_compare.read.MaskPair`; bad input is an
:class:`~napari_mask_compare.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
from napari.layers import Image
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QComboBox

from .. import read, store
from .._arrays import is_lazy
from .._reader import is_label_array
from ..errors import InputError
from ..labels import as_lazy_labels
from ._view import is_review_layer

__all__ = ["LayerCombo", "is_lazy_layer", "load_from_files", "load_from_layers",
           "output_name", "preselect_layers"]

NONE = "(none)"

#: Per layer: (id of the data judged, whether they look like labels).
_LABEL_LIKE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _holds_labels(layer) -> bool:
    """Whether an Image layer's data look like labels (:func:`is_label_array` on a sample).

    Judged once per data array (cached); a multiscale layer by its smallest
    level. Lazy data (dask, zarr) are not read: they count as an image.
    """
    data = layer.data[-1] if getattr(layer, "multiscale", False) else layer.data
    if not isinstance(data, np.ndarray):
        return False
    cached = _LABEL_LIKE.get(layer)
    if cached is None or cached[0] != id(data):
        cached = (id(data), is_label_array(data, scan=False))
        _LABEL_LIKE[layer] = cached
    return cached[1]


class LayerCombo(QComboBox):
    """A combo box of the viewer's layers of some types, kept up to date.

    Layers are listed best first: by :meth:`rank`, then the most recently
    added first (highest in the layer list). The chosen layer stays chosen
    when layers are added, moved or renamed; when it is removed, nothing is
    chosen ("(none)" when optional) until the user or
    :func:`preselect_layers` chooses again.

    Parameters
    ----------
    viewer : napari.Viewer
    kinds : tuple of type
        Layer classes listed first.
    optional : bool
        Offer "(none)" first.
    masks : bool
        List Image layers of integers too, after the ``kinds`` (masks opened
        as images; those whose data look like labels first).

    Attributes
    ----------
    user_chose : bool
        The current choice was made by the user (or :meth:`set_layer`), not
        by :func:`preselect_layers`; it is kept as long as its layer is there.
    """

    #: Emitted after the list was refilled from the layer list.
    refilled = Signal()

    def __init__(self, viewer, *, kinds: tuple[type, ...], optional: bool = False,
                 masks: bool = False, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.kinds = kinds
        self.optional = optional
        self.masks = masks
        self.user_chose = False
        self._listed: list = []
        self.setPlaceholderText(NONE)
        self.activated.connect(self._on_activated)
        events = viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.connect(self.reset_choices)
        self.reset_choices()

    def rank(self, layer) -> int | None:
        """How good a choice ``layer`` is: 0 best; None when it is not listed.

        Without ``masks``: 0 for a layer of ``kinds`` (1 when an Image whose
        data look like labels). With ``masks``: 0 for a layer of ``kinds``,
        then Image layers of integers: 1 when their data look like labels,
        else 2.
        """
        if is_review_layer(layer):
            return None
        image = isinstance(layer, Image)
        if isinstance(layer, self.kinds):
            return int(image and not self.masks and _holds_labels(layer))
        if self.masks and image and np.dtype(layer.dtype).kind in "biu":
            return 1 if _holds_labels(layer) else 2
        return None

    def candidates(self, rank: int | None = None) -> list:
        """The listed layers, best first; only those of ``rank`` when given."""
        return [layer for layer in self._listed if rank is None or self.rank(layer) == rank]

    def reset_choices(self, event=None) -> None:
        """Refill from the layer list, keeping the chosen layer when it is still there."""
        before = self.layer()
        for layer in self._listed:
            layer.events.name.disconnect(self.reset_choices)
        self._listed = self._ranked_layers()
        for layer in self._listed:
            layer.events.name.connect(self.reset_choices)
        gone = before is not None and self._position(before) is None
        self.blockSignals(True)
        self.clear()
        self.addItems([NONE] * self.optional + [layer.name for layer in self._listed])
        self.setCurrentIndex(self._index(None if gone else before))
        self.blockSignals(False)
        if gone:  # the choice changed: say so, as a choice by hand would
            self.user_chose = False
            self.currentIndexChanged.emit(self.currentIndex())
            self.currentTextChanged.emit(self.currentText())
        self.refilled.emit()

    def _ranked_layers(self) -> list:
        ranked = [(rank, -i, layer) for i, layer in enumerate(self.viewer.layers)
                  if (rank := self.rank(layer)) is not None]
        return [layer for _, _, layer in sorted(ranked, key=lambda item: item[:2])]

    def _position(self, layer) -> int | None:
        """Where ``layer`` (this very object) is listed, or None."""
        return next((i for i, listed in enumerate(self._listed) if listed is layer), None)

    def _index(self, layer) -> int:
        """The combo index that shows ``layer``: "(none)" or nothing for None."""
        if layer is None:
            return 0 if self.optional else -1
        return self.optional + self._position(layer)

    def layer(self):
        """The chosen layer, or None."""
        index = self.currentIndex() - self.optional
        return self._listed[index] if 0 <= index < len(self._listed) else None

    def choose(self, layer) -> None:
        """Choose ``layer`` (or nothing) as a default: :attr:`user_chose` is unchanged."""
        if layer is not None and self._position(layer) is None:
            self.reset_choices()
        if layer is None or self._position(layer) is not None:
            self.setCurrentIndex(self._index(layer))

    def set_layer(self, layer) -> None:
        """Choose ``layer`` (None: "(none)", or nothing) as the user would."""
        self.reset_choices()
        self.choose(layer)
        self.user_chose = layer is not None or self.optional

    def _on_activated(self, index: int) -> None:
        self.user_chose = True

    def disconnect_viewer(self) -> None:
        """Stop following the layer list."""
        events = self.viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.disconnect(self.reset_choices)
        for layer in self._listed:
            layer.events.name.disconnect(self.reset_choices)
        self._listed = []


def preselect_layers(image_combo: LayerCombo, a_combo: LayerCombo,
                     b_combo: LayerCombo) -> QObject:
    """Keep the three combos filled as layers come and go, with distinct layers.

    Whatever the user chose stays. An empty mask combo takes a Labels layer
    that the other one does not hold: with both empty, the two most
    recently added Labels layers, the older as mask A (as they were opened:
    image, mask A, mask B). Image layers of integers are offered as masks,
    after the Labels, but never chosen by default. An image combo left at
    "(none)" takes the most recently added Image layer whose data do not
    look like labels.

    Returns
    -------
    QObject
        The link, a child of ``a_combo`` (it lives as long as the combos).
    """
    return _LayerChoice(image_combo, a_combo, b_combo)


class _LayerChoice(QObject):
    """:func:`preselect_layers`: fills the empty combos whenever one was refilled."""

    def __init__(self, image_combo: LayerCombo, a_combo: LayerCombo, b_combo: LayerCombo):
        super().__init__(a_combo)
        self.combos = (image_combo, a_combo, b_combo)
        self._filling = False
        for combo in self.combos:
            combo.refilled.connect(self.fill)
        self.fill()

    def fill(self) -> None:
        """Choose a layer for each combo that has none (and that the user did not leave so)."""
        if self._filling:
            return
        self._filling = True
        try:
            for combo in self.combos:
                combo.reset_choices()  # all up to date, whichever heard of the change first
            self._fill_masks()
            self._fill_image()
        finally:
            self._filling = False

    def _fill_masks(self) -> None:
        _, a_combo, b_combo = self.combos
        empty = [combo for combo in (a_combo, b_combo) if _is_open(combo)]
        if not empty:
            return
        taken = {id(combo.layer()) for combo in (a_combo, b_combo)}
        free = [layer for layer in a_combo.candidates(rank=0) if id(layer) not in taken]
        order = {id(layer): i for i, layer in enumerate(a_combo.viewer.layers)}
        picks = sorted(free[:len(empty)], key=lambda layer: order[id(layer)])
        for combo, layer in zip(empty, picks):
            combo.choose(layer)

    def _fill_image(self) -> None:
        image_combo, a_combo, b_combo = self.combos
        if not _is_open(image_combo):
            return
        masks = {id(a_combo.layer()), id(b_combo.layer())}
        free = [layer for layer in image_combo.candidates(rank=0) if id(layer) not in masks]
        if free:
            image_combo.choose(free[0])


def _is_open(combo: LayerCombo) -> bool:
    """No layer chosen, and not by the user's choice."""
    return combo.layer() is None and not combo.user_chose


def _layer_array(layer) -> np.ndarray:
    """The layer's data (level 0 of a multiscale): lazy data (dask) stay lazy."""
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return data if is_lazy(data) else np.asarray(data)


def is_lazy_layer(layer) -> bool:
    """A layer over lazy data (:func:`.._arrays.is_lazy` of its level 0: e.g. a zarr or HDF5
    store opened by our reader): its review is chunked (read by crops, an OME-Zarr output)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return is_lazy(data)


def _source(layer):
    """The file a lazy layer was read from (our reader's ``metadata["path"]``, or napari's
    ``source.path``): its fingerprint is its files' (nothing is read); else the layer's name
    (a lazy array from elsewhere is fingerprinted by its values)."""
    if not is_lazy_layer(layer):
        return layer.name
    path = layer.metadata.get("path") or getattr(getattr(layer, "source", None), "path", None)
    if path and store.is_store_path(path):
        return Path(path)
    return layer.name


def load_from_layers(image, mask_a, mask_b) -> read.MaskPair:
    """Validate the arrays of three layers as :func:`read.load_pair` validates files.

    Parameters
    ----------
    image : napari.layers.Image or None
    mask_a, mask_b : napari.layers.Labels (or Image of integers)

    Returns
    -------
    read.MaskPair
        ``paths`` holds the layer names.

    Raises
    ------
    InputError
        A mask is missing, not 2D/3D, not integer labels, or the shapes differ.
    """
    if mask_a is None or mask_b is None:
        raise InputError("choose a layer for mask A and one for mask B")
    if mask_a is mask_b:
        raise InputError(f"layer {mask_a.name!r} is chosen as both mask A and mask B")
    a = _layer_labels(mask_a)
    b = _layer_labels(mask_b)
    if a.shape != b.shape:
        raise InputError(
            f"layer {mask_b.name!r}: mask B has shape {b.shape} but mask A ({mask_a.name!r}) "
            f"has {a.shape}; both masks must label the same image"
        )
    if is_lazy(a) != is_lazy(b):  # one lazy: both read by crops, in the lazy one's chunks
        import dask.array as da

        a, b = (da.from_array(x, chunks=(b if x is a else a).chunks) if not is_lazy(x) else x
                for x in (a, b))
    img = _layer_image(image, shape=a.shape) if image is not None else None
    scale = tuple(float(s) for s in mask_a.scale[-a.ndim:])
    units = getattr(mask_a, "units", None)
    unit = str(units[-1]) if units else "pixel"
    return read.MaskPair(a, b, None, None, img, scale, "pixel" if unit == "pixel" else unit,
                       {"mask_a": _source(mask_a), "mask_b": _source(mask_b),
                        "image": image.name if image is not None else None})


def _layer_labels(layer) -> np.ndarray:
    data = _layer_array(layer)
    where = f"layer {layer.name!r}"
    if data.ndim not in (2, 3):
        raise InputError(
            f"{where}: mask has {data.ndim} dimensions {data.shape}, expected 2D (y, x) "
            "or 3D (z, y, x)"
        )
    if is_lazy(data):  # checked block by block as it is read
        return as_lazy_labels(data, where, what="mask")
    return read.as_labels(data, where, what="mask")


def _layer_image(layer, *, shape) -> np.ndarray:
    data = _layer_array(layer)
    if data.shape != tuple(shape) and data.shape[:-1] != tuple(shape):
        raise InputError(
            f"layer {layer.name!r}: image shape {data.shape} does not match the masks' shape "
            f"{tuple(shape)} (a trailing channel axis is allowed)"
        )
    return data


def load_from_files(mask_a: Path, mask_b: Path, *, image: Path | None = None) -> read.MaskPair:
    """:func:`read.load_pair` (kept here so that both sources read alike)."""
    return read.load_pair(mask_a, mask_b, image=image)


def output_name(source: Path | str, *, lazy: bool = False) -> str:
    """File name of the curated mask: mask A's file stem, or its layer name, + ``.tif``.

    With ``lazy`` inputs (zarr, HDF5, dask: larger than memory) an OME-Zarr,
    ``.zarr``, written chunk by chunk.

    >>> output_name(Path("d/cells_01.tif"))
    'cells_01.tif'
    >>> output_name("model A: v2")
    'model_A_v2.tif'
    >>> output_name(Path("d/big.zarr"), lazy=True), output_name(Path("f.h5:/seg"), lazy=True)
    ('big.zarr', 'seg.zarr')
    """
    if isinstance(source, Path) and store.is_store_path(source):
        stem = store.store_name(source)
    else:
        stem = source.stem if isinstance(source, Path) else str(source)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
    while "__" in safe:
        safe = safe.replace("__", "_")
    return f"{safe or 'curated'}{'.zarr' if lazy else '.tif'}"
