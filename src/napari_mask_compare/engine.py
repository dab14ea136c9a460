"""Where dask computations run and how their progress shows: the one place that knows schedulers.

Three engines, chosen like the command line's ``--scheduler`` / ``--workers``:

- nothing given: dask's embedded local scheduler, :data:`THREADS_PER_CORE` threads per core
  (the work here is compiled kernels, numpy and zarr decompression, which release the GIL),
  nothing to start;
- ``scheduler="processes"`` (or ``"threads"``, ``"synchronous"``): that local dask scheduler,
  ``workers`` of them;
- ``workers=N``: a ``distributed.LocalCluster`` of N single-threaded worker processes, started
  on entry (again, once, if a worker died as it started) and stopped on exit;
- ``scheduler="tcp://HOST:PORT"``: an existing dask.distributed cluster. An address where
  nothing listens or whose host cannot be found is a :class:`SchedulerError` at once (one line,
  no traceback); one that does not answer distributed's handshake within
  :data:`CONNECT_TIMEOUT` seconds too, and one that answers but has no worker after
  ``timeout`` seconds.

On a cluster (an address or a LocalCluster) a computation that has had no worker for
``worker_timeout`` seconds (:data:`WORKER_TIMEOUT` by default) is cancelled and is a
:class:`SchedulerError`, as are a scheduler that stops answering and a task whose workers keep
dying; distributed waits for a worker forever. distributed's log lines (workers lost, restarted,
connections closed) are kept off stderr while the engine is open, in the LocalCluster's worker
processes too, unless ``verbose``.

Every computation goes through :func:`compute`, which runs the collections on the current
engine (the innermost ``with Engine(...)`` of this thread, else the local threads) and reports
progress: dask's progress bar on stderr when ``progress`` is on, and ``callback(desc, done,
total)`` (task counts) for a GUI, e.g. the napari widget driving napari's progress bar::

    with Engine(workers=2, progress=True):
        table = overlap_table(a, b)          # computes through engine.compute

No Qt, no napari; dask and distributed are imported on first use.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .errors import InputError

__all__ = ["LOCAL_SCHEDULERS", "Engine", "SchedulerError", "check_scheduler", "compute", "current"]

#: Names of dask's local schedulers that ``scheduler=`` accepts instead of an address.
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")

#: Threads of the local threaded scheduler per core. zarr 3 reads chunks through its own event
#: loop and codec threads, so a task that reads waits part of the time; with one thread per
#: core a core sits idle then. Measured on the 512 x 2048 x 2048 pair (2 cores): blockwise
#: table 12.2-13.5 s with 4 threads vs 14.9-15.0 s with 2; reading alone 6.8-7.1 vs 7.4-7.9 s.
THREADS_PER_CORE = 2

#: Seconds a computation runs before its text progress bar appears (short steps stay quiet).
PROGRESS_AFTER = 1.0

#: Seconds a computation on a cluster waits for a worker when the cluster has none left (a worker
#: is gone for the scheduler when its process ends, or after distributed's ``worker-ttl`` when its
#: host falls silent), before it is cancelled; the default of ``Engine(worker_timeout=)``.
WORKER_TIMEOUT = 60.0

#: Seconds for a scheduler address to accept a TCP connection and answer distributed's
#: handshake, together (a refused connection or an unknown host is said at once): short enough
#: that the whole command refuses a dead address within 5 s, Python's start-up included.
CONNECT_TIMEOUT = 3.0

#: Times a LocalCluster is started before its failure to start ends the run (see
#: ``_local_cluster``): a worker killed while it starts is not the next start's fate.
CLUSTER_STARTS = 2

#: Seconds between two looks at a cluster's workers while a computation runs.
WORKER_POLL = 1.0

#: The level of distributed's log handlers while an engine that is not verbose is open: above
#: every level, so that nothing distributed logs reaches stderr.
_SILENT = logging.CRITICAL + 1

#: ``callback(desc, done, total)``: ``done`` of ``total`` tasks of the step ``desc`` are finished.
ProgressCallback = Callable[[str, int, int], None]

_CURRENT: contextvars.ContextVar[Engine | None] = contextvars.ContextVar(
    "napari_mask_compare_engine", default=None)


class SchedulerError(InputError):
    """A cluster that cannot be used (no answer, no worker left, workers dying): one line."""


class Engine:
    """Where :func:`compute` runs dask collections; a context manager.

    Parameters
    ----------
    scheduler : str, optional
        ``None`` for dask's local threads; one of :data:`LOCAL_SCHEDULERS`; or the address of
        a dask.distributed scheduler (``tcp://HOST:PORT``, ``HOST:PORT``, ``tls://...``).
    workers : int, optional
        With no ``scheduler``: start a ``LocalCluster`` of this many single-threaded worker
        processes. With a local scheduler name: its number of threads or processes. Not with
        an address (the cluster has its own workers).
    progress : bool
        Show a progress bar on stderr for every step that lasts more than
        :data:`PROGRESS_AFTER` seconds (the default of :func:`compute`'s ``progress``).
    callback : callable, optional
        ``callback(desc, done, total)`` as tasks finish (the default of :func:`compute`'s).
    timeout : float
        Seconds to wait for a scheduler address to answer (at most :data:`CONNECT_TIMEOUT`),
        and for its first worker.
    worker_timeout : float, optional
        On a cluster: seconds a computation waits for a worker when none is left, then it is
        cancelled (:class:`SchedulerError`); default :data:`WORKER_TIMEOUT`.
    verbose : bool
        On a cluster: let distributed's log lines through to stderr (by default none is shown).

    Examples
    --------
    >>> import dask.array as da
    >>> with Engine(scheduler="synchronous") as engine:
    ...     compute(da.ones(4, chunks=2).sum(), desc="sum")
    (np.float64(4.0),)
    """

    def __init__(self, *, scheduler: str | None = None, workers: int | None = None,
                 progress: bool = False, callback: ProgressCallback | None = None,
                 timeout: float = 5.0, worker_timeout: float | None = None,
                 verbose: bool = False):
        if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
            raise InputError(f"--scheduler {scheduler!r}: expected a dask scheduler address "
                             f"such as tcp://HOST:PORT, or one of {', '.join(LOCAL_SCHEDULERS)}")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise InputError(f"--workers {workers!r}: expected a whole number of workers >= 1")
        if scheduler is not None and _is_address(scheduler) and workers is not None:
            raise InputError(f"--workers {workers} with --scheduler {scheduler}: a cluster has "
                             "its own workers; give one of the two")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        worker_timeout = WORKER_TIMEOUT if worker_timeout is None else worker_timeout
        if not worker_timeout > 0:  # NaN too
            raise InputError(f"--worker-timeout {worker_timeout!r}: expected a number of "
                             "seconds > 0")
        self.scheduler = scheduler.strip() if scheduler else None
        self.workers = workers
        self.progress = bool(progress)
        self.callback = callback
        self.timeout = float(timeout)
        self.worker_timeout = float(worker_timeout)
        self.verbose = bool(verbose)
        self.client = None
        self._cluster = None
        self._quiet = contextlib.ExitStack()
        self._workers_seen: set[str] = set()  # addresses, to name the lost ones
        self._tokens: list[contextvars.Token] = []

    # ------------------------------------------------------------------ lifetime

    @property
    def distributed(self) -> bool:
        """True when computations run on a dask.distributed cluster (address or LocalCluster)."""
        return self.scheduler is None and self.workers is not None or _is_address(self.scheduler)

    def __enter__(self) -> Engine:
        if self.client is None and self.distributed:
            if not self.verbose:
                self._quiet.enter_context(_silence_distributed())
            try:
                if _is_address(self.scheduler):
                    self.client = _connect(self.scheduler, timeout=self.timeout)
                else:
                    self.client, self._cluster = _local_cluster(self.workers,
                                                                verbose=self.verbose)
            except BaseException:
                self._quiet.close()
                raise
        self._tokens.append(_CURRENT.set(self))
        return self

    def __exit__(self, *exc_info) -> None:
        _CURRENT.reset(self._tokens.pop())
        if not self._tokens:
            self.close()

    def close(self) -> None:
        """Disconnect from the cluster, and stop the LocalCluster this engine started."""
        client, cluster, self.client, self._cluster = self.client, self._cluster, None, None
        with self._quiet:  # distributed's log lines back on after the cluster is closed
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()

    def describe(self) -> str:
        """One line saying where computations run, e.g. ``"local threads (2)"``."""
        if self.client is not None:
            info = self.client.scheduler_info(n_workers=-1)
            workers = info.get("workers", {})
            threads = sum(w.get("nthreads", 0) for w in workers.values())
            where = "LocalCluster" if self._cluster is not None else f"cluster at {self.scheduler}"
            return f"dask {where}: {len(workers)} workers, {threads} threads"
        name = self.scheduler or "threads"
        count = self.workers or {"synchronous": 1, "threads": _local_threads()}.get(
            name, os.cpu_count() or 1)
        return f"dask local {name} ({count})"

    def _where(self) -> str:
        """The cluster as the user named it, to begin a one-line error."""
        if self._cluster is not None:
            return f"the local dask cluster (--workers {self.workers})"
        return f"the dask cluster at {self.scheduler}"

    # ------------------------------------------------------------------ computing

    def compute(self, *collections, desc: str = "", progress: bool | None = None,
                callback: ProgressCallback | None = None) -> tuple:
        """Compute dask collections here; see :func:`compute`."""
        progress = self.progress if progress is None else progress
        callback = self.callback if callback is None else callback
        if self.client is not None:
            return _compute_distributed(self.client, collections, desc=desc,
                                        progress=progress, callback=callback,
                                        worker_timeout=self.worker_timeout, where=self._where(),
                                        workers_seen=self._workers_seen)
        if self.distributed:
            raise RuntimeError("Engine with a cluster is not open: use it in a with statement")
        return _compute_local(collections, scheduler=self.scheduler or "threads",
                              workers=self.workers, desc=desc, progress=progress,
                              callback=callback)


def current() -> Engine:
    """The engine of the innermost open ``with Engine(...)`` here, else local threads."""
    return _CURRENT.get() or Engine()


def compute(*collections, desc: str = "", progress: bool | None = None,
            callback: ProgressCallback | None = None) -> tuple:
    """Compute dask collections on the current engine, showing progress.

    Parameters
    ----------
    *collections : dask collections (arrays, delayed, bags)
    desc : str
        What the step does, shown before the bar and passed to ``callback``.
    progress : bool, optional
        Text progress bar on stderr (after :data:`PROGRESS_AFTER` seconds); default: the
        engine's.
    callback : callable, optional
        ``callback(desc, done, total)`` with task counts, called as tasks finish (at most once
        per percent) and once at the end; default: the engine's. It runs in the thread that
        called :func:`compute` (local) or in distributed's event-loop thread.

    Returns
    -------
    tuple
        One computed result per collection, like :func:`dask.compute`.
    """
    return current().compute(*collections, desc=desc, progress=progress, callback=callback)


def check_scheduler(address: str, *, timeout: float = 5.0) -> str:
    """Connect to a dask.distributed scheduler and describe it; :class:`SchedulerError` otherwise.

    Parameters
    ----------
    address : str
        ``tcp://HOST:PORT`` (or another distributed address).
    timeout : float
        Seconds to wait for the scheduler to answer (at most :data:`CONNECT_TIMEOUT`), and for
        a worker.

    Returns
    -------
    str
        One line, e.g. ``"dask cluster at tcp://10.0.0.5:8786: 4 workers, 16 threads"``.
    """
    with Engine(scheduler=address, timeout=timeout) as engine:
        return engine.describe()


# --------------------------------------------------------------------------- schedulers


def _is_address(scheduler: str | None) -> bool:
    return scheduler is not None and scheduler not in LOCAL_SCHEDULERS + ("sync",)


def _connect(address: str, *, timeout: float):
    """A Client of the scheduler at ``address`` with at least one worker, or SchedulerError."""
    from distributed import Client

    start = time.monotonic()
    # before a Client (a failed one complains at exit), within CONNECT_TIMEOUT in all
    limit = min(timeout, CONNECT_TIMEOUT)
    _handshake(address, timeout=_probe(address, timeout=limit), limit=limit)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except OSError:
        raise SchedulerError(f"--scheduler {address}: the scheduler stopped answering; "
                             "check that it runs, or leave --scheduler out") from None
    try:
        client.wait_for_workers(1, timeout=max(timeout - (time.monotonic() - start), 1.0))
    except (OSError, TimeoutError):
        client.close()
        raise SchedulerError(
            f"--scheduler {address}: the scheduler answers but has no worker after {timeout:g} s; "
            f"start workers (dask worker {address}) or leave --scheduler out"
        ) from None
    return client


def _probe(address: str, *, timeout: float) -> float:
    """Open one plain TCP connection to the scheduler's host and port; return the seconds left
    of ``timeout`` for distributed's handshake.

    distributed's ``connect`` retries a refused connection until its timeout; this says at
    once that nothing listens there, or that the host does not exist. An address that is not
    TCP's (or not one at all) is left to the handshake to judge.

    Raises
    ------
    SchedulerError
        Refused, unknown host, unreachable, or no connection within ``timeout``.
    """
    import socket

    from distributed.comm.addressing import get_address_host_port

    start = time.monotonic()
    try:
        host, port = get_address_host_port(address)
    except (ValueError, TypeError, KeyError):  # another protocol, or no address
        return timeout
    hint = "start one there (dask scheduler) or leave --scheduler out to compute locally"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as err:
        raise SchedulerError(f"--scheduler {address}: the host {host} cannot be found "
                             f"({err.strerror}); check the address") from None
    except ConnectionRefusedError:
        raise SchedulerError(f"--scheduler {address}: nothing listens there (connection "
                             f"refused), no dask scheduler; {hint}") from None
    except OSError as err:  # unreachable, or silent (a firewall): timed out
        reason = err.strerror or "no connection"
        raise SchedulerError(f"--scheduler {address}: no dask scheduler answered within "
                             f"{timeout:g} s ({reason}); {hint}") from None
    return max(timeout - (time.monotonic() - start), 0.1)


def _handshake(address: str, *, timeout: float, limit: float) -> None:
    """Open and close one connection to ``address`` (distributed's handshake) within
    ``timeout`` seconds; SchedulerError (saying ``limit`` seconds, the whole wait)."""
    import asyncio

    from distributed.comm import connect

    async def handshake():
        # wait_for: a server that accepts but never answers must not hold the command
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    try:
        # a thread of its own: works inside a running event loop too
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, handshake()).result()
    except OSError:  # refused, unreachable, timed out (TimeoutError is one), unknown host
        raise SchedulerError(
            f"--scheduler {address}: no dask scheduler answered within {limit:g} s; start one "
            "there (dask scheduler) or leave --scheduler out to compute locally"
        ) from None
    except (ValueError, TypeError) as err:  # not an address distributed can parse
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SchedulerError(
            f"--scheduler {address}: not a dask scheduler address ({reason}); expected "
            f"tcp://HOST:PORT, or one of {', '.join(LOCAL_SCHEDULERS)}"
        ) from None
    except Exception as err:  # something answers, but not as a dask scheduler does
        raise SchedulerError(
            f"--scheduler {address}: what answers there is not a dask scheduler "
            f"({type(err).__name__}); check the address and port"
        ) from None


def _local_cluster(workers: int, *, verbose: bool):
    """A LocalCluster of ``workers`` single-threaded processes and its Client.

    A worker process that dies while the cluster starts (killed, out of memory) makes
    distributed give the whole cluster up ("Nanny failed to start"; its nanny restarts a
    worker that dies later, not one that never reported): the cluster is started again,
    :data:`CLUSTER_STARTS` times in all, then it is a :class:`SchedulerError`.
    """
    from distributed import Client, LocalCluster

    for _ in range(CLUSTER_STARTS):
        try:
            # silence_logs: the level of distributed's log handlers in the worker processes
            # (here it is _silence_distributed's), False: as distributed's configuration says
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0",  # any free port, no warning
                                   silence_logs=False if verbose else _SILENT)
            break
        except Exception as err:  # noqa: BLE001 (LocalCluster has closed what it started)
            failure = err
    else:
        reason = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
        raise SchedulerError(
            f"the local dask cluster (--workers {workers}) could not start, {CLUSTER_STARTS} "
            f"times ({reason}); see distributed's log lines (--verbose), or leave --workers "
            "out to compute on local threads") from None
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return client, cluster


@contextlib.contextmanager
def _silence_distributed():
    """Keep distributed's log lines off stderr for a while.

    distributed's configuration gives its loggers (``distributed``, ``distributed.client``,
    ..., ``tornado``) a stream handler of its own; raising the handlers' level silences them
    all, as ``LocalCluster(silence_logs=)`` does.
    """
    from distributed.utils import silence_logging_cmgr

    with silence_logging_cmgr(_SILENT), silence_logging_cmgr(_SILENT, root="tornado"):
        yield


# --------------------------------------------------------------------------- computing


def _local_threads() -> int:
    """Threads of the local threaded scheduler when none are asked for."""
    return THREADS_PER_CORE * (os.cpu_count() or 1)


def _compute_local(collections, *, scheduler: str, workers: int | None, desc: str,
                   progress: bool, callback: ProgressCallback | None) -> tuple:
    import dask

    callbacks = []
    if progress:
        callbacks.append(_local_bar(desc))
    if callback is not None:
        callbacks.append(_local_report(desc, callback))
    options = {"num_workers": workers} if workers and scheduler != "synchronous" else {}
    # passed to this computation only (``with callback:`` would register them process-wide)
    callbacks = [callback_._callback for callback_ in callbacks]
    if scheduler != "threads":
        return dask.compute(*collections, scheduler=scheduler, callbacks=callbacks, **options)
    # A pool of this computation's own, shut down before returning: when a task fails, dask
    # raises at once while other tasks still run; waiting for them means that nothing a
    # failed computation started (a block being written) happens after it has returned.
    pool = ThreadPoolExecutor(workers or _local_threads())
    try:
        return dask.compute(*collections, scheduler=scheduler, callbacks=callbacks, pool=pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _compute_distributed(client, collections, *, desc: str, progress: bool,
                         callback: ProgressCallback | None, worker_timeout: float,
                         where: str, workers_seen: set[str]) -> tuple:
    """Compute on a cluster; :class:`SchedulerError` when the cluster fails the computation.

    ``workers_seen`` (the addresses of the workers seen so far) is updated as workers join.
    """
    futures = client.compute(list(collections))
    watchdog = _Watchdog(client, futures, timeout=worker_timeout, seen=workers_seen)
    try:
        with watchdog:
            if progress or callback is not None:
                _follow_distributed(futures, client=client, desc=desc, text=progress,
                                    callback=callback)
            return tuple(client.gather(futures))
    except BaseException as err:
        client.cancel(futures)  # nothing of a failed computation goes on running
        failure = _cluster_failure(err, where=where, lost=watchdog.lost,
                                   worker_timeout=worker_timeout)
        if failure is None:
            raise
        raise failure from None


def _cluster_failure(err: BaseException, *, where: str, lost: list[str] | None,
                     worker_timeout: float) -> SchedulerError | None:
    """The one line for a computation that the cluster failed; None for another error."""
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    if isinstance(err, FutureCancelledError) and lost is not None:
        workers = f" (lost {', '.join(lost)})" if lost else ""
        return SchedulerError(f"{where}: no worker left{workers}, and none joined within "
                              f"{worker_timeout:g} s (--worker-timeout); computation cancelled")
    if isinstance(err, FutureCancelledError) and err.reason == "scheduler-connection-lost":
        return SchedulerError(f"{where}: the scheduler stopped answering; computation "
                              "cancelled")
    if isinstance(err, KilledWorker):
        return SchedulerError(
            f"{where}: task {err.task!r} was started on {err.allowed_failures + 1} workers in "
            "turn and each of them died (out of memory?); see the workers' logs (--verbose)")
    return None


class _Watchdog:
    """A thread that cancels ``futures`` once the cluster has had no worker for ``timeout``
    seconds (distributed would wait for one forever); ``lost`` then lists the workers ever
    seen (``seen``, a set it adds to).

    While open (``with watchdog:``) it asks the scheduler for its workers every
    :data:`WORKER_POLL` seconds. It stops when the client is no longer connected (a
    scheduler gone: the client cancels the futures itself).
    """

    def __init__(self, client, futures, *, timeout: float, seen: set[str]):
        self.client, self.futures, self.timeout, self.seen = client, futures, timeout, seen
        self.lost: list[str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cluster watchdog",
                                        daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        none_since = None
        while self.client.status == "running":
            try:
                workers = set(self.client.nthreads())
            except Exception:  # the connection lost meanwhile
                return
            self.seen |= workers
            if workers:
                none_since = None
            elif none_since is None:
                none_since = time.monotonic()
            elif time.monotonic() - none_since >= self.timeout:
                self.lost = sorted(self.seen)
                self.client.cancel(self.futures, reason="no-workers")
                return
            if self._stop.wait(WORKER_POLL):
                return


class _Report:
    """Calls ``callback(desc, done, total)`` at most once per percent, and at the end."""

    def __init__(self, desc: str, callback: ProgressCallback):
        self.desc, self.callback, self._last = desc, callback, None

    def __call__(self, done: int, total: int, *, final: bool = False) -> None:
        percent = 100 * done // max(total, 1)
        if final or percent != self._last:
            self._last = percent
            self.callback(self.desc, done, total)


def _draw_text(out, desc: str, frac: float, elapsed: float, *, width: int = 40) -> None:
    from dask.utils import format_time

    bar = "#" * int(width * frac)
    label = f"{desc}: " if desc else ""
    with contextlib.suppress(ValueError, OSError):  # closed or broken stderr: no bar
        out.write(f"\r{label}[{bar:<{width}}] | {int(100 * frac)}% | {format_time(elapsed)}")
        out.flush()


def _local_bar_class():
    from dask.diagnostics import ProgressBar

    class LocalBar(ProgressBar):
        """dask's local progress bar, on stderr, with the step's name in front."""

        def __init__(self, desc: str):
            super().__init__(minimum=PROGRESS_AFTER, out=sys.stderr)
            self.desc = desc

        def _draw_bar(self, frac, elapsed):
            _draw_text(self._file, self.desc, frac, elapsed, width=self._width)

    return LocalBar


def _local_bar(desc: str):
    """dask's ProgressBar for one step (the class needs dask, imported late)."""
    return _local_bar_class()(desc)


def _local_report(desc: str, callback: ProgressCallback):
    """A dask local-scheduler Callback that reports task counts to ``callback``."""
    from dask.callbacks import Callback

    report = _Report(desc, callback)

    def counts(state):
        done = len(state["finished"])
        return done, done + sum(len(state[k]) for k in ("ready", "waiting", "running"))

    def start_state(dsk, state):
        report(*counts(state))

    def posttask(key, result, dsk, state, worker_id):
        report(*counts(state))

    def finish(dsk, state, errored):
        if not errored:
            done, total = counts(state)
            report(total, total, final=True)

    return Callback(start_state=start_state, posttask=posttask, finish=finish)


def _follow_distributed(futures, *, client, desc: str, text: bool,
                        callback: ProgressCallback | None) -> None:
    """Follow ``futures`` with distributed's progress feed until they finish (blocks)."""
    from distributed.diagnostics.progressbar import TextProgressBar

    report = _Report(desc, callback) if callback is not None else None
    drawn = False

    class Bar(TextProgressBar):
        def _draw_bar(self, remaining, all, **kwargs):  # noqa: A002 - distributed's name
            nonlocal drawn
            if report is not None:
                report(all - remaining, all)
            if text and self.elapsed >= PROGRESS_AFTER:
                drawn = True
                _draw_text(sys.stderr, desc, (1 - remaining / all) if all else 1.0, self.elapsed)

        def _draw_stop(self, remaining=0, status="finished", **kwargs):
            if report is not None and status == "finished":
                total = getattr(self, "_last_response", {}).get("all", len(self.keys))
                report(total, total, final=True)

    try:
        Bar(futures, scheduler=client.scheduler.address, loop=client.loop, start=True)
    finally:  # finished, failed, or the feed cut off with the scheduler: end the bar's line
        if drawn:
            with contextlib.suppress(ValueError, OSError):
                sys.stderr.write("\n")
                sys.stderr.flush()
