"""One Dask client for hwgen's parallel jobs (bulk simulation, regression shards).

``client(None, n)`` starts a LocalCluster of ``n`` single-threaded worker *processes* on this
machine (closed with the client); ``client("tcp://host:8786", n)`` connects to a running
scheduler of a real cluster (``n`` is then ignored: the cluster decides). Workers are spawned
processes: task functions must be module-level (picklable) and a script that calls this needs
an ``if __name__ == "__main__":`` guard. On a real cluster every path a task reads or writes
must be on a file system the workers share.
"""

from __future__ import annotations

import logging

__all__ = ["client"]


def client(scheduler: str | None = None, n_workers: int = 2):
    """A ``distributed.Client``: LocalCluster by default, or the scheduler at ``scheduler``."""
    from distributed import Client

    if scheduler:
        return Client(scheduler)
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    return Client(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.WARNING,
    )
