"""A dask worker preload for the cluster-fault tests: tasks that leave a mark and take time.

Given to a worker as ``--preload tests/slow_tasks_preload.py`` (or through
``DASK_DISTRIBUTED__WORKER__PRELOAD`` to the workers of a LocalCluster). Every task of the
worker first adds a byte to ``$SLOW_TASKS_MARKS/task-<pid>`` (so that a test knows which
worker process has run how many tasks: the moment to kill it), then sleeps
``$SLOW_TASKS_SECONDS`` (so that a small merge lasts long enough to be killed in the middle).
With ``SLOW_TASKS_DIE=1`` a worker kills itself at its first task instead, as one that runs
out of memory is killed.
"""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor


class SlowThreadPoolExecutor(ThreadPoolExecutor):  # "ThreadPoolExecutor" in the name: the
    # worker runs tasks on it as on its own pool

    def submit(self, fn, /, *args, **kwargs):
        def slow(*args, **kwargs):
            mark = os.path.join(os.environ["SLOW_TASKS_MARKS"], f"task-{os.getpid()}")
            with open(mark, "a") as file:
                file.write(".")
            if os.environ.get("SLOW_TASKS_DIE") == "1":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(float(os.environ.get("SLOW_TASKS_SECONDS", "0.1")))
            return fn(*args, **kwargs)

        return super().submit(slow, *args, **kwargs)


def dask_setup(worker):
    worker.executors["default"] = SlowThreadPoolExecutor(1)
