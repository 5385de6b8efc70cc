"""The random-network regression's own parts: generator, shrinker, JUnit merge, job script."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest

from hwgen.config import ArrayConfig
from hwgen.golden.run import quantize_input, run
from hwgen.regress.gen import (
    MAX_SIDE,
    SHAPES,
    ConvSpec,
    LinearSpec,
    NetSpec,
    build_module,
    case_shape,
    check,
    images,
    plan_for,
    quantized,
    random_spec,
    shapes_upto,
)
from hwgen.regress.junit import merge
from hwgen.regress.shrink import shrink, size
from hwgen.schedule.emulate import emulate
from hwgen.schedule.lower import lower


@pytest.mark.parametrize("seed", [0, 7, 31])
def test_generated_network_is_valid_and_schedule_matches_golden(seed: int) -> None:
    spec = random_spec(seed)
    assert 1 <= spec.in_ch <= 3 and 8 <= spec.h <= 32 and 8 <= spec.w <= 32
    assert 1 <= spec.rows <= MAX_SIDE and 1 <= spec.cols <= MAX_SIDE
    qm = quantized(spec)
    prog = lower(qm, spec.array)
    for x in quantize_input(images(spec, 2, 1)):
        logits, _ = emulate(prog, x)
        assert np.array_equal(logits, run(qm, x)[-1][1].reshape(-1)), spec.describe()


def test_generator_is_reproducible_from_the_seed() -> None:
    a, b = random_spec(11), random_spec(11)
    assert a == b and a != random_spec(12)
    qa, qb = quantized(a), quantized(b)
    for la, lb in zip(qa.layers, qb.layers, strict=True):
        assert la.name == lb.name
        if hasattr(la, "weight"):
            assert np.array_equal(la.weight, lb.weight) and np.array_equal(la.bias, lb.bias)
    assert np.array_equal(images(a, 3, 1), images(b, 3, 1))
    assert not np.array_equal(images(a, 3, 0), images(a, 3, 1))  # calibration != test


def test_generator_covers_the_op_set() -> None:
    specs = [random_spec(s) for s in range(40)]
    convs = [c for sp in specs for c in sp.convs]
    assert {c.k for c in convs} == {1, 2, 3, 4, 5}
    assert {c.stride for c in convs} == {1, 2}
    assert any(c.pad for c in convs) and any(c.bn for c in convs)
    assert {(c.pool, c.pool_k) for c in convs if c.pool} >= {("max", 2), ("avg", 2), ("avg", 4)}
    assert {sp.in_ch for sp in specs} == {1, 2, 3}
    assert any(sp.rows != sp.cols for sp in specs)
    assert max(max(sp.rows, sp.cols) for sp in specs) > 8
    assert any(c.cout % sp.cols for sp in specs for c in sp.convs)  # ragged channel groups
    assert any(len(sp.linears) == 2 for sp in specs)
    assert all(max(sp.rows, sp.cols) <= 3 for sp in (random_spec(s, max_side=3) for s in range(5)))


def test_module_matches_spec() -> None:
    spec = random_spec(3)
    mod = build_module(spec)
    import torch

    y = mod(torch.zeros(1, spec.in_ch, spec.h, spec.w))
    assert y.shape == (1, spec.linears[-1].n)


BASE = NetSpec(
    seed=5, in_ch=2, h=12, w=12,
    convs=(ConvSpec(6, 3, 1, 1, True, pool="max", pool_k=2), ConvSpec(5, 3, 2, 0, True, bn=True)),
    linears=(LinearSpec(9, True), LinearSpec(4, False)),
    rows=4, cols=3,
)


def test_shrinker_reaches_a_small_failing_network() -> None:
    check(BASE)

    def fails(s: NetSpec) -> bool:  # synthetic bug: a max pool on an array with >1 column
        return s.cols > 1 and any(c.pool == "max" for c in s.convs)

    best, tries = shrink(BASE, fails, max_tries=200)
    assert fails(best) and size(best) < size(BASE) and tries <= 200
    assert len(best.convs) == 1 and len(best.linears) == 1 and best.cols == 2
    assert best.convs[0].pool == "max" and best.convs[0].cout == 1 and best.in_ch == 1
    assert best.rows == 1 and not best.convs[0].relu


def test_shrinker_keeps_a_minimal_failure_and_respects_the_budget() -> None:
    calls = []

    def fails(s: NetSpec) -> bool:
        calls.append(s)
        return True

    best, tries = shrink(BASE, fails, max_tries=3)
    assert tries == 3 == len(calls) and size(best) < size(BASE)
    same, tries = shrink(BASE, lambda s: False, max_tries=500)
    assert same == BASE and tries > 10


def _cocotb_xml(path, failed: bool) -> str:
    body = '<failure message="image 0 differs">layer conv0 word 3</failure>' if failed else ""
    path.write_text(f'<testsuites><testsuite name="t"><testcase classname="accel_tb" '
                    f'name="network" time="1.0">{body}</testcase></testsuite></testsuites>')
    return str(path)


def test_junit_merge(tmp_path) -> None:
    base = {"images": 2, "cycles": 100, "wall_s": 1.5, "waveform": None, "shrunk": None}
    results = [
        {**base, "seed": 2, "spec": "net b", "passed": False, "first_bad_layer": "conv0 (x)",
         "results_xml": _cocotb_xml(tmp_path / "b.xml", True), "waveform": "/w/dump.vcd",
         "shrunk": "in 1x8x8 | fc->1 @ 1x1"},
        {**base, "seed": 1, "spec": "net a", "passed": True,
         "results_xml": _cocotb_xml(tmp_path / "a.xml", False)},
        {**base, "seed": 3, "spec": "?", "passed": False, "cycles": 0, "results_xml": None,
         "error": "ScheduleError: too big"},
    ]
    out = merge(results, tmp_path / "r" / "regress.xml")
    suite = ET.parse(out).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["seed1", "seed2", "seed3"]
    assert not list(cases[0].iter("failure"))
    fail = cases[1].find("failure")
    assert "seed 2" in fail.get("message") and "conv0" in fail.get("message")
    assert "layer conv0 word 3" in fail.text and "make regress SEED=2" in fail.text
    assert "/w/dump.vcd" in fail.text and "fc->1" in fail.text
    assert "too big" in cases[2].find("error").get("message")


def test_slurm_job_script() -> None:
    from hwgen.regress.jobqueue import cluster

    with cluster("slurm", queue="hw", account="fpga", walltime="02:00:00") as c:
        script = c.job_script()
    for want in ("#SBATCH -p hw", "#SBATCH -A fpga", "#SBATCH -t 02:00:00",
                 "--nthreads 1", "HWGEN_WORKDIR", "#SBATCH --cpus-per-task=1"):
        assert want in script, f"{want!r} missing from:\n{script}"
    assert "dask" in script and "worker" in script


def test_lsf_job_script() -> None:
    from hwgen.regress.jobqueue import cluster

    with cluster("lsf", queue="hw", account="fpga", walltime="02:00") as c:
        script = c.job_script()
    for want in ("#BSUB -q hw", "#BSUB -P \"fpga\"", "#BSUB -W 02:00", "--nthreads 1"):
        assert want in script, f"{want!r} missing from:\n{script}"


def test_unknown_batch_system() -> None:
    from hwgen.regress.jobqueue import cluster

    with pytest.raises(ValueError, match="pbs"):
        cluster("pbs")


def test_spec_shapes_reject_vanishing_maps() -> None:
    bad = replace(BASE, h=2, w=2)
    with pytest.raises(ValueError, match="no output pixel"):
        check(bad)


def _square(x: int) -> int:
    return x * x


def test_dask_client_local_and_by_address() -> None:
    from distributed import LocalCluster

    from hwgen.dask_cluster import client

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as lc, client(lc.scheduler_address) as c:
        assert c.gather(c.map(_square, [2, 3])) == [4, 9]
    with client(None, 1) as c:  # the default: a private LocalCluster of worker processes
        assert c.gather(c.submit(_square, 5)) == 25
        assert len(c.scheduler_info()["workers"]) == 1


def test_case_output_goes_to_its_log(tmp_path, capfd) -> None:
    import subprocess
    import sys

    from hwgen.regress.case import output_to

    log = tmp_path / "logs" / "seed1.log"
    with output_to(log):
        print("from python")
        subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
    print("back on the console")
    text = log.read_text()
    assert "from python" in text and "from a child" in text
    assert "back on the console" in capfd.readouterr().out


@pytest.mark.parametrize("argv,what", [
    (["-n", "0"], "-n"), (["--max-side", "17"], "--max-side"), (["--workers", "x"], "--workers"),
    (["--images", "-1"], "--images"),
])
def test_regress_cli_bad_input_is_one_line_exit_2(argv, what, capsys) -> None:
    from hwgen.cli import main

    assert main(["regress", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and what in err[0] and err[0].startswith("hwgen: error:"), err


def test_cases_run_on_a_menu_of_shapes_with_generous_plans() -> None:
    shapes = [case_shape(s) for s in range(60)]
    assert shapes == [case_shape(s) for s in range(60)]  # from the seed alone
    assert set(shapes) <= set(SHAPES) and len(set(shapes)) >= 8
    assert all(max(case_shape(s, 3)) <= 3 for s in range(20)) and (1, 1) in shapes_upto(1)
    for seed in (0, 7):
        spec = random_spec(seed)
        assert (spec.rows, spec.cols) == case_shape(seed)
        plan_for(spec.array).check(lower(quantized(spec), spec.array))  # fits its design
    p1, p16 = plan_for(ArrayConfig(1, 1)), plan_for(ArrayConfig(16, 16))
    assert p1.buf_depth[0] > p16.buf_depth[0] and p1.max_layers >= 5


def test_zero_memory_init_becomes_a_loop() -> None:
    from hwgen.sim.runner import compact_zero_init

    zero = "".join(f"    mem[{i}] = 8'h00;\n" for i in range(3))
    text = (f"  reg [7:0] mem [2:0];\n  initial begin\n{zero}  end\n"
            "  reg [7:0] rom [1:0];\n  initial begin\n    rom[0] = 8'h00;\n"
            "    rom[1] = 8'h05;\n  end\n")
    out = compact_zero_init(text)
    assert "for (hwgen_zinit_1 = 0; hwgen_zinit_1 < 3;" in out
    assert "mem[hwgen_zinit_1] = 8'h0;" in out
    assert "rom[1] = 8'h05;" in out and "mem[2]" not in out  # a non-zero block stays as it was
