"""Everything that imports Qt or napari's GUI: the dock widget, view focus, keys."""
