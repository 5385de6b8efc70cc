"""Suite order: the longest tests first; one cache of the Verilator runtime objects.

`make test` runs ``pytest -n 2`` with ``--maxschedchunk 1`` (pyproject addopts): xdist hands
each worker the next collected test as it frees up, so with the long tests at the front the two
workers finish within a short test of each other (longest-processing-time-first), instead of
one worker starting a several-minute test when the other has nothing left to do.

Tests that simulate in a temporary work directory would each compile the Verilator runtime
(~18 CPU-s); HWGEN_RUNTIME_CACHE (hwgen.sim.runner) points them all at the checkout's
sim_build/builds/, where the tests in the checkout's own work directory keep it anyway.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwgen.sim.runner import RUNTIME_CACHE_ENV

# Node ids, longest first (per-test seconds of a clean-clone `make test` JUnit report).
# A test not listed keeps its collection order, after these; a stale entry matches nothing.
LONGEST_FIRST = (
    "sim/test_board.py::test_small_full_flow_build",
    "sim/test_network.py::test_network_bit_exact[tiny_cnn-16x16-2]",
    "tests/test_wheel.py::test_wheel_installs_only_hwgen_and_runs_a_model_file",
    "sim/test_network.py::test_corrupted_weight_is_caught_and_located",
    "sim/test_hostlink.py::test_hostlink_end_to_end",
    "sim/test_fast.py::test_fast_engine_reports_corrupted_weight",
    "sim/test_network.py::test_network_bit_exact[mnist_cnn-8x8-6]",
    "sim/test_flow_rtl.py::test_digits_cnn_bit_exact_in_rtl",
    "sim/test_sweep.py::test_sweep_cycles_on_local_cluster",
    "sim/test_faults.py::test_faults_reported_and_recovered",
    "sim/test_multimodel.py::test_one_build_two_models",
    "sim/test_regress.py::test_regress_smoke_on_dask",
    "sim/test_share_mul.py::test_share_mul_rtl",
    "sim/test_network.py::test_network_bit_exact_past_the_dsp_budget",
    "sim/test_residual_rtl.py::test_res_cnn_bit_exact_in_rtl",
    "sim/test_requant.py::test_requant_rtl[32-4]",
    "sim/test_network.py::test_network_bit_exact[tiny_cnn-3x5-3]",
    "sim/test_network.py::test_network_bit_exact_on_mult18x18d_model[tiny_cnn-4x4-2]",
    "sim/test_fast.py::test_fast_engine_bit_exact_tiny_cnn",
    "sim/test_share_gemm.py::test_share_gemm_rtl[3-4-32]",
    "sim/test_mult.py::test_mult_all_int8_pairs[generic]",
    "sim/test_pool.py::test_pool_rtl[8-8]",
    "sim/test_pe.py::test_pe_rtl[l3_acc32-1]",
)


_RANK = {nodeid: i for i, nodeid in enumerate(LONGEST_FIRST)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a stable sort: the tests not listed keep their order
    items.sort(key=lambda item: _RANK.get(item.nodeid, len(LONGEST_FIRST)))


def pytest_configure(config: pytest.Config) -> None:
    cache = Path(config.rootpath) / "sim_build" / "builds"
    os.environ.setdefault(RUNTIME_CACHE_ENV, str(cache))
