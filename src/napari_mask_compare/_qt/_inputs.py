"""Inputs of a review: layer pickers that follow the layer list, and loading.

:func:`load_from_layers` and :func:`load_from_files` run off the GUI thread
and return an :class:`~napari_mask_compare.io.MaskPair`; bad input is an
:class:`~napari_mask_compare.io.InputError` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.layers import Image
from qtpy.QtWidgets import QComboBox

from .. import io
from ._view import is_review_layer

__all__ = ["LayerCombo", "load_from_files", "load_from_layers", "output_name"]

NONE = "(none)"


class LayerCombo(QComboBox):
    """A combo box of the viewer's layers of some types, kept up to date.

    Parameters
    ----------
    viewer : napari.Viewer
    kinds : tuple of type
        Layer classes listed (Image layers of integers count as masks when
        ``masks`` is True).
    optional : bool
        Offer "(none)" first.
    masks : bool
        List integer-valued Image layers too (masks opened as images).
    """

    def __init__(self, viewer, *, kinds: tuple[type, ...], optional: bool = False,
                 masks: bool = False, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.kinds = kinds
        self.optional = optional
        self.masks = masks
        self._connected: list = []
        events = viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.connect(self.reset_choices)
        self.reset_choices()

    def _wanted(self, layer) -> bool:
        if is_review_layer(layer):
            return False
        if isinstance(layer, self.kinds):
            return True
        return self.masks and isinstance(layer, Image) and np.dtype(layer.dtype).kind in "biu"

    def reset_choices(self, event=None) -> None:
        """Refill from the layer list, keeping the current choice when it is still there."""
        current = self.currentText()
        for layer in self._connected:
            layer.events.name.disconnect(self.reset_choices)
        self._connected = [layer for layer in self.viewer.layers if self._wanted(layer)]
        for layer in self._connected:
            layer.events.name.connect(self.reset_choices)
        names = [NONE] * self.optional + [layer.name for layer in self._connected]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        self.blockSignals(False)

    def layer(self):
        """The chosen layer, or None."""
        name = self.currentText()
        return next((layer for layer in self._connected if layer.name == name), None)

    def set_layer(self, layer) -> None:
        """Choose ``layer`` (by name)."""
        self.reset_choices()
        self.setCurrentText(NONE if layer is None else layer.name)

    def disconnect_viewer(self) -> None:
        """Stop following the layer list."""
        events = self.viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.disconnect(self.reset_choices)
        for layer in self._connected:
            layer.events.name.disconnect(self.reset_choices)
        self._connected = []


def _layer_array(layer) -> np.ndarray:
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return np.asarray(data)


def load_from_layers(image, mask_a, mask_b) -> io.MaskPair:
    """Validate the arrays of three layers as :func:`io.load_pair` validates files.

    Parameters
    ----------
    image : napari.layers.Image or None
    mask_a, mask_b : napari.layers.Labels (or Image of integers)

    Returns
    -------
    io.MaskPair
        ``paths`` holds the layer names.

    Raises
    ------
    io.InputError
        A mask is missing, not 2D/3D, not integer labels, or the shapes differ.
    """
    if mask_a is None or mask_b is None:
        raise io.InputError("choose a layer for mask A and one for mask B")
    if mask_a is mask_b:
        raise io.InputError(f"layer {mask_a.name!r} is chosen as both mask A and mask B")
    a = _layer_labels(mask_a)
    b = _layer_labels(mask_b)
    if a.shape != b.shape:
        raise io.InputError(
            f"layer {mask_b.name!r}: mask B has shape {b.shape} but mask A ({mask_a.name!r}) "
            f"has {a.shape}; both masks must label the same image"
        )
    img = _layer_image(image, shape=a.shape) if image is not None else None
    scale = tuple(float(s) for s in mask_a.scale[-a.ndim:])
    units = getattr(mask_a, "units", None)
    unit = str(units[-1]) if units else "pixel"
    return io.MaskPair(a, b, None, None, img, scale, "pixel" if unit == "pixel" else unit,
                       {"mask_a": mask_a.name, "mask_b": mask_b.name,
                        "image": image.name if image is not None else None})


def _layer_labels(layer) -> np.ndarray:
    data = _layer_array(layer)
    where = f"layer {layer.name!r}"
    if data.ndim not in (2, 3):
        raise io.InputError(
            f"{where}: mask has {data.ndim} dimensions {data.shape}, expected 2D (y, x) "
            "or 3D (z, y, x)"
        )
    return io.as_labels(data, where, what="mask")


def _layer_image(layer, *, shape) -> np.ndarray:
    data = _layer_array(layer)
    if data.shape != tuple(shape) and data.shape[:-1] != tuple(shape):
        raise io.InputError(
            f"layer {layer.name!r}: image shape {data.shape} does not match the masks' shape "
            f"{tuple(shape)} (a trailing channel axis is allowed)"
        )
    return data


def load_from_files(mask_a: Path, mask_b: Path, *, image: Path | None = None) -> io.MaskPair:
    """:func:`io.load_pair` (kept here so that both sources read alike)."""
    return io.load_pair(mask_a, mask_b, image=image)


def output_name(source: Path | str) -> str:
    """File name of the curated mask: mask A's file stem, or its layer name, + ``.tif``.

    >>> output_name(Path("d/cells_01.tif"))
    'cells_01.tif'
    >>> output_name("model A: v2")
    'model_A_v2.tif'
    """
    stem = source.stem if isinstance(source, Path) else str(source)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")
    while "__" in safe:
        safe = safe.replace("__", "_")
    return f"{safe or 'curated'}.tif"
