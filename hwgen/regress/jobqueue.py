"""Dask workers on a batch system (Slurm or LSF) for ``hwgen regress --scheduler`` (and
``hwgen sweep --scheduler``: a board build needs ``--memory 8GB`` and a longer ``--walltime``).

    python -m hwgen.regress.jobqueue slurm --jobs 20 --queue hw --account fpga

starts a Dask scheduler here, submits 20 single-core worker jobs through dask-jobqueue, prints
the scheduler address and keeps running; in another shell
``make regress N=2000 SCHEDULER=tcp://...`` sends the cases to those workers. The workers
must see the same file system (the work directory, the venv) as this machine; see
docs/regress.md. ``--print-script`` prints the batch script and submits nothing.
"""

from __future__ import annotations

import argparse
import sys
import time

from hwgen.paths import workdir

__all__ = ["cluster", "main"]

KINDS = ("slurm", "lsf")


def cluster(
    kind: str,
    *,
    queue: str | None = None,
    account: str | None = None,
    walltime: str = "02:00:00",
    memory: str = "4GB",
    python: str | None = None,
):
    """A dask-jobqueue cluster whose jobs are one single-threaded worker process each (a case is
    one Verilator build + simulation: one core, ~1-2 GB at 16x16)."""
    if kind not in KINDS:
        raise ValueError(f"batch system {kind!r} is not supported; choose one of {KINDS}")
    from dask_jobqueue import LSFCluster, SLURMCluster

    extra = {"account": account} if kind == "slurm" else {"project": account}
    cls = SLURMCluster if kind == "slurm" else LSFCluster
    return cls(
        queue=queue,
        **extra,
        cores=1,
        processes=1,
        memory=memory,
        walltime=walltime,
        python=python or sys.executable,
        # Cases write under the work directory: it must be on the shared file system.
        job_script_prologue=[f"export HWGEN_WORKDIR={workdir()}"],
        scheduler_options={"dashboard": False},
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwgen.regress.jobqueue", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--jobs", type=int, default=8, help="worker jobs to submit (default 8)")
    p.add_argument("--queue", default=None)
    p.add_argument("--account", default=None, help="Slurm account / LSF project")
    p.add_argument("--walltime", default="02:00:00")
    p.add_argument("--memory", default="4GB")
    p.add_argument("--print-script", action="store_true", help="print the job script and exit")
    a = p.parse_args(argv)
    with cluster(a.kind, queue=a.queue, account=a.account, walltime=a.walltime,
                 memory=a.memory) as c:
        if a.print_script:
            print(c.job_script())
            return 0
        c.scale(jobs=a.jobs)
        print(f"scheduler: {c.scheduler_address}\n"
              f"run: make regress SCHEDULER={c.scheduler_address}  or  hwgen sweep --scheduler "
              f"{c.scheduler_address} ...   (Ctrl-C here ends the jobs)",
              flush=True)
        try:
            while True:
                time.sleep(60)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
