"""The colours of the package, in one place: A is the same red and B the same green in
the viewer (napari) and in the report's plots (matplotlib).

Colours are hex strings or RGBA tuples in 0..1, which napari and matplotlib both
read. The report's association map (:func:`.report.association_map`) colours by
channel (red: false negatives, green: true positives, blue: false positives) and
takes nothing from here. No Qt, no napari.
"""

from __future__ import annotations

__all__ = ["A", "A_DIM", "A_SHADES", "B", "BIN_COLORS", "B_DIM", "B_SHADES", "CURATED",
           "ERROR", "IMAGE_COLORMAP", "MATCHED", "PICKED", "TRANSPARENT", "UNPAIRED"]

#: Mask A: its panel's title on the canvas, its bars in the report's plots.
A = "#ff7070"
#: Mask B: as :data:`A`.
B = "#70ff70"
#: The curated output: its panel's title on the canvas.
CURATED = "#ffffff"

#: The current group's objects, in id order (so that the parts of a split differ):
#: A warm (red, orange, pink), B green (green, lime, teal).
A_SHADES = ("#ff1f1f", "#ff9a1f", "#ff4fd0", "#ffe01f", "#b30000", "#ff8080")
B_SHADES = ("#1fff1f", "#c8ff1f", "#1fffd2", "#1fb4ff", "#008f00", "#8fff8f")
#: Objects outside the current group: dim, see-through.
A_DIM = (0.75, 0.2, 0.2, 0.4)
B_DIM = (0.2, 0.7, 0.2, 0.4)
#: Objects picked into the output (a click on them in the A or B panel).
PICKED = (1.0, 1.0, 1.0, 1.0)
#: The background of a label colormap.
TRANSPARENT = (0.0, 0.0, 0.0, 0.0)

#: Colour by disagreement: RGBA of each IoU bin of :data:`.disagreement.IOU_BINS`,
#: worst first: red, orange, yellow, blue (bright warm colours where to look).
BIN_COLORS = (
    (1.0, 0.23, 0.23, 1.0),
    (1.0, 0.6, 0.12, 1.0),
    (1.0, 0.9, 0.25, 1.0),
    (0.3, 0.6, 1.0, 1.0),
)

#: The IoUs of paired groups (the report's histogram).
MATCHED = "tab:green"
#: The UNPAIRED flag of a group in the panel's text.
UNPAIRED = "#ff5050"
#: An error in the panel's message line.
ERROR = "#ff6060"
#: The colormap of an intensity image under the masks (the viewer, the sample data).
IMAGE_COLORMAP = "gray"
