"""Is a TIFF whole? Every structure it points to must lie inside the file.

tifffile reads a TIFF cut short (a copy interrupted, a disk that filled)
without a word where it can: it stops the page chain at the first page past
the end, drops a tag whose value lies past it, and then reads a 3D stack as
its first slice, an ImageJ or OME stack as fewer slices, or a file without
its metadata (voxel size, axes). This module walks the file's structure as
the TIFF specification lays it out -- the chain of pages (IFDs), each page's
tag entries, each page's strips or tiles -- and says what lies past the end,
so that the reader refuses the file instead of reading it wrong.

Only bounds are checked: a structure that lies inside the file but holds
garbage is for tifffile and the decoders to find.
"""

from __future__ import annotations

import struct

import numpy as np

#: Tag codes of the data's byte offsets and byte counts (strips, tiles).
_DATA_TAGS = ((273, 279), (324, 325))
#: A page chain longer than this is not followed (tifffile stops at 2**32).
_MOST_PAGES = 2**32


def first_damage(tif) -> str | None:
    """What of an open TIFF lies past the end of its file, or None when it is whole.

    Parameters
    ----------
    tif : tifffile.TiffFile
        Open; its file position is left anywhere.

    Returns
    -------
    str or None
        E.g. "page 3 starts past the end of the file (byte 5586 of 5583)";
        pages counted from 1.
    """
    if tif.is_ndpi:  # 64-bit offsets patched into a classic TIFF: not a mask's format
        return None
    fh, fmt = tif.filehandle, tif.tiff
    size = fh.size
    (offset,) = _read(fh, 4 if fmt.version == 42 else 8, fmt.offsetformat)
    seen: set[int] = set()
    page = 0
    while offset and offset not in seen and page < _MOST_PAGES:
        page += 1
        seen.add(offset)
        if offset + fmt.tagnosize > size:
            return f"page {page} starts past the end of the file (byte {offset} of {size})"
        (count,) = _read(fh, offset, fmt.tagnoformat)
        entries = offset + fmt.tagnosize
        end = entries + count * fmt.tagsize + fmt.offsetsize
        if end > size:
            return f"page {page}'s tags end past the end of the file (byte {end} of {size})"
        damage = _entries_damage(fh, fmt, entries, count, size=size)
        if damage:
            return f"page {page}'s {damage}"
        (offset,) = _read(fh, end - fmt.offsetsize, fmt.offsetformat)
    return None


def _entries_damage(fh, fmt, start: int, count: int, *, size: int) -> str | None:
    """What of one page's tag values and image data lies past ``size``, or None."""
    import tifffile

    fh.seek(start)
    raw = fh.read(count * fmt.tagsize)
    values: dict[int, np.ndarray] = {}
    for i in range(count):
        code, dtype, n, inline = struct.unpack(
            fmt.tagheaderformat, raw[i * fmt.tagsize:(i + 1) * fmt.tagsize])
        form = tifffile.TIFF.DATA_FORMATS.get(dtype)
        if form is None:  # an unknown type: tifffile skips the tag, so does this
            continue
        nbytes = n * struct.calcsize(form)
        if nbytes <= fmt.tagoffsetthreshold:
            value = inline[:nbytes]
        else:
            (where,) = struct.unpack(fmt.offsetformat, inline)
            if where + nbytes > size:
                return (f"tag {code} ({_tag_name(code)}) lies past the end of the file "
                        f"(byte {where + nbytes} of {size})")
            value = None
        if any(code in pair for pair in _DATA_TAGS) and form[-1] in "HIQ":
            if value is None:
                fh.seek(where)
                value = fh.read(nbytes)
            values[code] = np.frombuffer(value, dtype=fmt.byteorder + form[-1], count=n)
    for offsets_code, counts_code in _DATA_TAGS:
        offsets, counts = values.get(offsets_code), values.get(counts_code)
        if offsets is None or counts is None or len(offsets) != len(counts):
            continue
        written = counts > 0
        if written.any():
            end = int((offsets[written].astype(np.uint64) + counts[written]).max())
            if end > size:
                return f"image data ends past the end of the file (byte {end} of {size})"
    return None


def _read(fh, where: int, form: str) -> tuple:
    fh.seek(where)
    return struct.unpack(form, fh.read(struct.calcsize(form)))


def _tag_name(code: int) -> str:
    import tifffile

    return tifffile.TIFF.TAGS.get(code, "private tag")
