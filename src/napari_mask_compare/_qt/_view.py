"""The review view: layers for A, B and the curated output, focused on one group.

Side by side (``viewer.canvas.grid``, one row, the cells a few pixels apart):
image + A in red on the left, image + B in green in the middle, image + the
curated output on the right, each titled on the canvas (the name overlay of its
Labels layer: "A: <name>" in red, "B: <name>" in green, "curated"). The
overlay view shows one image with A and B as red and green contours and the
output over them, the three titles spread along the top as a legend. The
layers hold the whole arrays (no copies): moving to a group moves the camera,
and in 3D limits the z-slider to the group's slices (``dims.range`` of axis 0)
and shows the slice where its objects overlap most; the slider's numbers are
the real z of the stack, and the axes are named z, y, x. Nothing is re-sliced
in 2D, and in 3D one slice change re-slices the layers once, which keeps
moving between groups cheap on 1024 x 1024 planes. :meth:`ReviewView.refit`
fits the group again (after the canvas was resized).

The curated layer holds a copy of the session's output, kept up to date region
by region (:meth:`ReviewView.refresh_output`), and is editable: napari's brush,
eraser and fill write into the copy only, and the widget routes each stroke
through the review, so the session's array changes only once the edit is
journaled (and a background save never sees half a stroke). A and B are
read-only, as they are the inputs.

The pure part (:func:`group_focus`) has no viewer and is tested alone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from napari.components.overlays import TextOverlay
from napari.layers import Image, Labels
from napari.utils.colormaps import CyclicLabelColormap, DirectLabelColormap
from napari.utils.colormaps.standardize_color import transform_color

from .. import colours
from .._arrays import is_lazy
from ..disagreement import legend
from ._crops import intersect

__all__ = ["Focus", "ReviewView", "box_focus", "disagreement_colormap", "group_focus",
           "highlight_colors", "is_review_layer", "layer_features", "make_review_layers"]

#: Key set in the ``metadata`` of the layers this view adds (and removes).
_MARK = "napari_mask_compare_review"
#: Title colours of the panels on the canvas (the colours of their objects).
_TITLE_COLORS = {"a": colours.A, "b": colours.B, "output": colours.CURATED}
#: Where the titles go: in the grid each in its cell; in the overlay view spread out.
_TITLE_POSITIONS = {"grid": {"a": "top_left", "b": "top_left", "output": "top_left"},
                    "overlay": {"a": "top_left", "b": "top_right", "output": "top_center"}}
#: Pixels between the cells of the grid.
_GRID_SPACING = 8

#: Objects outside the current group, per side: dim, see-through.
_DIM = {"a": colours.A_DIM, "b": colours.B_DIM}
#: Colours in the cyclic label colormaps (a prime: ids that share a colour are rare).
_N_COLORS = 4093
_SIDE_OPACITY = 0.6
#: Direct colormaps kept for reuse (a few MB each with 30,000 objects).
_KEPT_COLORMAPS = 8
#: Key prefix of the canvas overlays of the colour-by-disagreement legend.
_LEGEND = "mask_compare_legend_"
_OUTPUT_OVERLAY_OPACITY = 0.35


@dataclass(frozen=True)
class Focus:
    """Where to look at a group.

    Attributes
    ----------
    center : tuple of float
        (y, x) centre of the bounding box, in data coordinates.
    size : tuple of float
        (height, width) of the bounding box plus the margin on each side.
    z_range : tuple of int or None
        First and last slice of the group (3D only).
    z : int or None
        Slice where the group's A and B objects overlap most (3D only).
    """

    center: tuple[float, float]
    size: tuple[float, float]
    z_range: tuple[int, int] | None = None
    z: int | None = None


def group_focus(group, *, a: np.ndarray, b: np.ndarray, margin: int = 15) -> Focus:
    """Camera centre, field of view and best slice for a review group.

    Parameters
    ----------
    group : pairing.Group
    a, b : ndarray, shape (y, x) or (z, y, x)
        The masks the group was made from.
    margin : int
        Voxels shown around the bounding box, on each side.

    Returns
    -------
    Focus

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> a = np.zeros((4, 10, 10), int); a[1:3, 2:5, 2:6] = 1
    >>> b = np.zeros_like(a); b[2:4, 2:5, 3:6] = 7
    >>> g = SimpleNamespace(bbox=(1, 2, 2, 4, 5, 6), ids_a=(1,), ids_b=(7,))
    >>> group_focus(g, a=a, b=b, margin=2)
    Focus(center=(3.0, 3.5), size=(7, 8), z_range=(1, 3), z=2)
    """
    focus = box_focus(group, ndim=a.ndim, margin=margin)
    if a.ndim == 2:
        return focus
    return Focus(focus.center, focus.size, focus.z_range,
                 focus.z_range[0] + _best_slice(group, a, b))


def box_focus(group, *, ndim: int, margin: int = 15) -> Focus:
    """Centre, field of view and slices of a group from its box alone (no voxel read).

    As :func:`group_focus` without the best slice (``z`` None): e.g. to read
    a group's crop ahead of showing it.

    >>> from types import SimpleNamespace
    >>> box_focus(SimpleNamespace(bbox=(1, 2, 2, 4, 5, 6)), ndim=3, margin=2)
    Focus(center=(3.0, 3.5), size=(7, 8), z_range=(1, 3), z=None)
    """
    lo, hi = group.bbox[:ndim], group.bbox[ndim:]
    center = tuple((lo[i] + hi[i] - 1) / 2 for i in (-2, -1))
    size = tuple(hi[i] - lo[i] + 2 * margin for i in (-2, -1))
    if ndim == 2:
        return Focus(center, size)
    return Focus(center, size, (lo[0], hi[0] - 1))


def _best_slice(group, a: np.ndarray, b: np.ndarray) -> int:
    """Index, within the group's box, of the slice of largest A-B overlap.

    Unpaired groups (one side empty) take the slice where the object is largest.
    """
    region = tuple(slice(lo, hi) for lo, hi in zip(group.bbox[:3], group.bbox[3:]))
    in_a = np.isin(a[region], group.ids_a) if group.ids_a else None
    in_b = np.isin(b[region], group.ids_b) if group.ids_b else None
    if in_a is not None and in_b is not None:
        per_slice = np.count_nonzero(in_a & in_b, axis=(1, 2))
        if not per_slice.any():
            per_slice = np.count_nonzero(in_a | in_b, axis=(1, 2))
    else:
        per_slice = np.count_nonzero(in_a if in_a is not None else in_b, axis=(1, 2))
    return int(np.argmax(per_slice))


def is_review_layer(layer) -> bool:
    """True for the layers a :class:`ReviewView` added."""
    return bool(layer.metadata.get(_MARK, False))


def highlight_colors(ids, *, role: str, picked=()) -> np.ndarray:
    """Colours of a cyclic label colormap that pick out ``ids`` on one side.

    Label ``i`` takes colour ``(i - 1) % N + 1`` (napari's cyclic colormap,
    colour 0 being the background); the group's ids get bright shades in turn,
    every other id the dim colour of its side, and the ``picked`` ids white.

    Returns
    -------
    ndarray of float32, shape (N + 1, 4)

    >>> colors = highlight_colors([5, 6], role="a", picked=[6])
    >>> colors.shape, [round(float(alpha), 2) for alpha in colors[[0, 5, 7], 3]]
    ((4094, 4), [0.0, 1.0, 0.4])
    >>> colors[6].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    colors = _BASE_COLORS[role].copy()
    shades = _SHADES[role]
    for k, label in enumerate(ids):
        colors[_slot(label)] = shades[k % len(shades)]
    for label in picked:
        colors[_slot(label)] = colours.PICKED
    return colors


def _slot(label) -> int:
    """The colour of ``label`` in a cyclic colormap of :data:`_N_COLORS` colours."""
    return (int(label) - 1) % _N_COLORS + 1


def disagreement_colormap(ids, rgba, *, picked=()) -> DirectLabelColormap:
    """One colour per object (its IoU bin, see :mod:`..disagreement`), ``picked`` ids white.

    Parameters
    ----------
    ids : ndarray of int, shape (n,)
    rgba : ndarray of float, shape (n, 4)
    picked : iterable of int

    Returns
    -------
    DirectLabelColormap
        Background and ids not listed are transparent.

    >>> cmap = disagreement_colormap(np.array([3, 9]), np.array([[1, 0, 0, 1], [0, 0, 1, 1]]),
    ...                              picked=[9])
    >>> cmap.map(np.array([0, 3, 9, 4]))[:, :3].tolist()
    [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """
    colors = {None: colours.TRANSPARENT, 0: colours.TRANSPARENT}
    colors.update(zip(np.asarray(ids).tolist(), np.asarray(rgba, dtype=np.float32)))
    colors.update(dict.fromkeys((int(label) for label in picked), colours.PICKED))
    return DirectLabelColormap(color_dict=colors)


def _base_colors(role: str) -> np.ndarray:
    colors = np.empty((_N_COLORS + 1, 4), dtype=np.float32)
    colors[:] = _DIM[role]
    colors[0] = colours.TRANSPARENT
    return colors


_BASE_COLORS = {role: _base_colors(role) for role in ("a", "b")}
_SHADES = {"a": transform_color(colours.A_SHADES), "b": transform_color(colours.B_SHADES)}


def _picked_ids(picked, role: str) -> tuple[int, ...]:
    """The ids of ``role``'s side ("a" -> "A") among ``picked`` (side, id), sorted."""
    side = role.upper()
    return tuple(sorted(int(label) for s, label in picked if s == side))


def _cyclic(colors: np.ndarray) -> CyclicLabelColormap:
    return CyclicLabelColormap(colors=colors, background_value=0)


def _grid(viewer):
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def _camera(viewer):
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _text_overlay(viewer):
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    if overlays is not None and hasattr(overlays, "text"):
        return overlays.text
    return getattr(viewer, "text_overlay", None)


def make_review_layers(*, a, b, output, image=None, scale=None,
                       names: tuple[str, str] = ("A", "B"), crops: bool = False) -> dict:
    """The review's layers, not yet in a viewer (safe to call off the GUI thread).

    Names are short and distinct (they title the panels): "A: <name of A>",
    "B: <name of B>", "curated", and "image · A" (· B, · curated) for the
    image under each.

    With ``crops`` (a review larger than memory) the layers hold a one-voxel
    placeholder each: :class:`ReviewView` puts each group's crops in them
    (``a``, ``b``, ``output`` and ``image`` are then only read for their
    shape and dtype, and a few blocks of the image for its contrast).

    Returns
    -------
    dict
        Role -> layer, in grid order: ``image_a``, ``a``, ``image_b``, ``b``,
        ``image_output``, ``output`` (no image roles without an image).
    """
    scale = tuple(np.asarray(scale if scale is not None else (1.0,) * a.ndim, dtype=float))
    layers = {}
    if image is not None:
        image = _display_image(image, ndim=a.ndim)
        image_kwargs = _image_kwargs(image, ndim=a.ndim)
        if crops:
            image = np.zeros((1,) * a.ndim + image.shape[a.ndim:], dtype=image.dtype)
    if crops:
        a, b, output = (np.zeros((1,) * a.ndim, dtype=x.dtype) for x in (a, b, output))
    cells = (("a", a, f"A: {names[0]}", True), ("b", b, f"B: {names[1]}", True),
             ("output", output, "curated", False))
    for role, data, name, side in cells:
        if image is not None:
            panel = role.upper() if side else "curated"
            layers[f"image_{role}"] = Image(
                image, name=f"image · {panel}", scale=scale, metadata={_MARK: True},
                **image_kwargs)
        kwargs = {"colormap": _cyclic(highlight_colors((), role=role))} if side else {}
        layers[role] = Labels(data, name=name, scale=scale, metadata={_MARK: True}, **kwargs)
        layers[role].editable = not side  # the inputs are not painted on
        _title(layers[role], color=_TITLE_COLORS[role])
    return layers


def _batched(layers):
    """napari's batched update of a layer list (its canvas cleans up and redraws once at the
    end: a full garbage collection per removed layer otherwise); nothing where it lacks one."""
    batched = getattr(layers, "batched_update", None)
    return batched() if batched is not None else contextlib.nullcontext()


def _title(layer, *, color: str) -> None:
    """Show the layer's name on the canvas, in its grid cell (napari's name overlay)."""
    overlay = getattr(layer, "name_overlay", None)
    if overlay is not None:
        overlay.color = color
        overlay.visible = True


class ReviewView:
    """The review layers in a viewer, and the camera and slider on a group.

    Parameters
    ----------
    viewer : napari.Viewer or ViewerModel
    a, b : ndarray, shape (y, x) or (z, y, x)
        The masks (shown, not copied).
    output : ndarray
        A copy of the session's output (shown, not copied again).
    image : ndarray, optional
        Shape ``a.shape`` or with a trailing channel axis.
    scale : tuple of float, optional
        Voxel size, one per axis of ``a``.
    margin : int
    names : tuple of str
        Names of A and B for the layer names.
    layers : dict, optional
        Made beforehand by :func:`make_review_layers` (e.g. in a worker);
        ``output`` and ``image`` are then not used.
    insert : bool
        Put the layers in the viewer now; otherwise step through
        :meth:`open_steps` (one layer per step, so that the GUI can breathe).
    crops : ._crops.Crops, optional
        A review larger than memory: the layers (made with ``crops=True``)
        hold each group's crop, read on :meth:`show` (``a`` and ``b`` are
        then not used: ``crops.a`` and ``crops.b`` are read region by region).

    Notes
    -----
    The viewer's other layers are hidden while the view is open (the grid
    would give each visible one a cell) and shown again by :meth:`close`, which
    also restores the grid (with its spacing), the dims (their axis names and
    napari's slider labels) and the text overlay.
    """

    def __init__(self, viewer, *, a, b, output=None, image=None, scale=None, margin: int = 15,
                 names: tuple[str, str] = ("A", "B"), layers: dict | None = None,
                 insert: bool = True, crops=None):
        self.viewer = viewer
        self.crops = crops
        self.a, self.b = (a, b) if crops is None else (crops.a, crops.b)
        #: The region the layers hold (the whole volume without ``crops``).
        self.crop_region = tuple(slice(0, n) for n in self.a.shape)
        self.margin = int(margin)
        self.scale = np.asarray(scale if scale is not None else (1.0,) * a.ndim, dtype=float)
        self.overlay = False
        self.layers = layers if layers is not None else make_review_layers(
            a=a, b=b, output=output, image=image, scale=self.scale, names=names)
        self._saved = None
        self._focus: Focus | None = None
        self._z_range: tuple[int, int] | None = None
        self.group = None  # the group shown
        self._picked: frozenset[tuple[str, int]] = frozenset()
        #: Colour by disagreement: role -> (ids, rgba) of every object; None when off.
        self._disagreement: dict | None = None
        self._colormap_of: dict[str, tuple] = {}  # role -> (what it shows, colormap)
        self._prebuilt: dict[tuple, DirectLabelColormap] = {}  # (role, picked ids) -> made
        self._prebuilt_of = None  # the colours they were made of
        if insert:
            for _ in self.open_steps():
                pass

    def open_steps(self):
        """Put the layers in the viewer, one per step (a generator).

        The canvas is not repainted until the last step: drawing a half-built
        review (grid off, some layers in) after an earlier review in the same
        viewer crashed Mesa's llvmpipe in ``glDrawArrays`` (napari 0.9.2).
        """
        self._saved = self._save_viewer_state()
        canvas = self.canvas_widget()
        if canvas is not None:
            canvas.setUpdatesEnabled(False)
        try:
            for index, layer in enumerate(self.layers.values()):
                self.viewer.layers.insert(index, layer)
                # every re-slice would repaint the layer list's thumbnails (~0.7 ms
                # a layer): the review layers keep their first one
                layer.events.thumbnail.block()
                yield layer
            yield None  # the grid and the first paint get a turn of their own
            self._apply_mode()
            self._name_axes()
        finally:
            if canvas is not None:
                canvas.setUpdatesEnabled(True)

    def canvas_widget(self):
        """The Qt widget of the canvas, None without a window."""
        qt_viewer = getattr(getattr(self.viewer, "window", None), "_qt_viewer", None)
        return getattr(getattr(qt_viewer, "canvas", None), "native", None)

    def _save_viewer_state(self) -> dict:
        grid = _grid(self.viewer)
        text = _text_overlay(self.viewer)
        hidden = [layer for layer in self.viewer.layers if layer.visible]
        for layer in hidden:
            layer.visible = False
        return {
            "grid": (grid.enabled, grid.stride, tuple(grid.shape), grid.spacing),
            "visible": hidden,
            "ndisplay": self.viewer.dims.ndisplay,
            "axis_labels": tuple(self.viewer.dims.axis_labels),
            "text": (text.visible, text.text, text.position) if text is not None else None,
        }

    def _name_axes(self) -> None:
        """Name the axes z, y, x (y, x in 2D) while the review shows."""
        dims = self.viewer.dims
        names = ("z", "y", "x")[-self.a.ndim:]
        if dims.ndim >= len(names):
            dims.axis_labels = (*tuple(dims.axis_labels)[:dims.ndim - len(names)], *names)

    def close(self) -> None:
        """Remove the review layers and give the viewer back as it was.

        The grid goes first: removing the last layers of a viewer in grid mode
        leaves a canvas that crashes the next draw (napari 0.9.2, Mesa).
        """
        self.stop_reading()
        if self._saved is None:  # never opened
            return
        enabled, stride, shape, spacing = self._saved["grid"]
        grid = _grid(self.viewer)
        grid.enabled = False
        self._label_slider(restore=True)
        with _batched(self.viewer.layers):  # the canvas rebuilt once, not once per layer
            for layer in self.layers.values():
                layer.events.thumbnail.unblock()
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
        grid.stride, grid.shape, grid.spacing = stride, shape, spacing
        grid.enabled = enabled
        if len(self._saved["axis_labels"]) == self.viewer.dims.ndim:
            self.viewer.dims.axis_labels = self._saved["axis_labels"]
        for layer in self._saved["visible"]:
            if layer in self.viewer.layers:
                layer.visible = True
        self.viewer.dims.ndisplay = self._saved["ndisplay"]
        text = _text_overlay(self.viewer)
        if text is not None and self._saved["text"] is not None:
            text.visible, text.text, text.position = self._saved["text"]
        self._show_legend(())

    # ------------------------------------------------------------------ modes

    def set_overlay(self, overlay: bool) -> bool:
        """Overlay view (one image, A and B contours) or side by side (grid).

        Returns
        -------
        bool
            True when the view changed (the group is then fitted again by :meth:`show`).
        """
        if bool(overlay) == self.overlay:
            return False
        self.overlay = bool(overlay)
        self._apply_mode()
        return True

    def _apply_mode(self) -> None:
        grid = _grid(self.viewer)
        has_image = "image_a" in self.layers
        side = not self.overlay
        for role in ("a", "b"):
            layer = self.layers[role]
            layer.contour = 0 if side else 1
            layer.opacity = _SIDE_OPACITY if side else 1.0
        self.layers["output"].opacity = _SIDE_OPACITY if side else _OUTPUT_OVERLAY_OPACITY
        if has_image:
            self.layers["image_b"].visible = side
            self.layers["image_output"].visible = side
        positions = _TITLE_POSITIONS["grid" if side else "overlay"]
        for role, position in positions.items():
            overlay = getattr(self.layers[role], "name_overlay", None)
            if overlay is not None:
                overlay.position = position
        self.viewer.dims.ndisplay = 2
        grid.stride = 2 if has_image else 1
        grid.shape = (1, 3)
        grid.spacing = _GRID_SPACING
        grid.enabled = side

    # ------------------------------------------------------------------ focus

    def show(self, group, *, picked=()) -> bool:
        """Centre and zoom on ``group``; in 3D limit the z-slider to it.

        Parameters
        ----------
        group : pairing.Group
        picked : iterable of (side, id)
            The group's objects picked into the output (``"A"``/``"B"``, id):
            drawn white in their panel.

        Returns
        -------
        bool
            True when the slice changed, i.e. every layer was read again.
        """
        focus = group_focus(group, a=self.a, b=self.b, margin=self.margin)
        resliced = False
        cropped = self.crops is not None
        if cropped:  # the layers hold the new crops, not yet sliced (or, should a chunk
            # fail to read, errors.InputError, the old ones: nothing changed)
            self._show_crop(self.crops.region(focus, visible=self._visible(focus)))
        self.group, self._picked = group, frozenset(picked)
        self._highlight(group, redraw=focus.z_range is None and not cropped)
        if focus.z_range is not None:
            before = self.viewer.dims.point[0]
            self._set_z(focus.z_range, focus.z)
            resliced = self.viewer.dims.point[0] != before
            self._label_slider()
        if cropped and not resliced:
            for layer in self.layers.values():
                layer.refresh()
            resliced = True
        self._focus = focus
        self._set_camera(focus)
        return resliced

    @property
    def crop_origin(self) -> tuple[int, ...]:
        """Where the layers' data start in the volume (zeros without crops)."""
        return tuple(s.start for s in self.crop_region)

    def _visible(self, focus: Focus) -> tuple[float, float]:
        """What the camera will show around ``focus``, in voxels (height, width)."""
        viewbox = np.asarray(self._viewbox_size(), dtype=float)
        zoom = self._fit_zoom(focus)
        return tuple(viewbox / zoom / self.scale[-2:])

    def _show_crop(self, region: tuple[slice, ...]) -> None:
        """Read ``region`` of A, B, the output (and the image) into the layers, unsliced.

        Each layer's ``translate`` and data are set without a refresh (the
        transform event still moves the canvas node); the viewer's dims follow
        the layers' new extents once, after all of them changed, and
        :meth:`show` re-slices every layer once (the slice change, or a refresh).
        """
        crop = self.crops.read(region, display_image=partial(
            _display_image, ndim=len(self.crop_region)))
        self.crop_region = region
        translate = np.multiply(crop.origin, self.scale)
        follow = getattr(self.viewer, "_on_layers_change", None)
        for role, layer in self.layers.items():
            data = crop.data["image" if role.startswith("image_") else role]
            with contextlib.ExitStack() as stack:
                if follow is not None:  # once, below
                    for emitter in (layer.events.translate, layer.events.data):
                        stack.enter_context(emitter.blocker(follow))
                block = getattr(layer, "_block_refresh", None)
                if block is not None:
                    stack.enter_context(block())
                layer.translate = translate
                layer.data = data
        if follow is not None:
            follow()

    def read_ahead(self, groups) -> None:
        """Read the crops of ``groups`` (shown next, in order) in the background.

        Nothing without crops (the layers hold the whole arrays).
        """
        if self.crops is not None:
            self.crops.prefetch([box_focus(group, ndim=self.a.ndim, margin=self.margin)
                                 for group in groups])

    def stop_reading(self) -> None:
        """No more reading ahead (before the review closes)."""
        if self.crops is not None:
            self.crops.close()

    def refit(self) -> None:
        """Centre and zoom on the group shown again (e.g. the canvas was resized)."""
        if self._focus is not None:
            self._set_camera(self._focus)

    def step_slice(self, delta: int) -> bool:
        """Go ``delta`` slices up or down within the group's slices (3D).

        Returns
        -------
        bool
            False in 2D, or at the end of the group's slices.
        """
        if self.a.ndim != 3 or self._z_range is None:
            return False
        dims = self.viewer.dims
        step = dims.current_step[0]
        dims.set_current_step(0, step + int(delta))
        return dims.current_step[0] != step

    def slice_z(self) -> int | None:
        """The slice shown, as a z index of the stack (None in 2D)."""
        if self.a.ndim != 3:
            return None
        return int(round(self.viewer.dims.point[0] / float(self.scale[0])))

    def _label_slider(self, *, restore: bool = False) -> None:
        """Show the real z on the z-slider (napari counts from the start of its range).

        While the review runs the slider's numbers read "z | last z of the
        group" in the stack's coordinates, as napari's hover shows them (the
        voxel size applied: slice 7 of a 2 µm stack is z 14), and its number
        field (which napari reads as a step of the range) is read-only;
        ``restore`` gives napari its own labels back.
        """
        widget = self._qt_slider_widget(0)
        if widget is None or self.a.ndim != 3:
            return
        current, total = widget.curslice_label, widget.totslice_label
        if restore:  # napari relabels the slider when the review layers go
            current.setReadOnly(False)
            current.setToolTip("Current slice for axis 0")
            return
        current.setReadOnly(True)
        step = float(self.scale[0])
        current.setText(f"{self.viewer.dims.point[0]:g}")
        if self._z_range is not None:
            lo, hi = self._z_range
            total.setText(f"{hi * step:g}")
            tip = (f"z {self.viewer.dims.point[0]:g} (slice {self.slice_z()} of "
                   f"0–{self.a.shape[0] - 1}); the slider spans the group's slices "
                   f"{lo}–{hi} (z {lo * step:g}–{hi * step:g}); ↑/↓ or ,/. step through them")
            current.setToolTip(tip)
            total.setToolTip(tip)
        # napari sizes them for the digits of the slider's steps, not of the real z
        widest = max((f"{(self.a.shape[0] - 1) * step:g}", current.text()), key=len)
        width = current.fontMetrics().boundingRect("8" * len(widest)).width() + 10
        for label in (current, total):
            label.setFixedWidth(width)

    def on_dims_changed(self) -> None:
        """The slider moved or its range changed: its labels show the real z again."""
        if self._saved is not None and self._z_range is not None:
            self._label_slider()

    def mark_picked(self, picked) -> None:
        """The objects of the group shown that are picked (white), the camera left alone.

        Parameters
        ----------
        picked : iterable of (side, id)
        """
        self._picked = frozenset(picked)
        if self.group is not None:
            self._highlight(self.group, redraw=True)

    def set_disagreement(self, colors: dict | None, *, colormaps: dict | None = None,
                         picked=frozenset()) -> None:
        """Colour by disagreement: every object of A and B in its own colour, or back.

        Parameters
        ----------
        colors : dict or None
            ``{"a": (ids, rgba), "b": (ids, rgba)}`` (see
            :meth:`..disagreement.ObjectIoU.colors`): each object in its
            colour over the whole image, the legend on the canvas; None gives
            the group highlight back (the group bright, the rest dim).
        colormaps : dict, optional
            Role -> :func:`disagreement_colormap` of ``colors`` already made
            (in a worker) with the ``picked`` objects white; used while those
            are the picks shown.
        picked : frozenset of (side, id)
        """
        if colors is not None and colors is not self._prebuilt_of:
            self._prebuilt.clear()  # made of other colours
            self._prebuilt_of = colors
        self._disagreement = colors
        self._prebuilt.update({
            (role, _picked_ids(picked, role)): colormap
            for role, colormap in (colormaps or {}).items()})
        self._show_legend(legend() if colors is not None else ())
        if self.group is not None:
            self._highlight(self.group, redraw=True)

    @property
    def disagreement(self) -> bool:
        """True while the objects are coloured by disagreement."""
        return self._disagreement is not None

    def _show_legend(self, entries) -> None:
        """The legend of the colours, one line per colour, at the canvas' bottom right."""
        overlays = getattr(getattr(self.viewer, "canvas", None), "overlays", None)
        if overlays is None:
            return
        for key in [key for key in overlays if str(key).startswith(_LEGEND)]:
            overlays.pop(key)
        # napari stacks the overlays of a corner from the bottom up: best last, on top
        for k, (text, color) in enumerate(reversed(list(entries))):
            overlays[f"{_LEGEND}{k}"] = TextOverlay(
                text=text, color=color, position="bottom_right", visible=True, font_size=10)

    def _colormap(self, role: str, group):
        """The colormap of ``role`` ("a" or "b") for ``group``: the last one when unchanged."""
        picked = _picked_ids(self._picked, role)
        if self._disagreement is None:
            ids = group.ids_a if role == "a" else group.ids_b
            key = ("group", tuple(ids), picked)
        else:
            key = ("disagreement", id(self._disagreement), picked)
        last = self._colormap_of.get(role)
        if last is not None and last[0] == key:
            return None
        if key[0] == "group":
            colormap = _cyclic(highlight_colors(ids, role=role, picked=picked))
        else:
            colormap = self._prebuilt.get((role, picked))
            if colormap is None:  # kept: the next toggle, or an undo, finds it made
                if len(self._prebuilt) >= _KEPT_COLORMAPS:
                    self._prebuilt.clear()
                colormap = self._prebuilt[role, picked] = disagreement_colormap(
                    *self._disagreement[role], picked=picked)
        self._colormap_of[role] = (key, colormap)
        return colormap

    def object_at(self, position, *, viewbox=None) -> tuple[str, int] | None:
        """The object of A or B under a point of the canvas.

        Parameters
        ----------
        position : sequence of float
            World coordinates (napari's mouse event ``position``).
        viewbox : tuple of int, optional
            Grid cell of the point (the event's ``viewbox``).

        Returns
        -------
        (role, id) or None
            ``role`` "a" or "b". Side by side, the panel under the point
            (None on the curated one); in the overlay view the selected layer
            when it is A or B, otherwise A first, then B.
        """
        for role in self._roles_at(viewbox):
            value = self.layers[role].get_value(position, world=True)
            if value is not None and int(value) > 0:
                return role, int(value)
        return None

    def _roles_at(self, viewbox) -> list[str]:
        grid = _grid(self.viewer)
        if grid.enabled:
            if viewbox is None:
                return []
            layers = list(self.viewer.layers)
            here = {id(layers[i]) for i in grid.contents_at(tuple(viewbox), layers)}
            return [role for role in ("a", "b") if id(self.layers[role]) in here]
        active = self.viewer.layers.selection.active
        return ["b", "a"] if active is self.layers["b"] else ["a", "b"]

    def _highlight(self, group, *, redraw: bool) -> None:
        """Bright shades for the group's objects, dim for the rest, picked ones white.

        With colour by disagreement, every object its colour instead. The
        number of colours never changes, so the sliced data stays valid
        and only the colour table is replaced: the layers are not re-sliced
        (``redraw`` False skips even that when a slice change follows). A
        colormap that would not change is not set again; a direct colormap
        (colour by disagreement) is set with a re-slice, as napari needs.
        """
        for role in ("a", "b"):
            layer = self.layers[role]
            colormap = self._colormap(role, group)
            if colormap is None:
                continue
            block = getattr(layer, "_block_refresh", None)
            if block is None or not isinstance(colormap, CyclicLabelColormap) \
                    or not isinstance(layer.colormap, CyclicLabelColormap):
                # napari slices data for a direct colormap otherwise: sliced again
                layer.colormap = colormap
                continue
            # the selected label does not change: its event would only redo the
            # colour table and the polygon tool's colour a second time
            with block(), layer.events.selected_label.blocker():
                layer.colormap = colormap
            if redraw:
                layer.events.set_data()

    def _set_z(self, z_range: tuple[int, int], z: int) -> None:
        """Limit axis 0 to ``z_range`` and go to slice ``z`` with one re-slice.

        If the new point is outside the current range, the range first grows to
        hold both (nothing is clamped, nothing re-sliced); the point moves (one
        re-slice), then the range shrinks around it. The Qt slider is kept
        quiet meanwhile: on a range change it clamps its old index before
        taking the new one, and its signal would move the point (napari 0.9.2).
        """
        dims = self.viewer.dims
        step = float(self.scale[0])
        lo, hi = z_range[0] * step, z_range[1] * step
        old = dims.range[0]
        ranges = list(dims.range)
        slider = self._qt_slider(0)
        blocked = slider.blockSignals(True) if slider is not None else None
        try:
            # current_step follows point and range; its event only repeats the
            # point's (napari re-slices on both): one is sent at the end if needed
            with dims.events.current_step.blocker():
                if not old.start <= z * step <= old.stop:
                    ranges[0] = (min(lo, old.start), max(hi, old.stop), step)
                    dims.range = tuple(ranges)
                before = dims.range[0]
                dims.set_point(0, z * step)
                ranges[0] = (lo, hi, step)
                dims.range = tuple(ranges)
            if (before.start, before.stop) == (lo, hi):  # no range event moved the slider
                dims.events.current_step(value=dims.current_step)
        finally:
            if slider is not None:
                slider.blockSignals(blocked)
        self._z_range = z_range

    def _qt_slider(self, axis: int):
        """The QSlider of a dims axis, None without a Qt window."""
        return getattr(self._qt_slider_widget(axis), "slider", None)

    def _qt_slider_widget(self, axis: int):
        """napari's slider widget of a dims axis (slider and labels), None without a window."""
        qt_viewer = getattr(getattr(self.viewer, "window", None), "_qt_viewer", None)
        widgets = getattr(getattr(qt_viewer, "dims", None), "slider_widgets", None)
        if not widgets or axis >= len(widgets):
            return None
        return widgets[axis]

    def _set_camera(self, focus: Focus) -> None:
        """Centre on the box; zoom to fit it, in steps of 2**(1/4) (a zoom that does
        not change is not sent to the canvas: neighbours of a size keep it)."""
        camera = _camera(self.viewer)
        camera.center = tuple(np.multiply(focus.center, self.scale[-2:]))
        zoom = self._fit_zoom(focus)
        if not np.isclose(camera.zoom, zoom, rtol=1e-6):
            camera.zoom = zoom

    def _fit_zoom(self, focus: Focus) -> float:
        """The zoom that fits ``focus`` in a canvas cell, in steps of 2**(1/4)."""
        world_size = np.multiply(focus.size, self.scale[-2:])
        viewbox = np.asarray(self._viewbox_size(), dtype=float)
        fit = 0.95 * np.min(viewbox / np.maximum(world_size, 1e-9))
        return float(2.0 ** (np.floor(4 * np.log2(max(fit, 1e-6))) / 4))

    def _viewbox_size(self) -> tuple[float, float]:
        canvas = getattr(self.viewer, "canvas", None)
        if canvas is not None and hasattr(canvas, "viewbox_size"):
            return canvas.viewbox_size(self.viewer.layers)
        return self.viewer._canvas_size  # napari < 0.9

    def set_caption(self, text: str) -> None:
        """Show ``text`` in the canvas' bottom left corner (the titles hold the top)."""
        overlay = _text_overlay(self.viewer)
        if overlay is None:
            return
        overlay.text = text
        overlay.position = "bottom_left"
        overlay.visible = True

    # ------------------------------------------------------------------ output

    def refresh_output(self, output: np.ndarray, *, regions=(), redraw: bool = True,
                       features=None) -> None:
        """Bring the output layer's copy up to date with the session's ``output``.

        Parameters
        ----------
        output : ndarray, shape of the masks
            The session's output (it may have become a wider array).
        regions : sequence of tuple of slice
            Where it changed since the last call; copied into the layer.
        redraw : bool
            False when the layer was just re-sliced anyway.
        features : dict, optional
            New layer features (see :func:`layer_features`).
        """
        layer = self.layers["output"]
        shown = layer.data
        if self.crops is not None:
            self._refresh_crop(regions, redraw=redraw)
        elif shown.shape != output.shape or shown.dtype != output.dtype:
            layer.data = output.copy()
        else:
            for region in regions:
                shown[region] = output[region]
            if redraw:
                layer.refresh()
        if features is not None:
            layer.features = layer_features(features)

    def _refresh_crop(self, regions, *, redraw: bool) -> None:
        """The parts of ``regions`` (of the volume) inside the crop, read again."""
        layer = self.layers["output"]
        shape = self.a.shape
        changed = False
        for region in regions:
            region = tuple(slice(*s.indices(n)[:2]) for s, n in zip(region, shape))
            meet = intersect(region, self.crop_region)
            if meet is not None:
                layer.data[meet[1]] = self.crops.read_output(meet[0])
                changed = True
        if changed and redraw:
            layer.refresh()

    def forget_paint_history(self) -> None:
        """Clear napari's undo and redo history of the output layer.

        Edits are undone through the review (U), which restores the output
        exactly; napari's Ctrl+Z would change the array behind the journal.
        """
        layer = self.layers["output"]
        for history in (getattr(layer, "_undo_history", None),
                        getattr(layer, "_redo_history", None)):
            if history is not None:
                history.clear()


def layer_features(features: dict) -> pd.DataFrame:
    """Per-object features as a Labels layer reads them when hovered.

    napari 0.9.2 finds the row of a label by the ``index`` column (without
    one, row k would describe label k, whatever the ``label`` column says).
    A first row for the background (0) holds nothing, so that hovering the
    background shows nothing.

    Parameters
    ----------
    features : dict of str to list
        Columns, one row per object, with a ``label`` column (its id), as
        :meth:`..session.Session.features` gives them.

    Returns
    -------
    DataFrame
        Object columns: ``index``, then those of ``features``.

    >>> table = layer_features({"label": [1, 2], "source": ["A", "edit"]})
    >>> table.to_dict("list")
    {'index': [0, 1, 2], 'label': [None, 1, 2], 'source': [None, 'A', 'edit']}
    """
    columns = {"index": [0, *features["label"]]}
    columns.update({key: [None, *values] for key, values in features.items()})
    return pd.DataFrame(columns, dtype=object)


def _display_image(image: np.ndarray, *, ndim: int) -> np.ndarray:
    """The image as shown: RGB(A) stays, other channel axes show their first channel."""
    if image.ndim == ndim + 1 and image.shape[-1] not in (3, 4):
        return image[..., 0]
    return image


def _image_kwargs(image: np.ndarray, *, ndim: int) -> dict:
    """Contrast limits from a subsample (fixed for the review), RGB when it is."""
    rgb = image.ndim == ndim + 1 and image.shape[-1] in (3, 4)
    kwargs = {"rgb": rgb}
    if not rgb:
        if is_lazy(image):  # a few whole blocks, not a stride through all of them
            sample = _lazy_sample(image)
        else:
            step = max(1, int(np.ceil((image.size / 2_000_000) ** (1 / max(image.ndim, 1)))))
            sample = np.asarray(image[(slice(None, None, step),) * image.ndim],
                                dtype=np.float64)
        lo, hi = np.percentile(sample, (0.5, 99.5)) if sample.size else (0.0, 1.0)
        kwargs["contrast_limits"] = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        kwargs["colormap"] = colours.IMAGE_COLORMAP
    return kwargs


def _lazy_sample(image) -> np.ndarray:
    """Values of a chunked image for its contrast: its middle block (at most ~2 M values)."""
    middle = tuple(slice(n // 2, n // 2 + 1) for n in image.shape[:-2])
    rows, cols = image.shape[-2:]
    side = int(min(max(rows, cols), 1024))
    window = (slice(max(0, rows // 2 - side // 2), rows // 2 + side // 2 + 1),
              slice(max(0, cols // 2 - side // 2), cols // 2 + side // 2 + 1))
    return np.asarray(image[middle + window], dtype=np.float64)
