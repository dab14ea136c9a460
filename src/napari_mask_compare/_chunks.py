"""Chunk readers that dask slices: a zarr array, an HDF5 dataset; a damaged chunk is one line.

:mod:`.store` opens inputs as dask arrays over these objects, one block per
storage chunk (or shard). Reading a block that cannot be decoded (zstd or
blosc errors, a checksum that does not match, a truncated or empty chunk
file) or whose chunk file is a folder raises :class:`.errors.InputError` naming
the store, the chunk and what failed: the CLI then exits 2 with that line
(dask, threads or distributed, re-raises the task's exception, and an
InputError pickles). A missing chunk is the array's fill value, as zarr
reads it: background for a mask of fill value 0.

No Qt, no napari.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
from pathlib import Path

from .errors import InputError

__all__ = ["Hdf5Dataset", "ZarrChunks"]

#: What a damaged chunk's message says would be right.
_REMEDY = "restore the store from a copy"



def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name."""
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def chunk_indices(key, *, chunks, shape) -> list[tuple[int, ...]]:
    """The indices of the storage chunks that the slices ``key`` reach, in order.

    Parameters
    ----------
    key : tuple of slice
        As dask's getter passes it (whole slices, step 1 or None).
    chunks, shape : tuple of int

    >>> chunk_indices((slice(30, 40), slice(0, 10)), chunks=(32, 32), shape=(64, 64))
    [(0, 0), (1, 0)]
    """
    key = key if isinstance(key, tuple) else (key,)
    ranges = []
    for axis, (chunk, n) in enumerate(zip(chunks, shape)):
        part = key[axis] if axis < len(key) else slice(None)
        start, stop = (part.indices(n)[:2] if isinstance(part, slice)
                       else (int(part) % n, int(part) % n + 1))
        ranges.append(range(start // chunk, max(start, stop - 1) // chunk + 1))
    return list(itertools.product(*ranges))


class ZarrChunks:
    """A zarr array that dask reads block by block, each block one chunk (or shard).

    Parameters
    ----------
    array : zarr.Array
    spec : str or PathLike
        The store as the user named it (in messages).

    Attributes
    ----------
    shape, dtype, ndim : as ``array``'s
    chunks : tuple of int
        The blocks to read: the shards of a sharded array, else its chunks.

    Pickled with the zarr array (to a dask.distributed worker).
    """

    def __init__(self, array, *, spec):
        self.array, self.spec = array, os.fspath(spec)
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.chunks = tuple(getattr(array, "shards", None) or array.chunks)
        root = getattr(array.store, "root", None)  # a local folder (LocalStore)
        self._folder = Path(root, array.path) if root is not None else None

    def __getitem__(self, key):
        keys = [self.array.metadata.encode_chunk_key(index)
                for index in chunk_indices(key, chunks=self.chunks, shape=self.shape)]
        for chunk in keys:
            self._check_file(chunk)
        try:
            return self.array[key]
        except Exception as err:  # the codecs raise RuntimeError, ValueError, ...
            raise InputError(f"{self.spec}: chunk {self._name(keys)} cannot be read "
                             f"({first_line(err)}); {_REMEDY}") from err

    def _check_file(self, chunk: str) -> None:
        """InputError when the chunk's file is a folder or empty (zarr would read the fill value).

        A missing file is a chunk never written: zarr's fill value, rightly.
        """
        if self._folder is None:
            return
        try:
            info = (self._folder / chunk).stat()
        except OSError:  # missing, or unreadable: zarr's read says which
            return
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{self.spec}: chunk {self._name([chunk])} is a folder, expected a "
                             f"chunk file; {_REMEDY}")
        if info.st_size == 0:
            raise InputError(f"{self.spec}: chunk {self._name([chunk])} is an empty file, "
                             f"expected a chunk's bytes; {_REMEDY}")

    def _name(self, keys: list[str]) -> str:
        """The chunks' files, relative to the store as named (``1.1``, ``0/c/1/1``)."""
        names = keys
        if self._folder is not None:
            with contextlib.suppress(ValueError):
                names = [os.path.relpath(self._folder / key, self.spec) for key in keys]
        return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


class Hdf5Dataset:
    """An HDF5 dataset that dask can slice: the file stays open while this object lives.

    A chunk that HDF5 cannot read (a filter that fails on damaged bytes) is
    an :class:`.errors.InputError` naming the file, the dataset and the chunk.
    Pickled (e.g. to a dask.distributed worker) by file name and dataset
    path, and opened again on the other side.
    """

    def __init__(self, file: str | os.PathLike, name: str):
        import h5py

        self.file, self.name = os.fspath(file), name
        self._h5 = h5py.File(self.file, "r")
        self._dataset = self._h5[name]
        self.shape = self._dataset.shape
        self.dtype = self._dataset.dtype
        self.ndim = self._dataset.ndim
        self.chunks = self._dataset.chunks
        self.attrs = dict(self._dataset.attrs)

    def __getitem__(self, key):
        try:
            return self._dataset[key]
        except Exception as err:  # h5py raises OSError for a failed filter
            raise InputError(f"{self.file}:{self.name}: {self._where(key)} cannot be read "
                             f"({first_line(err)}); restore the file from a copy") from err

    def _where(self, key) -> str:
        """The chunks (by their first voxel, as HDF5 counts them) that ``key`` reaches."""
        if self.chunks is None:
            return "the data"
        starts = [tuple(i * c for i, c in zip(index, self.chunks))
                  for index in chunk_indices(key, chunks=self.chunks, shape=self.shape)]
        listed = ", ".join(str(s) for s in starts[:4]) + (", ..." if len(starts) > 4 else "")
        return f"the chunk{'s' * (len(starts) > 1)} at {listed}"

    def __getstate__(self) -> dict:
        return {"file": self.file, "name": self.name}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["file"], state["name"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._h5.close()
