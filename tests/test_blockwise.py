"""Blockwise overlap table (dask) and the engine that runs it.

The reference is the in-memory ``overlap_table`` (itself checked against brute force in
test_pairing.py): a blockwise table must equal it in every field, dtypes included.
"""

import contextlib
import dataclasses
import pickle
import socket
import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_mask_compare import engine, pairing
from napari_mask_compare.errors import InputError
from napari_mask_compare.pairing import blockwise_table, overlap_table, review_groups


def assert_same_table(table, reference):
    """Every field equal, with the same dtype."""
    for field in dataclasses.fields(reference):
        got, want = getattr(table, field.name), getattr(reference, field.name)
        if field.name == "shape":
            assert got == want
            continue
        np.testing.assert_array_equal(got, want, err_msg=field.name)
        assert got.dtype == want.dtype, field.name


@contextlib.contextmanager
def storage_blocks():
    """Blocks exactly as the chunks say, however small (the default coalesces tiny chunks)."""
    old = pairing._MIN_BLOCK_VOXELS
    pairing._MIN_BLOCK_VOXELS = 1
    try:
        yield
    finally:
        pairing._MIN_BLOCK_VOXELS = old


def partition(n):
    """Chunks of one axis of length ``n``: any cut points, so chunks differ in size."""
    if n == 1:
        return st.just((1,))
    return st.sets(st.integers(1, n - 1), max_size=n - 1).map(
        lambda cuts: tuple(np.diff([0, *sorted(cuts), n]).tolist()))


ID_VALUES = st.sampled_from([0, 0, 0, 1, 2, 3, 17, 65535, 65536, 2**31 + 5, 2**32 - 1])
DTYPES = st.sampled_from([np.uint8, np.uint16, np.int32, np.uint32, np.int64, np.uint64])


@st.composite
def chunked_pairs(draw):
    """(a, b, chunks_a, chunks_b): 2D or 3D labels with ids up to 2**32 - 1 and any chunks."""
    ndim = draw(st.integers(2, 3))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    pair = []
    for _ in "ab":
        labels = draw(arrays(np.uint64, shape, elements=ID_VALUES))
        dtype = draw(DTYPES)
        pair.append((labels % np.uint64(min(np.iinfo(dtype).max, 2**32 - 1) + 1)).astype(dtype))
    chunks = [tuple(draw(partition(n)) for n in shape) for _ in "ab"]
    return pair[0], pair[1], chunks[0], chunks[1]


@given(case=chunked_pairs())
def test_blockwise_table_equals_in_memory_table(case):
    a, b, chunks_a, chunks_b = case
    with storage_blocks():
        table = overlap_table(da.from_array(a, chunks=chunks_a), da.from_array(b, chunks=chunks_b))
    assert_same_table(table, overlap_table(a, b))


@given(case=chunked_pairs(), split_every=st.integers(2, 5),
       threshold=st.sampled_from([0.05, 0.1, 0.5, 1.0]))
@pytest.mark.slow
def test_review_groups_of_the_blockwise_table_are_the_in_memory_ones(case, split_every,
                                                                    threshold):
    a, b, chunks_a, chunks_b = case
    with storage_blocks():
        lazy = blockwise_table(da.from_array(a, chunks=chunks_a),
                               da.from_array(b, chunks=chunks_b), split_every=split_every)
        (table,) = dask.compute(lazy, scheduler="synchronous")
    assert (review_groups(table, iou_threshold=threshold)
            == review_groups(overlap_table(a, b), iou_threshold=threshold))


def blobs(shape, *, n, seed):
    """Labels that look like cells: random boxes of ids up to 2**32 - 1 painted in turn."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.uint32)
    ids = np.append(rng.integers(1, 2**32 - 1, n - 1, dtype=np.uint32), 2**32 - 1)
    for i in ids:
        lo = [rng.integers(0, s) for s in shape]
        hi = [min(s, start + rng.integers(1, max(2, s // 3))) for start, s in zip(lo, shape)]
        labels[tuple(map(slice, lo, hi))] = i
    return labels


@pytest.fixture(scope="module")
def cells():
    """A 3D pair: B is A with some objects moved by one voxel, others replaced."""
    a = blobs((20, 60, 70), n=120, seed=1)
    b = np.roll(a, 1, axis=2)
    b[:, :, :30] = blobs((20, 60, 30), n=40, seed=2)
    return a, b


def write_zarr(path, data, chunks):
    array = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype)
    array[...] = data
    return zarr.open_array(str(path), mode="r")


def test_zarr_arrays_and_their_dask_arrays(tmp_path, cells):
    a, b = cells
    za = write_zarr(tmp_path / "a.zarr", a, (7, 16, 32))
    zb = write_zarr(tmp_path / "b.zarr", b, (5, 32, 16))  # chunks differ: b is rechunked
    reference = overlap_table(a, b)
    with storage_blocks():
        assert_same_table(overlap_table(da.from_zarr(za), da.from_zarr(zb)), reference)
        assert_same_table(overlap_table(za, zb), reference)  # anything with .chunks
        assert_same_table(overlap_table(a, da.from_zarr(zb)), reference)  # numpy beside dask
        assert_same_table(overlap_table(za, b), reference)


def test_each_block_task_reads_its_own_chunks(tmp_path, cells):
    # what workers receive: the zarr arrays' addresses, not their voxels
    a, b = cells
    za = write_zarr(tmp_path / "a.zarr", a, (4, 16, 16))
    zb = write_zarr(tmp_path / "b.zarr", b, (4, 16, 16))
    with storage_blocks():
        lazy = blockwise_table(da.from_zarr(za), da.from_zarr(zb))
    graph = dict(lazy.__dask_graph__())
    assert len(pickle.dumps(graph)) < a.nbytes / 4
    n_blocks = 5 * 4 * 5
    assert n_blocks < len(graph) < 2 * n_blocks  # reading is fused into the block's task


def test_blocks_follow_the_storage_chunks():
    # small chunks are joined by whole multiples, a huge one is cut by divisors
    small = da.zeros((64, 1024, 1024), chunks=(8, 128, 128), dtype=np.uint32)
    huge = da.zeros((64, 1024, 1024), chunks=(64, 1024, 1024), dtype=np.uint32)
    for x in (small, huge):
        blocks = pairing._block_chunks(x)
        for axis, (stored, block) in enumerate(zip(x.chunks, blocks)):
            inner, outer = set(np.cumsum(stored).tolist()), set(np.cumsum(block).tolist())
            assert outer <= inner or inner <= outer, axis
        voxels = np.prod([max(c) for c in blocks])
        assert pairing._MIN_BLOCK_VOXELS <= voxels <= pairing._MAX_BLOCK_VOXELS
    kept = da.zeros((64, 1024, 1024), chunks=(16, 256, 256), dtype=np.uint32)
    assert pairing._block_chunks(kept) == kept.chunks


def test_coalesced_and_cut_blocks_give_the_same_table(cells, monkeypatch):
    a, b = cells
    reference = overlap_table(a, b)
    monkeypatch.setattr(pairing, "_MIN_BLOCK_VOXELS", 2000)
    monkeypatch.setattr(pairing, "_MAX_BLOCK_VOXELS", 8000)
    monkeypatch.setattr(pairing, "_BLOCK_VOXELS", 4000)
    for chunks in ((2, 5, 7), (20, 60, 70)):  # tiny chunks, and one chunk for the volume
        assert_same_table(overlap_table(da.from_array(a, chunks=chunks),
                                        da.from_array(b, chunks=chunks)), reference)


def test_bad_chunked_input_is_refused_before_computing():
    a = da.zeros((4, 5), chunks=2, dtype=np.uint16)
    with pytest.raises(ValueError, match="differ in shape"):
        overlap_table(a, da.zeros((4, 6), chunks=2, dtype=np.uint16))
    with pytest.raises(ValueError, match="integer labels"):
        overlap_table(a, da.zeros((4, 5), chunks=2, dtype=np.float32))
    with pytest.raises(ValueError, match="2D or 3D"):
        overlap_table(da.zeros((2, 2, 2, 2), chunks=1, dtype=np.uint8),
                      da.zeros((2, 2, 2, 2), chunks=1, dtype=np.uint8))
    with pytest.raises(ValueError, match="split_every"):
        blockwise_table(a, a, split_every=1)


# --------------------------------------------------------------------------- engine


@pytest.mark.parametrize("scheduler", [None, "synchronous", "processes"])
def test_local_schedulers_and_progress_callback(cells, scheduler):
    a, b = cells
    calls = []
    with storage_blocks(), engine.Engine(scheduler=scheduler, workers=2 if scheduler else None,
                                         callback=lambda *call: calls.append(call)):
        table = overlap_table(da.from_array(a, chunks=(10, 30, 35)),
                              da.from_array(b, chunks=(10, 30, 35)))
    assert_same_table(table, overlap_table(a, b))
    assert {desc for desc, _, _ in calls} == {"overlap table"}
    done = [d for _, d, _ in calls]
    assert done == sorted(done)
    assert calls[-1][1] == calls[-1][2] > 0  # ends at total


def test_text_progress_bar_on_stderr(cells, monkeypatch, capsys):
    a, b = cells
    monkeypatch.setattr(engine, "PROGRESS_AFTER", 0.0)
    with engine.Engine(progress=True):
        overlap_table(da.from_array(a, chunks=5), da.from_array(b, chunks=5))
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays for results
    assert "overlap table: [" in captured.err and "100%" in captured.err


@pytest.mark.slow
def test_local_cluster_of_processes(tmp_path, cells):
    # LocalCluster(n_workers=2, processes=True): workers read their own chunks from zarr
    a, b = cells
    za = write_zarr(tmp_path / "a.zarr", a, (10, 32, 32))
    zb = write_zarr(tmp_path / "b.zarr", b, (10, 16, 64))
    calls = []
    with storage_blocks(), engine.Engine(workers=2,
                                         callback=lambda *call: calls.append(call)) as e:
        assert e.describe() == "dask LocalCluster: 2 workers, 2 threads"
        address = e.client.scheduler.address  # the same cluster, reached by its address
        described = engine.check_scheduler(address)
        assert described == f"dask cluster at {address}: 2 workers, 2 threads"
        table = overlap_table(da.from_zarr(za), da.from_zarr(zb))
        (lazy,) = engine.compute(blockwise_table(da.from_zarr(za), da.from_zarr(zb)))
    assert_same_table(table, overlap_table(a, b))
    assert_same_table(lazy, table)
    table_calls = [call for call in calls if call[0] == "overlap table"]
    assert table_calls[-1][1] == table_calls[-1][2] > 0
    assert calls[-1][0] == ""  # the second computation, which had no desc
    assert e.client is None  # closed on exit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_scheduler_is_one_line_quickly(monkeypatch):
    address = f"tcp://127.0.0.1:{free_port()}"
    waits = []  # the timeout each connection attempt is given: the user's, not a default
    probe = engine._probe
    monkeypatch.setattr(engine, "_probe", lambda address, *, timeout: (
        waits.append(timeout), probe(address, timeout=timeout)))
    with pytest.raises(engine.SchedulerError) as err:
        engine.check_scheduler(address, timeout=1)
    assert waits == [1]
    assert isinstance(err.value, InputError)  # the CLI prints it as one line, exits 2
    message = str(err.value)
    assert "\n" not in message and address in message and "--scheduler" in message
    with pytest.raises(engine.SchedulerError), engine.Engine(scheduler=address, timeout=1):
        pass


@pytest.mark.parametrize(("where", "said"), [
    ("a dead address", "nothing listens there (connection refused)"),
    ("a host that does not exist", "the host no-such-host.invalid cannot be found"),
])
def test_a_dead_address_is_refused_before_distributed_tries_it(monkeypatch, where, said):
    """distributed's connect retries a refused connection until its timeout (the whole
    command took 5.7-6.4 s): a plain TCP connection says it at once, distributed is not asked."""
    import distributed.comm

    def must_not_connect(*args, **kwargs):
        raise AssertionError("distributed's connect was tried")

    monkeypatch.setattr(distributed.comm, "connect", must_not_connect)
    address = {"a dead address": f"tcp://127.0.0.1:{free_port()}",
               "a host that does not exist": "tcp://no-such-host.invalid:8786"}[where]
    with pytest.raises(engine.SchedulerError) as err:
        engine.check_scheduler(address, timeout=60)
    assert str(err.value).startswith(f"--scheduler {address}: {said}")
    assert "\n" not in str(err.value)


def test_a_server_that_never_answers_is_refused_after_the_connect_timeout(monkeypatch):
    """The connection and distributed's handshake get CONNECT_TIMEOUT seconds together,
    whatever the engine's timeout (which is for the first worker)."""
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", 0.5)
    server = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody answers
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        with pytest.raises(engine.SchedulerError) as err:
            engine.check_scheduler(address, timeout=30)
    finally:
        server.close()
    assert str(err.value).startswith(f"--scheduler {address}: no dask scheduler answered "
                                     "within 0.5 s;")


@pytest.fixture
def cluster_starts(monkeypatch):
    """``cluster_starts(failing)``: distributed's LocalCluster fails to start the first
    ``failing`` times as it does when a worker process is killed while it starts; returns the
    list of starts tried."""
    import distributed

    real, starts = distributed.LocalCluster, []

    def cluster_starts(failing: int) -> list:
        def local_cluster(*args, **kwargs):
            starts.append(kwargs["n_workers"])
            if len(starts) <= failing:
                raise RuntimeError("Nanny failed to start.")
            return real(*args, **kwargs)

        monkeypatch.setattr(distributed, "LocalCluster", local_cluster)
        return starts

    return cluster_starts


@pytest.mark.slow
def test_a_local_cluster_that_fails_to_start_is_started_again(cells, cluster_starts):
    """A worker killed while the cluster started gave a 48-line traceback and exit status 1."""
    a, b = cells
    starts = cluster_starts(1)
    with engine.Engine(workers=2):
        table = overlap_table(da.from_array(a, chunks=(10, 30, 35)),
                              da.from_array(b, chunks=(10, 30, 35)))
    assert starts == [2, 2]
    assert_same_table(table, overlap_table(a, b))


def test_a_local_cluster_that_never_starts_is_one_line(tmp_path, cluster_starts, capsys):
    from napari_mask_compare.cli import main

    starts = cluster_starts(engine.CLUSTER_STARTS)
    for name in ("a", "b"):
        zarr.create_array(str(tmp_path / f"{name}.zarr"), shape=(8, 8), dtype="u2",
                          chunks=(4, 4))[...] = 1
    assert main(["merge", str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr"), "--out",
                 str(tmp_path / "o.zarr"), "--workers", "2"]) == 2
    assert len(starts) == engine.CLUSTER_STARTS
    assert capsys.readouterr().err.splitlines() == [
        "mask-compare merge: error: the local dask cluster (--workers 2) could not start, "
        f"{engine.CLUSTER_STARTS} times (Nanny failed to start.); see distributed's log lines "
        "(--verbose), or leave --workers out to compute on local threads"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr", "b.zarr"]


def test_something_else_at_the_address_is_one_line(tmp_path):
    # a server that answers with bytes that are not distributed's handshake
    server = socket.create_server(("127.0.0.1", 0))
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"

    def answer():
        connection, _ = server.accept()
        with connection:
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(range(256)) * 4)
            time.sleep(2)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(engine.SchedulerError) as err:
            engine.check_scheduler(address, timeout=1)
    finally:
        server.close()
    message = str(err.value)
    assert "\n" not in message and address in message


def test_engine_options_are_checked():
    with pytest.raises(InputError, match="--workers"):
        engine.Engine(workers=0)
    with pytest.raises(InputError, match="one of the two"):
        engine.Engine(scheduler="tcp://127.0.0.1:8786", workers=2)
    with pytest.raises(InputError, match="--scheduler"):
        engine.Engine(scheduler=" ")
    for seconds in (0, -1, float("nan")):
        with pytest.raises(InputError, match="--worker-timeout"):
            engine.Engine(workers=2, worker_timeout=seconds)
    assert engine.Engine().describe().startswith("dask local threads")
    assert engine.current().scheduler is None
    with engine.Engine(scheduler="synchronous") as e:
        assert engine.current() is e
    assert engine.current() is not e
