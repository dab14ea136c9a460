"""Regions of an array, in memory or chunked on disk: read, written, renumbered.

A review reads and writes its masks and its output region by region (a
group's crop, an edit's box), never the whole volume:

- :class:`ArrayRegions`: an in-memory ndarray, read as views, written in place;
- :class:`ChunkedRegions`: a zarr or dask array through a bounded cache of
  whole chunks, written back chunk by chunk (:meth:`ChunkedRegions.flush`);
- :func:`regions_of`: the one of the two that fits an array;
- chunk surgery on a zarr output: :func:`chunk_keys` (its chunk files, no
  pass over the volume) and :func:`compact_chunks` (ids renumbered 1..n in
  the chunks written).

No Qt, no napari.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections import Counter, OrderedDict

import numpy as np

from ._arrays import is_lazy

__all__ = [
    "ZARR_METADATA", "ArrayRegions", "ChunkedRegions", "chunk_keys", "compact_chunks",
    "regions_of",
]

#: Names of a zarr store's metadata files (every other file of an array is a chunk).
ZARR_METADATA = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


class ArrayRegions:
    """Regions of an in-memory ndarray: read as views, written in place.

    The store of a :class:`.session.Session` on numpy arrays;
    :class:`ChunkedRegions` has the same methods for arrays larger than memory.

    Parameters
    ----------
    array : ndarray, shape (y, x) or (z, y, x)
    """

    chunked = False

    def __init__(self, array: np.ndarray):
        self.array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def get(self, region: tuple[slice, ...]) -> np.ndarray:
        """The values of ``region`` (a view: read it, do not change it)."""
        return self.array[region]

    def put(self, region: tuple[slice, ...], value, *, where: np.ndarray | None = None) -> None:
        """Set ``region`` (where ``where`` is True) to ``value`` (a scalar, or of its shape)."""
        np.copyto(self.array[region], value, where=True if where is None else where)

    def put_masked(self, region: tuple[slice, ...], mask: np.ndarray | None,
                   values: np.ndarray) -> None:
        """``region[mask] = values`` (values of shape (mask.sum(),)); the whole region if None."""
        out = self.array[region]
        if mask is None:
            out[...] = values
        else:
            out[mask] = values

    def flush(self) -> int:
        """Nothing to write (see :meth:`ChunkedRegions.flush`)."""
        return 0

    def prefetch(self, region: tuple[slice, ...], *, budget: int | None = None) -> int:
        """Nothing to read ahead (see :meth:`ChunkedRegions.prefetch`): 0 bytes."""
        return 0


class ChunkedRegions:
    """Regions of a chunked array (zarr, dask) through a bounded cache of whole chunks.

    A region is read from the chunks it overlaps (each read once, then kept
    while the cache has room); a write changes the cached chunks and marks
    them dirty: :meth:`flush` writes exactly the dirty chunks back (another
    thread may call it), the only writes to ``array``. Nothing ever touches
    the whole volume.

    Parameters
    ----------
    array : zarr.Array or dask.array.Array, shape (y, x) or (z, y, x)
        A writable zarr array for an output; anything sliceable with
        ``chunks`` (dask: the chunks of each axis) for an input.
    cache_bytes : int
        Chunks kept in memory; beyond it, the least recently used clean
        chunks are dropped, and dirty ones are written first if they fill
        half of it.

    Attributes
    ----------
    touched : set of tuple of int
        Chunk indices written since this store was opened.
    writes : int
        Chunks written to ``array`` so far.
    """

    chunked = True

    def __init__(self, array, *, cache_bytes: int = 256 << 20):
        self.array = array
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.cache_bytes = int(cache_bytes)
        self.bounds = _chunk_bounds(array, self.shape)
        self.touched: set[tuple[int, ...]] = set()
        self.writes = 0
        self._cache: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._dirty: dict[tuple[int, ...], int] = {}  # chunk -> version of its last change
        self._written: dict[tuple[int, ...], int] = {}  # chunk -> version on disk
        self._flushing: Counter = Counter()  # chunk -> flushes writing it (kept cached)
        self._drops: dict[tuple[int, ...], int] = {}  # chunk -> times dropped from the cache
        self._clock = 0
        self._lock = threading.RLock()  # the cache
        self._io_lock = threading.Lock()  # writes to ``array``

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, region) -> np.ndarray:
        """A region as an ndarray (slices only), e.g. for a crop on screen."""
        region = region if isinstance(region, tuple) else (region,)
        return self.get(region + (slice(None),) * (self.ndim - len(region)))

    def get(self, region: tuple[slice, ...]) -> np.ndarray:
        """A copy of the values of ``region``, as they are now (written or not)."""
        box = self._box(region)
        out = np.empty(tuple(stop - start for start, stop in box), dtype=self.dtype)
        with self._lock:
            for key, inner, local in self._pieces(box):
                out[local] = self._load(key)[inner]
        return out

    def put(self, region: tuple[slice, ...], value, *, where: np.ndarray | None = None) -> None:
        """Set ``region`` (where ``where`` is True) to ``value``; dirty: the chunks it changes."""
        box = self._box(region)
        array_value = np.ndim(value) > 0
        with self._lock:
            for key, inner, local in self._pieces(box):
                chosen = True if where is None else where[local]
                if where is not None and not chosen.any():
                    continue
                np.copyto(self._load(key)[inner], value[local] if array_value else value,
                          where=chosen)
                self._clock += 1
                self._dirty[key] = self._clock
                self.touched.add(key)
            self._trim()

    def put_masked(self, region: tuple[slice, ...], mask: np.ndarray | None,
                   values: np.ndarray) -> None:
        """``region[mask] = values`` (values of shape (mask.sum(),)); the whole region if None."""
        if mask is None:
            self.put(region, values)
            return
        full = self.get(region)
        full[mask] = values
        self.put(region, full, where=mask)

    def flush(self) -> int:
        """Write the dirty chunks (those changed since the last flush); return how many.

        A chunk changed again meanwhile is written by a later flush; an
        older copy never overwrites a newer one. If writing fails, the chunks
        not written stay dirty (the next flush writes them).
        """
        with self._lock:
            todo = list(self._dirty.items())
            self._dirty.clear()
            self._flushing.update(key for key, _ in todo)  # kept cached until on disk
        try:
            for key, version in todo:
                with self._lock:  # one chunk at a time: readers wait for one copy at most
                    data = self._cache[key].copy()  # as of ``version`` or later
                with self._io_lock:
                    if self._written.get(key, -1) < version:
                        self.array[self.chunk_region(key)] = data
                        self._written[key] = version
                        self.writes += 1
        except BaseException:  # a full disk: the chunks not written stay dirty, for a retry
            with self._lock:
                for key, version in todo:
                    if self._written.get(key, -1) < version:
                        self._dirty.setdefault(key, version)
            raise
        finally:
            with self._lock:
                self._flushing.subtract(key for key, _ in todo)
                self._flushing += Counter()  # drops the keys at zero
        return len(todo)

    def prefetch(self, region: tuple[slice, ...], *, budget: int | None = None) -> int:
        """Read the chunks of ``region`` into the cache ahead of need (e.g. from a thread).

        The chunks are read without holding the cache (a reader of other
        chunks is not held up); a chunk loaded meanwhile by a reader or a
        writer is kept as it is, never replaced by the copy read here.

        Parameters
        ----------
        budget : int, optional
            Read at most this many bytes (default: half the cache, so that
            what is read ahead never pushes out what is shown).

        Returns
        -------
        int
            Bytes read into the cache.
        """
        budget = self.cache_bytes // 2 if budget is None else int(budget)
        with self._lock:
            todo = [key for key, _, _ in self._pieces(self._box(region))
                    if key not in self._cache]
        done = 0
        for key in todo:
            region_of = self.chunk_region(key)
            nbytes = math.prod(s.stop - s.start for s in region_of) * self.dtype.itemsize
            if done + nbytes > budget:
                break
            with self._lock:
                if key in self._cache:
                    continue
                drops = self._drops.get(key, 0)
            chunk = np.array(self.array[region_of], dtype=self.dtype)
            with self._lock:
                # dropped since it was read: a newer copy may have been written meanwhile
                if key not in self._cache and self._drops.get(key, 0) == drops:
                    self._cache[key] = chunk
                    self._nbytes += chunk.nbytes
                    done += chunk.nbytes
                    self._trim()
        return done

    def _box(self, region) -> list[tuple[int, int]]:
        if len(region) != len(self.shape):
            raise ValueError(f"region {region} does not fit the shape {self.shape}")
        box = []
        for s, n in zip(region, self.shape):
            start, stop, step = s.indices(n)
            if step != 1:
                raise ValueError(f"region {region}: slices must have step 1")
            box.append((start, max(start, stop)))
        return box

    def _pieces(self, box):
        """Per chunk overlapping ``box``: (chunk index, slices in the chunk, slices in the box)."""
        ranges = []
        for (start, stop), bounds in zip(box, self.bounds):
            if stop <= start:
                return
            first = int(np.searchsorted(bounds, start, side="right")) - 1
            last = int(np.searchsorted(bounds, stop, side="left"))
            ranges.append(range(first, last))
        for key in itertools.product(*ranges):
            inner, local = [], []
            for k, (start, stop), bounds in zip(key, box, self.bounds):
                lo, hi = max(start, int(bounds[k])), min(stop, int(bounds[k + 1]))
                inner.append(slice(lo - int(bounds[k]), hi - int(bounds[k])))
                local.append(slice(lo - start, hi - start))
            yield key, tuple(inner), tuple(local)

    def chunk_region(self, key: tuple[int, ...]) -> tuple[slice, ...]:
        """The region of one chunk, by its index."""
        return tuple(slice(int(b[k]), int(b[k + 1])) for k, b in zip(key, self.bounds))

    def _load(self, key) -> np.ndarray:
        chunk = self._cache.get(key)
        if chunk is None:
            chunk = np.array(self.array[self.chunk_region(key)], dtype=self.dtype)
            self._cache[key] = chunk
            self._nbytes += chunk.nbytes
        else:
            self._cache.move_to_end(key)
        return chunk

    def _trim(self) -> None:
        """Keep the cache within ``cache_bytes``: write dirty chunks if they fill half of it.

        A write that fails here (a full disk) keeps the chunks dirty and cached
        (beyond the budget, until a flush succeeds) and raises nothing: the
        change in hand is whole in the cache, and the save that fails next
        (:meth:`flush` from the autosaver) reports it.
        """
        if self._nbytes <= self.cache_bytes:
            return
        if len(self._dirty) * (self._nbytes / len(self._cache)) > self.cache_bytes / 2:
            with contextlib.suppress(OSError):
                self.flush()
        for key in list(self._cache):  # least recently used first
            if self._nbytes <= self.cache_bytes:
                break
            if key not in self._dirty and not self._flushing[key]:
                self._nbytes -= self._cache.pop(key).nbytes
                self._drops[key] = self._drops.get(key, 0) + 1


def _chunk_bounds(array, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Per axis, the start of every chunk and the end: ``[0, c, 2c, ..., n]``.

    ``array.chunks`` is a chunk shape (zarr; its shards when sharded, the
    unit that is written) or the chunk sizes of every axis (dask).
    """
    chunks = getattr(array, "shards", None) or array.chunks
    bounds = []
    for axis, n in enumerate(shape):
        sizes = chunks[axis]
        if isinstance(sizes, int | np.integer):
            edges = np.append(np.arange(0, n, int(sizes)), n)
        else:
            edges = np.concatenate([[0], np.cumsum(sizes)])
        bounds.append(edges.astype(np.int64))
    return bounds


def regions_of(array, *, cache_bytes: int = 256 << 20) -> ArrayRegions | ChunkedRegions:
    """The region store of an array: :class:`ArrayRegions` in memory, else :class:`ChunkedRegions`.

    A lazy array (:func:`._arrays.is_lazy`: zarr, dask, chunked HDF5) is read
    and written region by region; anything else is made an ndarray.
    """
    if is_lazy(array):
        return ChunkedRegions(array, cache_bytes=cache_bytes)
    return ArrayRegions(np.asarray(array))


# --------------------------------------------------------------------------- chunk surgery


def chunk_keys(array) -> list[str]:
    """Keys of the chunk files of a zarr array (and of half-written ones), not its metadata."""
    from zarr.core.sync import sync

    prefix = f"{array.path}/" if array.path else ""

    async def listed():
        return [key async for key in array.store.list_prefix(prefix)
                if key.rsplit("/", 1)[-1] not in ZARR_METADATA]

    return sync(listed())


def compact_chunks(output: ChunkedRegions) -> np.ndarray:
    """Renumber a chunked output's ids to 1..n in increasing order, chunk by chunk.

    Two passes over the chunks written since it was opened (all the others
    hold only background): the ids present, then the lookup table applied.
    The same ids as :func:`.labels.relabel_sequential` of the whole volume.
    The chunks change in ``output``'s cache: :meth:`ChunkedRegions.flush` writes them.

    Returns
    -------
    ndarray of uint64, shape (n,)
        The ids present before, in order (id k + 1 is ``ids[k]`` now).
    """
    output.flush()
    keys = sorted(output.touched)
    present = [np.unique(output.get(output.chunk_region(key))) for key in keys]
    ids = np.unique(np.concatenate([np.zeros(1, np.uint64)]
                                   + [p.astype(np.uint64) for p in present]))[1:]
    if ids.size and ids[-1] != ids.size:
        lut = np.zeros(int(ids[-1]) + 1, dtype=output.dtype)
        lut[ids.astype(np.intp)] = np.arange(1, ids.size + 1)
        for key in keys:
            region = output.chunk_region(key)
            output.put(region, lut[output.get(region)])
    return ids
