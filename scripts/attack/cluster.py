"""Cluster faults: schedulers that do not answer, and workers that die mid-merge.

Promises (README, "Masks larger than memory"; issue 17, point 7):

- ``--scheduler`` to an address that accepts but never answers, to a dead
  address, to a host that does not exist: one line naming the address, exit 2,
  within :data:`SCHEDULER_BOUND_S` (the time is recorded);
- the only worker of a cluster SIGKILLed mid-merge: one line, exit 2, within
  :data:`WORKER_LOSS_BOUND_S`, no output;
- one worker of ``--workers 2`` SIGKILLed mid-merge: the right result, and no
  message on stderr (distributed's logging is quiet); SIGKILLed as the cluster
  starts: the same (the cluster is started again), or one line and exit 2.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time

import numpy as np

from .common import (
    MASK_COMPARE,
    Outcome,
    Run,
    describe,
    one_line_refusal,
    quiet_stderr,
    read_output,
    reference_merge,
    run_cli,
    same_ids,
)
from .kills import grid_pair, temp_files
from .stores import write_zarr

#: README ("The engine is dask"): a dead address, an unknown host or a server that does not
#: answer as a dask scheduler is refused in one line "within 5 s either way" (the whole
#: command, Python's start-up included).
SCHEDULER_BOUND_S = 5.0
#: README: a cluster left without workers fails the run "within --worker-timeout seconds
#: (default 60) plus 5 s after its last worker went" (the default timeout is used here).
WORKER_LOSS_BOUND_S = 60.0 + 5.0


class SilentServer(threading.Thread):
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""

    def __init__(self):
        super().__init__(daemon=True)
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.socket.getsockname()[1]}"
        self.held: list[socket.socket] = []

    def run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.socket.accept()[0])

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.socket.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scheduler_cases(outcome: Outcome, folder, *, quick: bool) -> None:
    server = SilentServer()
    server.start()
    addresses = {"a server that never answers": server.address,
                 "a dead address": f"tcp://127.0.0.1:{free_port()}",
                 "a host that does not exist": "tcp://no-such-host.invalid:8786"}
    commands = {"merge": ["merge", "a.zarr", "b.zarr", "--out", "o.zarr"],
                "stats": ["stats", "a.zarr", "b.zarr"]}
    try:
        for what, address in addresses.items():
            for command, args in list(commands.items())[:1 if quick else 2]:
                run = run_cli([*args, "--scheduler", address], cwd=folder, timeout=120)
                outcome.figures.setdefault(f"seconds to the refusal, {what}", []).append(
                    round(run.seconds, 1))
                happened = one_line_refusal(run, names=(address,))
                if happened is None and run.seconds > SCHEDULER_BOUND_S:
                    happened = f"the line came after {run.seconds:.1f} s"
                outcome.check(f"{command} --scheduler {what}", happened,
                              did=f"{run.command} ({what})",
                              promised=f"one line naming the address within "
                                       f"{SCHEDULER_BOUND_S:g} s, exit 2", point=7)
                outcome.cases += 1
    finally:
        server.close()


def _one_worker_cases(ws, outcome: Outcome, folder, *, n: int) -> None:
    """The only worker of a cluster SIGKILLed mid-merge (once a progress bar shows)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = ws.start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                          "127.0.0.1", "--port", str(port), "--no-dashboard"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for k in range(n):
            worker = ws.start([sys.executable, "-m", "distributed.cli.dask_worker", address,
                               "--nthreads", "1", "--no-nanny", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(4)  # the worker joins
            out = folder / f"lost{k}" / "out.zarr"  # a folder of its own: its temporary files
            args = ["merge", "a.zarr", "b.zarr", "--out", f"lost{k}/out.zarr", "--scheduler",
                    address]
            run, killed = _kill_while_computing(ws, args, folder,
                                                lambda _, w=worker: [w])
            outcome.kills += killed
            outcome.figures.setdefault("seconds to the end after the only worker's kill",
                                       []).append(round(run.seconds, 1))
            happened = one_line_refusal(run) if killed else "the merge ended before the kill"
            if happened is None and run.seconds > WORKER_LOSS_BOUND_S:
                happened = f"the line came {run.seconds:.0f} s after the kill"
            left = [p.name for p in (out,) if p.exists()] + temp_files(out.parent)
            happened = happened or (f"output left: {left}" if left else None)
            outcome.check(f"only worker killed #{k}", happened,
                          did=f"SIGKILL the only worker mid-merge of {run.command}",
                          promised=f"one line within {WORKER_LOSS_BOUND_S:g} s, exit 2, "
                                   "no output", point=7)
            outcome.cases += 1
    finally:
        ws.kill(scheduler)


class StderrWatch(threading.Thread):
    """Reads a process's stderr as it comes; ``computing`` is set once a progress bar shows."""

    def __init__(self, process):
        super().__init__(daemon=True)
        self.process, self.text, self.computing = process, "", threading.Event()

    def run(self) -> None:
        for char in iter(lambda: self.process.stderr.read(1), ""):
            self.text += char
            if char == "%":
                self.computing.set()
        self.computing.set()


def _kill_while_computing(ws, args, folder, victims, *, wait: bool = True):
    """Run ``mask-compare *args``; once it computes (``wait``; else at once) SIGKILL one of
    ``victims()`` (processes or psutil processes). Returns (the run, with its seconds from
    the kill to the end; whether a victim was killed)."""
    process = ws.start([*MASK_COMPARE, *args], cwd=folder, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    watch = StderrWatch(process)
    watch.start()
    found = victims(process)
    if wait:
        watch.computing.wait(120)
    killed = False
    if found and process.poll() is None:
        victim = found[0]
        with contextlib.suppress(Exception):  # gone already
            ws.kill(victim, group=False) if isinstance(victim, subprocess.Popen) \
                else victim.kill()
            killed = True
    killed_at, status = time.monotonic(), None
    try:
        status = process.wait(WORKER_LOSS_BOUND_S + 20)
    except subprocess.TimeoutExpired:  # no answer: status None
        ws.kill(process)
    watch.join(10)
    return Run([str(a) for a in args], status, "", watch.text,
               time.monotonic() - killed_at), killed


def _two_worker_cases(ws, outcome: Outcome, folder, rng, reference, *, n: int) -> None:
    """One worker of ``--workers 2`` SIGKILLed while the merge computes (even cases) or while
    the cluster starts (odd ones): the right result and stderr quiet (or, as the cluster
    starts, one line and exit 2)."""
    import psutil

    def one_of_two(process):
        workers = _workers(psutil, process.pid, timeout=60)
        return [workers[int(rng.integers(0, 2))]] if len(workers) == 2 else []

    for k in range(n):
        out = folder / f"two{k}" / "out.zarr"
        args = ["merge", "a.zarr", "b.zarr", "--out", f"two{k}/out.zarr", "--workers", "2"]
        mid = k % 2 == 0
        when = "mid-merge" if mid else "as the cluster starts"
        run, killed = _kill_while_computing(ws, args, folder, one_of_two, wait=mid)
        outcome.kills += killed
        if run.status == 0:
            _, found = read_output(out)
            happened = quiet_stderr(run) or same_ids(found, reference)
        else:
            happened = describe(run) if mid else one_line_refusal(run)
        outcome.check(f"one of two workers killed {when} #{k}", happened,
                      did=f"SIGKILL one worker {when} of mask-compare {' '.join(args)}"
                          + ("" if killed else " (no worker found to kill)"),
                      promised="the right result, stderr quiet"
                               + ("" if mid else ", or one line and exit 2"),
                      point=7 if mid else None)  # the issue speaks of workers lost mid-merge
        outcome.cases += 1


def _workers(psutil, pid: int, *, timeout: float) -> list:
    """The worker processes (multiprocessing children) of a LocalCluster started by ``pid``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = psutil.Process(pid).children(recursive=True)
            found = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        except psutil.Error:
            return []
        if len(found) >= 2:
            return found[:2]
        time.sleep(0.2)
    return []


def run(ws, *, seed: int, quick: bool) -> Outcome:
    outcome = Outcome("cluster faults")
    rng = np.random.default_rng([seed, 6])
    folder = ws.folder("cluster")
    a, b = grid_pair(rng, (32, 256, 256), (4, 16, 16))
    for name, data in (("a", a), ("b", b)):
        write_zarr(folder / f"{name}.zarr", data, chunks=(4, 64, 64))
    _scheduler_cases(outcome, folder, quick=quick)
    if quick:
        outcome.notes.append("the only worker's death is attacked in a full run (it may wait "
                             f"{WORKER_LOSS_BOUND_S + 20:g} s)")
    else:
        _one_worker_cases(ws, outcome, folder, n=2)
    _two_worker_cases(ws, outcome, folder, rng, reference_merge(a, b)[0], n=1 if quick else 4)
    return outcome
