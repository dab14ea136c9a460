"""The curated mask left in the viewer after a review: one layer per output.

:class:`ResultLayer` shows the review's saved labels (ids 1..n, as on disk:
:meth:`..review.Review.saved_labels`) with their features. The layer of an
earlier review of the same output is updated in place (it keeps its place in
the layer list and its settings); otherwise one is added.
"""

from __future__ import annotations

from pathlib import Path

from .._text import display_features
from ._view import layer_features

__all__ = ["ResultLayer"]

#: Key set in the ``metadata`` of a result layer: the output it shows.
_MARK = "napari_mask_compare_result"


class ResultLayer:
    """The result layer of the last review ended in ``viewer``."""

    def __init__(self, viewer):
        self.viewer = viewer
        self.layer = None

    def show(self, review, *, scale):
        """Show ``review``'s curated labels (a closed review), in place of its earlier layer."""
        labels, features = review.saved_labels()
        features = layer_features(display_features(features))
        key = str(review.output)
        layer = next((layer for layer in self.viewer.layers
                      if layer.metadata.get(_MARK) == key), None)
        if layer is None:
            layer = self.viewer.add_labels(
                labels, name=f"curated: {Path(review.output).stem}", scale=scale,
                features=features, metadata={_MARK: key})
        else:
            layer.data = labels
            layer.features = features
            layer.visible = True
        self.layer = layer
        return layer

    def remove(self) -> None:
        """The previous result gives way (the next file of a folder is reviewed)."""
        layer, self.layer = self.layer, None
        if layer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    def forget(self) -> None:
        """The result stays in the viewer, no longer ours to remove."""
        self.layer = None
