"""The setup page of the Review tab: inputs (layers or folders), out dir, margin, IoU threshold.

:class:`SetupPage` holds the controls and reads them (:meth:`SetupPage.job`
gives the loader to run and the output path); the widget wires its Start
button and its changes. Narrow by design: the dock leaves the canvas the room.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from napari.layers import Image, Labels
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import read, store
from ..errors import InputError
from ._inputs import (
    LayerCombo,
    is_lazy_layer,
    load_from_files,
    load_from_layers,
    output_name,
    preselect_layers,
)

__all__ = ["SetupPage", "pair_folders"]

#: Least width of a field (pixels): the form shrinks to the narrow dock.
_FIELD_WIDTH = 50


class SetupPage(QWidget):
    """Inputs and parameters of a review, and the Start button.

    Parameters
    ----------
    viewer : napari.Viewer
    """

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.pairs: list[tuple[Path | None, Path, Path]] = []
        self._browse_buttons: dict[QPushButton, QLineEdit] = {}
        self._build()
        self._add_callbacks()

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.source_tabs = QTabWidget()
        self.source_tabs.addTab(self._build_layer_inputs(), "Layers")
        self.source_tabs.addTab(self._build_folder_inputs(), "Folders")
        layout.addWidget(self.source_tabs)
        layout.addWidget(self._build_parameters())
        self.start_button = QPushButton("Start review")
        layout.addWidget(self.start_button)

    def _build_layer_inputs(self) -> QWidget:
        box = QWidget()
        form = _form(box)
        self.image_combo = LayerCombo(self.viewer, kinds=(Image,), optional=True)
        self.a_combo = LayerCombo(self.viewer, kinds=(Labels,), masks=True)
        self.b_combo = LayerCombo(self.viewer, kinds=(Labels,), masks=True)
        preselect_layers(self.image_combo, self.a_combo, self.b_combo)
        for label, combo in (("image", self.image_combo), ("mask A", self.a_combo),
                             ("mask B", self.b_combo)):
            _narrow(combo)
            form.addRow(label, combo)
        return box

    def _build_folder_inputs(self) -> QWidget:
        box = QWidget()
        form = _form(box)
        self.images_dir, self.mask_a_dir, self.mask_b_dir = QLineEdit(), QLineEdit(), QLineEdit()
        for label, edit in (("images", self.images_dir), ("mask A", self.mask_a_dir),
                            ("mask B", self.mask_b_dir)):
            form.addRow(label, self._folder_row(edit))
        self.file_list = QListWidget()
        self.file_list.setMaximumHeight(100)
        form.addRow(self.file_list)
        return box

    def _folder_row(self, edit: QLineEdit) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        button = QPushButton("…")
        button.setMaximumWidth(26)
        edit.setMinimumWidth(_FIELD_WIDTH)
        layout.addWidget(edit)
        layout.addWidget(button)
        self._browse_buttons[button] = edit
        return row

    def _build_parameters(self) -> QWidget:
        box = QWidget()
        form = _form(box)
        form.setContentsMargins(0, 0, 0, 0)
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("folder for the curated mask")
        self.out_dir.setToolTip("folder for the curated mask, its journal and its summary")
        form.addRow("out dir", self._folder_row(self.out_dir))
        self.margin = QSpinBox()
        self.margin.setRange(0, 10_000)
        self.margin.setValue(15)
        self.margin.setSuffix(" px")
        self.margin.setToolTip("pixels shown around each group")
        self.iou_threshold = QDoubleSpinBox()
        self.iou_threshold.setRange(0.001, 1.0)
        self.iou_threshold.setDecimals(3)
        self.iou_threshold.setSingleStep(0.05)
        self.iou_threshold.setValue(0.1)
        self.iou_threshold.setToolTip("IoU that pairs an object of A with one of B")
        for spin in (self.margin, self.iou_threshold):
            spin.setMinimumWidth(_FIELD_WIDTH)
        form.addRow("margin", self.margin)
        form.addRow("IoU", self.iou_threshold)
        return box

    def _add_callbacks(self) -> None:
        """Connect the page's own controls (the Start button is the widget's)."""
        for button in self._browse_buttons:
            button.clicked.connect(partial(self._on_browse, button))

    # ------------------------------------------------------------------ reading

    @property
    def folders(self) -> bool:
        """True when the inputs are folders (not layers)."""
        return self.source_tabs.currentIndex() == 1

    def set_layers(self, *, image=None, mask_a=None, mask_b=None) -> None:
        """Choose the input layers (and switch to the layers source)."""
        self.source_tabs.setCurrentIndex(0)
        self.image_combo.set_layer(image)
        self.a_combo.set_layer(mask_a)
        self.b_combo.set_layer(mask_b)

    def set_folders(self, *, images_dir=None, mask_a_dir=None, mask_b_dir=None) -> None:
        """Choose the input folders (and switch to the folders source); see :meth:`list_files`."""
        self.source_tabs.setCurrentIndex(1)
        for edit, value in ((self.images_dir, images_dir), (self.mask_a_dir, mask_a_dir),
                            (self.mask_b_dir, mask_b_dir)):
            edit.setText("" if value is None else str(value))

    def set_files(self, mask_a, mask_b, *, image=None) -> None:
        """Review one pair of files: a list of one file in the Folders tab."""
        self.source_tabs.setCurrentIndex(1)
        for edit in (self.images_dir, self.mask_a_dir, self.mask_b_dir):
            edit.setText("")
        mask_a, mask_b = Path(mask_a), Path(mask_b)
        self.pairs = [(Path(image) if image is not None else None, mask_a, mask_b)]
        self.file_list.clear()
        self.file_list.addItem(mask_a.name)
        self.file_list.item(0).setToolTip(f"A: {mask_a}\nB: {mask_b}"
                                          + (f"\nimage: {image}" if image is not None else ""))
        self.file_list.setCurrentRow(0)

    def set_parameters(self, *, margin: int | None = None,
                       iou_threshold: float | None = None) -> None:
        """Set the margin (pixels around a group) and the IoU threshold."""
        if margin is not None:
            self.margin.setValue(int(margin))
        if iou_threshold is not None:
            self.iou_threshold.setValue(float(iou_threshold))

    def list_files(self) -> str:
        """Pair the files of the chosen folders by name and list them.

        Returns
        -------
        str
            What to tell the user (how many files, which have no partner).

        Raises
        ------
        InputError
            A folder cannot be listed, or no name is common to them.
        """
        self.pairs = []
        self.file_list.clear()
        dirs = self.folder_paths()
        if dirs["mask_a"] is None or dirs["mask_b"] is None:
            return ""
        if any(store.is_store_path(path) for path in (dirs["mask_a"], dirs["mask_b"])):
            # a pair of stores named directly (a .zarr folder, "file.h5:/dataset")
            self.pairs = [(dirs["images"], dirs["mask_a"], dirs["mask_b"])]
            self.file_list.addItem(store.store_name(dirs["mask_a"]))
            self.file_list.setCurrentRow(0)
            return "1 pair of stores to review (read lazily, by crops)"
        self.pairs, unpaired = pair_folders(**dirs)
        self.file_list.addItems([mask_a.name for _, mask_a, _ in self.pairs])
        self.file_list.setCurrentRow(0)
        skipped = sum(len(names) for names in unpaired.values())
        note = f"; {skipped} file(s) without a partner skipped" if skipped else ""
        return f"{len(self.pairs)} file(s) to review{note}"

    def folder_paths(self) -> dict:
        """The chosen folders: ``images``, ``mask_a``, ``mask_b`` (None when empty)."""
        def path(edit):
            return Path(edit.text().strip()) if edit.text().strip() else None

        return {"images": path(self.images_dir), "mask_a": path(self.mask_a_dir),
                "mask_b": path(self.mask_b_dir)}

    def job(self):
        """The loader to run in the worker, and the output path; checks what is cheap.

        Raises
        ------
        InputError
            No out dir, no masks chosen, or an out dir that is an input folder.
        """
        out_text = self.out_dir.text().strip()
        if not out_text:
            raise InputError("choose an out dir for the curated mask")
        out_dir = Path(out_text).expanduser()
        if not self.folders:
            a, b, image = self.a_combo.layer(), self.b_combo.layer(), self.image_combo.layer()
            if a is None or b is None:
                raise InputError("choose a layer for mask A and one for mask B")
            lazy = is_lazy_layer(a) or is_lazy_layer(b)
            return partial(load_from_layers, image, a, b), \
                out_dir / output_name(a.name, lazy=lazy)
        if not self.pairs:
            self.list_files()
        if not self.pairs:
            raise InputError("choose the mask A and mask B folders (files are paired by name)")
        image, mask_a, mask_b = self.pairs[max(self.file_list.currentRow(), 0)]
        for folder in (mask_a.parent, mask_b.parent):
            if out_dir.resolve() == folder.resolve():
                raise InputError(f"{out_dir}: is an input folder; choose another out dir")
        lazy = store.is_store_path(mask_a) or store.is_store_path(mask_b)
        return partial(load_from_files, mask_a, mask_b, image=image), \
            out_dir / output_name(mask_a, lazy=lazy)

    def file_step(self, delta: int) -> bool:
        """Choose the previous (-1) or next (+1) file; False when there is none."""
        row = self.file_list.currentRow() + delta
        if not 0 <= row < self.file_list.count():
            return False
        self.file_list.setCurrentRow(row)
        return True

    def file_position(self) -> tuple[int, int, str]:
        """(row, count, name) of the chosen file."""
        row, count = self.file_list.currentRow(), self.file_list.count()
        name = self.file_list.currentItem().text() if row >= 0 else ""
        return row, count, name

    # ------------------------------------------------------------------ handlers

    def _on_browse(self, button) -> None:
        edit = self._browse_buttons[button]
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        if folder:
            edit.setText(folder)
            edit.editingFinished.emit()  # the widget lists the files of input folders


def _form(box: QWidget) -> QFormLayout:
    form = QFormLayout(box)
    form.setContentsMargins(2, 2, 2, 2)
    form.setHorizontalSpacing(4)
    form.setVerticalSpacing(3)
    return form


def _narrow(combo: QComboBox) -> None:
    """A combo box whose width does not follow the longest name (the dock stays narrow)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(4)
    combo.setMinimumWidth(_FIELD_WIDTH)


def pair_folders(*, images: Path | None, mask_a: Path, mask_b: Path):
    """(image or None, mask A, mask B) per name found in every given folder, and the rest."""
    folders = [mask_a, mask_b] + ([images] if images is not None else [])
    pairs, unpaired = read.pair_files(*folders)
    return [(p[2] if images is not None else None, p[0], p[1]) for p in pairs], unpaired
