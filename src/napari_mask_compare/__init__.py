"""Compare two instance segmentations of one image: see, measure and curate their differences."""

__version__ = "0.1.0"
