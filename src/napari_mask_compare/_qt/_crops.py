"""Crops of a review larger than memory: what the A, B and curated panels hold.

A chunked review (:attr:`..session.Session.chunked`) never shows a whole
volume: for each group the view reads the group's box plus what the camera
shows around it (at least the margin) from A, B, the curated output and the
image, and its layers hold those crops, placed with ``translate`` at the
crop's origin so that world coordinates (hover, the real z on the slider,
the camera) stay those of the whole volume.

:class:`Crops` says which region to read and reads it; :class:`RegionsOf`
lets :func:`._view.group_focus` read A and B of a chunked review region by
region; :class:`Prefetcher` reads the chunks of the next groups' crops in a
background thread while a person looks at the current one (the queue order
is known), so that moving on finds them in memory. Pure numpy and threads
(no Qt, no napari).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Crop", "Crops", "Prefetcher", "RegionsOf", "intersect"]

#: The crop reaches at most this many times the group's box (with its margin) around
#: its centre, whatever the camera shows (a long thin canvas cell reads no whole plane).
MAX_REACH = 2.0
#: Bytes of each of A, B and the output read ahead for the groups shown next: half of
#: :class:`..regions.ChunkedRegions`' default cache (what is shown stays in memory).
PREFETCH_BYTES = 128 << 20
#: What a crop reads: A, B and the curated output (session layer names).
_READ = (("a", "A"), ("b", "B"), ("output", "output"))


class RegionsOf:
    """One array of a chunked review, read region by region (``x[region]`` is an ndarray).

    Parameters
    ----------
    read : callable
        ``read(name, region)``, e.g. :meth:`..session.Session.read`.
    name : str
        ``"A"``, ``"B"`` or ``"output"``.
    shape : tuple of int
    dtype : numpy dtype
    """

    def __init__(self, read: Callable, name: str, *, shape, dtype):
        self._read, self._name = read, name
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, region) -> np.ndarray:
        region = region if isinstance(region, tuple) else (region,)
        region = region + (slice(None),) * (self.ndim - len(region))
        return self._read(self._name, tuple(
            slice(*s.indices(n)[:2]) for s, n in zip(region, self.shape)))


@dataclass(frozen=True)
class Crop:
    """What the crop layers hold: the region read, and the arrays read from it."""

    region: tuple[slice, ...]
    data: dict  # role ("a", "b", "output", "image") -> ndarray

    @property
    def origin(self) -> tuple[int, ...]:
        return tuple(s.start for s in self.region)


class Crops:
    """Reads the crops of a chunked review.

    Parameters
    ----------
    session : session.Session
        A chunked session (its :meth:`~..session.Session.read`).
    image : array-like, optional
        The image (a dask array: only the crop is computed), shape of the
        masks, or with a trailing channel axis.
    """

    def __init__(self, session, *, image=None):
        self.session = session
        self.image = image
        shape = session.output.shape
        self.a = RegionsOf(session.read, "A", shape=shape, dtype=session.a.dtype)
        self.b = RegionsOf(session.read, "B", shape=shape, dtype=session.b.dtype)
        self.shape = tuple(shape)
        self.prefetcher = Prefetcher(session.prefetch, budget=PREFETCH_BYTES)

    def prefetch(self, focuses) -> None:
        """Read ahead the chunks of the crops of groups shown next (at ``focuses``, in order).

        Each crop is taken as large as it can get (:data:`MAX_REACH`), as the
        camera is not known yet. A request replaces the one not yet done.
        """
        inf = (float("inf"),) * 2
        self.prefetcher.request([self.region(focus, visible=inf) for focus in focuses])

    def close(self) -> None:
        """Stop reading ahead (waits for the chunk being read)."""
        self.prefetcher.close()

    def region(self, focus, *, visible=None) -> tuple[slice, ...]:
        """The region to read for a group shown at ``focus`` (see :class:`._view.Focus`).

        Parameters
        ----------
        focus : Focus
            Centre and size (box + margin) in y, x; the group's slices in 3D.
        visible : (float, float), optional
            What the camera shows, in voxels (height, width): the crop covers
            it (up to :data:`MAX_REACH` times the box), so that the panels are
            filled.

        Returns
        -------
        tuple of slice
            The group's slices in z (the slider spans nothing else), its box
            plus margin (or the view) in y and x, within the volume.

        >>> from types import SimpleNamespace
        >>> crops = Crops.__new__(Crops); crops.shape = (10, 100, 100)
        >>> focus = SimpleNamespace(center=(50.0, 5.0), size=(20, 20), z_range=(2, 4))
        >>> crops.region(focus)
        (slice(2, 5, None), slice(40, 61, None), slice(0, 16, None))
        """
        size = np.asarray(focus.size, dtype=float)
        half = size / 2
        if visible is not None:
            half = np.clip(np.asarray(visible, dtype=float) / 2, half, MAX_REACH * half)
        yx = tuple(slice(max(0, int(np.floor(c - h))), min(n, int(np.ceil(c + h)) + 1))
                   for c, h, n in zip(focus.center, half, self.shape[-2:]))
        if len(self.shape) == 2:
            return yx
        lo, hi = focus.z_range
        return (slice(int(lo), int(hi) + 1), *yx)

    def read(self, region: tuple[slice, ...], *, display_image=None) -> Crop:
        """A, B, the output (and the image) of ``region``, as ndarrays.

        Parameters
        ----------
        display_image : callable, optional
            Applied to the image crop (e.g. the first channel of a channel axis).
        """
        data = {role: self.session.read(name, region) for role, name in _READ}
        if self.image is not None:
            image = np.asarray(self.image[region])
            data["image"] = display_image(image) if display_image is not None else image
        return Crop(region, data)

    def read_output(self, region: tuple[slice, ...]) -> np.ndarray:
        return self.session.read("output", region)


def intersect(region: tuple[slice, ...], crop: tuple[slice, ...]):
    """Where ``region`` (of the volume) meets ``crop``: (volume region, crop-local region).

    None when they do not meet.

    >>> intersect((slice(0, 5), slice(3, 9)), (slice(2, 10), slice(0, 4)))
    ((slice(2, 5, None), slice(3, 4, None)), (slice(0, 3, None), slice(3, 4, None)))
    """
    inner, local = [], []
    for r, c in zip(region, crop):
        lo, hi = max(r.start, c.start), min(r.stop, c.stop)
        if lo >= hi:
            return None
        inner.append(slice(lo, hi))
        local.append(slice(lo - c.start, hi - c.start))
    return tuple(inner), tuple(local)


class Prefetcher:
    """Reads regions ahead of need in one background thread; the latest request wins.

    Parameters
    ----------
    prefetch : callable
        ``prefetch(name, region, budget=bytes)`` reads the chunks of one region
        of ``"A"``, ``"B"`` or ``"output"`` into the cache and returns the
        bytes read (:meth:`..session.Session.prefetch`).
    budget : int, optional
        Bytes read per layer for one request (all its regions); None: what
        ``prefetch`` allows for each region (half its cache).

    Notes
    -----
    A request names regions in the order they will be needed (the next
    group first); A, B and the output of each are read before the next
    region. A new request drops what is left of the previous one; a read
    error only ends that request (the reader on screen meets it again).
    """

    def __init__(self, prefetch: Callable, *, budget: int | None = None):
        self._prefetch = prefetch
        self._budget = budget
        self._todo: list = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._busy = False  # a request is being read
        #: Requests finished (all their regions read, or the budget spent).
        self.done = 0

    def request(self, regions) -> None:
        """Read ``regions`` (tuples of slices) ahead, in order, instead of the last request."""
        with self._wake:
            if self._closed:
                return
            self._todo = [list(regions)]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="mask-compare-prefetch")
                self._thread.start()
            self._wake.notify()

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is left to read (for tests); False if ``timeout`` ran out."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._todo and not self._busy,
                                       timeout=timeout)

    def close(self) -> None:
        """Stop: nothing more is read once the chunk being read is in."""
        with self._wake:
            self._closed = True
            self._todo = []
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._todo or self._closed)
                if self._closed:
                    return
                regions = self._todo.pop()
                self._busy = True
            try:
                self._read(regions)
            finally:
                with self._wake:
                    self._busy = False
                    self.done += 1
                    self._wake.notify_all()

    def _read(self, regions) -> None:
        spent = dict.fromkeys((name for _, name in _READ), 0)
        for region in regions:
            for _, name in _READ:
                with self._wake:
                    if self._closed or self._todo:  # stopped, or a newer request
                        return
                left = None if self._budget is None else self._budget - spent[name]
                if left is not None and left <= 0:
                    continue
                try:
                    spent[name] += self._prefetch(name, region, budget=left)
                except Exception:  # noqa: BLE001 - reading ahead is only a help
                    return
