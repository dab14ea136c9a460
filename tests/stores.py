"""Label volumes and OME-Zarr images written by ome-zarr-py, for the store tests
(test_store, test_reader_store)."""

import warnings

import numpy as np
import zarr

VOXEL = (2.0, 0.5, 0.25)
CHUNKS = (4, 16, 8)


def blobs(shape=(10, 40, 36), *, seed=0, dtype=np.uint16, n=30):
    """Piecewise constant labels: random ids on a coarse grid, blown up 2 x 4 x 4."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n, size=(-(-shape[0] // 2), -(-shape[1] // 4), -(-shape[2] // 4)))
    coarse[rng.random(coarse.shape) < 0.3] = 0
    full = coarse.repeat(2, 0).repeat(4, 1).repeat(4, 2)
    return full[: shape[0], : shape[1], : shape[2]].astype(dtype)


def ome_image(folder, data, version):
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels

    fmt = FormatV04() if version == "0.4" else FormatV05()
    path = folder / f"img{version}.ome.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt.zarr_format)
    scale = dict(zip("zyx", VOXEL))
    units = dict.fromkeys("zyx", "micrometer")
    image = np.random.default_rng(1).random(data.shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_image(image, root, axes="zyx", fmt=fmt, scale=scale, axes_units=units,
                    storage_options={"chunks": CHUNKS})
        write_labels(data, root, name="cells", axes="zyx", fmt=fmt, scale=scale,
                     axes_units=units, storage_options={"chunks": CHUNKS}, scaler=None,
                     scale_factors=[{"z": 1, "y": 2, "x": 2}])
    return path, image
