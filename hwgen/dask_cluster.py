"""The one way hwgen gets a Dask client (shared by the regression and bulk simulation).

``client(None, n)`` starts a private LocalCluster of ``n`` single-threaded worker processes
(no dashboard); ``client("tcp://host:8786", ...)`` connects to a running scheduler, e.g. one
that dask-jobqueue started on Slurm/LSF (docs/regress.md). Task functions must be importable
and their arguments picklable: the workers are separate (spawned) processes.
"""

from __future__ import annotations

__all__ = ["client"]


def client(scheduler: str | None = None, n_workers: int = 2):
    """A ``distributed.Client``: to ``scheduler`` if given, else to a new LocalCluster."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s")
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    )
    return Client(cluster)
