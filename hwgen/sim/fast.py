"""Fast bulk RTL simulation: a compiled Verilator C++ harness, sharded as Dask tasks.

The cocotb path (hwgen.sim.network) drives the streams from Python with random gaps and
backpressure and can locate a failing layer; it is the engine for debugging and small runs.
This engine runs the same Verilog at the simulator's own speed for bulk runs (all 10,000
MNIST test images):

* ``hwgen/sim/harness/accel_harness.cpp`` is compiled with ``verilator --cc --exe`` (C++
  ``-O2``, only the ports visible, no tracing, zero memory inits as loops) once per design,
  cached under ``sim_build/harness/``. With ``PGO_MIN_IMAGES`` set, a run that long gets a
  GCC profile-guided build: instrumented build, ``PGO_TRAIN`` images, rebuild with the profile.
  It reads the weight beats, the int8 images and the golden logits from binary files, runs
  images [start, start+count) gap-free, compares every logit and appends one JSON line per
  image to its shard's results file.
* The images are split into shards, each one Dask task (``hwgen.dask_cluster.client``:
  LocalCluster by default, or a scheduler address; on a real cluster the work directory must
  be on a shared file system). The driver counts result lines for its progress output.
* The golden logits come from the golden model (``hwgen.golden.run.predict``, batched),
  computed while Verilator compiles, and are cached per (images, model) under the case dir.
* A failing image is re-run alone on a traced build of the harness (C++ `-O0`: it runs one
  image, so its compile time is what counts), which leaves a VCD.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import pickle
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HARNESS_SRC",
    "FastCase",
    "stream_defines",
    "build_harness",
    "Training",
    "pgo",
    "Design",
    "start_design",
    "prepare_fast",
    "run_shard",
    "run_inline",
    "simulate_fast",
    "simulate_state",
]

HARNESS_SRC = Path(__file__).resolve().parent / "harness" / "accel_harness.cpp"
TOP = "accel"
SIM_TOP = "accel_sim"  # the harness's wrapper around TOP (sim_wrapper); C++ class still Vaccel
CXX_OPT = "-O2"  # -O3 / -march=native measured no better than noise on this design
# The traced build re-runs one failing image: compile time is what counts (tiny_cnn 4x4:
# 23 CPU-s at -O0 against 43 at -O2, measured).
TRACE_CXX_OPT = "-O0"
# GCC profile-guided optimisation for runs of PGO_MIN_IMAGES images or more (None: never):
# an instrumented build runs PGO_TRAIN images, then the harness is rebuilt with the profile
# (measured: docs/architecture.md, "Simulation speed").
PGO_MIN_IMAGES: int | None = None
PGO_TRAIN = 16
_PGO_FLAGS = {"": (), "gen": ("-fprofile-generate", "-fprofile-update=single"),
              "use": ("-fprofile-use", "-fprofile-correction", "-Wno-missing-profile")}


@dataclass(frozen=True)
class FastCase:
    name: str
    prog: object  # hwgen.schedule.program.Program
    work: Path
    verilog: Path
    beats: Path  # uint32 little-endian, the model-transfer stream
    images: Path  # int8, n_images x in_len, stream (HWC) order
    golden: Path  # int8, n_images x out_len
    n_images: int
    in_len: int
    out_len: int
    n_perf: int
    exe: Path | None = None  # the harness built for this run


def _top_ports(verilog_text: str) -> dict[str, tuple[str, int]]:
    """{port: (direction, width)} of the top module ``accel``."""
    start = verilog_text.find(f"module {TOP}(")
    if start < 0:
        raise RuntimeError(f"no `module {TOP}(` in the Verilog")
    body = verilog_text[start : verilog_text.find("endmodule", start)]
    ports = {}
    for d, hi, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+)\s*;", body, re.M):
        ports[name] = (d, int(hi) + 1 if hi else 1)
    return ports


def stream_defines(verilog_text: str) -> list[str]:
    """C++ defines for the harness's stream framing, read from the top's port widths, and
    the counter read latency and the loader's `loaded` latency."""
    from hwgen.rtl.loader import LOADED_LATENCY
    from hwgen.rtl.top import PERF_READ_LATENCY

    p = _top_ports(verilog_text)
    return [
        f"-DHWGEN_IMAGE_LAST={int(p['image__payload'][1] > 8)}",
        f"-DHWGEN_WEIGHTS_LAST={int(p['weights__payload'][1] > 32)}",
        f"-DHWGEN_HAS_ERROR={int('error' in p)}",
        f"-DHWGEN_PERF_LATENCY={PERF_READ_LATENCY}",
        f"-DHWGEN_LOADED_LATENCY={LOADED_LATENCY}",
    ]


def sim_wrapper(verilog_text: str) -> str:
    """Verilog of ``accel_sim``: the top ``accel`` with the same ports, its ``rst`` taken
    through one register.

    Why: Verilator re-evaluates, on every ``eval()`` (two per clock), all logic that depends
    combinationally on a top-level input (its "ico" region), and every resettable register's
    next-state logic depends on ``rst``. Registered in the wrapper, ``rst`` is state, so that
    logic runs once per clock edge with the rest. The design itself is unchanged; it sees
    the harness's reset one edge later (the harness holds it long enough).
    """
    ports = _top_ports(verilog_text)
    if "rst" not in ports or "clk" not in ports:
        raise RuntimeError(f"module {TOP} has no clk/rst ports to wrap")
    decl = "\n".join(
        f"  {d} {f'[{w - 1}:0] ' if w > 1 else ''}{n};" for n, (d, w) in ports.items()
    )
    conn = ",\n".join(f"    .{n}({'rst_q' if n == 'rst' else n})" for n in ports)
    return (
        f"module {SIM_TOP}({', '.join(ports)});\n{decl}\n"
        "  reg rst_q = 1'b1;\n  always @(posedge clk) rst_q <= rst;\n"
        f"  {TOP} dut(\n{conn}\n  );\nendmodule\n"
    )


def _verilator_cmd(verilog: Path, mdir: Path, defines: list[str], trace: bool,
                   pgo: str = "") -> list[str]:
    from hwgen.sim.runner import VERILATOR_ARGS

    pgo_flags = " ".join(_PGO_FLAGS[pgo])
    opt = TRACE_CXX_OPT if trace else CXX_OPT
    cflags = " ".join([opt, *defines, *(["-DHWGEN_TRACE"] if trace else []), pgo_flags])
    return [
        "verilator", "--cc", "--exe", "--build", "-j", "2", "-Mdir", str(mdir),
        "--top-module", SIM_TOP, "--prefix", f"V{TOP}", *VERILATOR_ARGS, "--noassert",
        *(["--trace"] if trace else []),
        "-CFLAGS", cflags,
        "-MAKEFLAGS", f"OPT_FAST={opt} OPT_SLOW=-O1 OPT_GLOBAL={opt}",
        *(["-LDFLAGS", pgo_flags] if pgo else []),
        "-o", "accel_harness", str(HARNESS_SRC), str(verilog), str(mdir / f"{SIM_TOP}.v"),
    ]  # fmt: skip


@dataclass(frozen=True)
class Training:
    """The stimuli of a profiling run (a PGO build): the case's beats and first images."""

    beats: Path
    images: Path
    in_len: int
    out_len: int
    n_perf: int
    count: int = PGO_TRAIN


def build_harness(verilog: Path, *, trace: bool = False, train: Training | None = None) -> Path:
    """Compile the harness against ``verilog`` (cached per Verilog + harness + flags); with
    ``train``, profile-guided: instrumented build, a run on the training images, final build
    with the profile (kept in the build directory)."""
    from hwgen.paths import sim_build
    from hwgen.sim.runner import compact_zero_init, ensure_verilator

    ensure_verilator()
    text = verilog.read_text()
    defines = stream_defines(text)
    pgo = "use" if train is not None and not trace else ""
    wrapper = sim_wrapper(text)
    key = hashlib.sha256(
        text.encode()
        + wrapper.encode()
        + HARNESS_SRC.read_bytes()
        + json.dumps([_verilator_cmd(Path("v"), Path("m"), defines, trace, pgo)]).encode()
    ).hexdigest()
    tag = "_trace" if trace else "_pgo" if pgo else ""
    mdir = sim_build() / "harness" / f"{TOP}_{key[:16]}{tag}"
    mdir.mkdir(parents=True, exist_ok=True)
    exe, stamp = mdir / "accel_harness", mdir / ".hwgen_stamp"
    with open(mdir / ".lock", "w") as lf:  # parallel tests may share a build
        fcntl.flock(lf, fcntl.LOCK_EX)
        if exe.exists() and stamp.exists() and stamp.read_text() == key:
            return exe
        vcopy = mdir / f"{TOP}.v"
        vcopy.write_text(compact_zero_init(text))  # deep memories: a loop, not MBs of C++
        (mdir / f"{SIM_TOP}.v").write_text(wrapper)
        if pgo:
            _make(vcopy, mdir, defines, trace, "gen")
            _profile(exe, train, mdir)
            for old in [*mdir.glob("*.o"), *mdir.glob("*.gch"), exe]:
                old.unlink()
        _make(vcopy, mdir, defines, trace, pgo)
        stamp.write_text(key)
    return exe


def _make(vcopy: Path, mdir: Path, defines: list[str], trace: bool, pgo: str) -> None:
    log = mdir / f"build{'_' + pgo if pgo else ''}.log"
    with open(log, "w") as f:
        rc = subprocess.run(_verilator_cmd(vcopy, mdir, defines, trace, pgo), stdout=f,
                            stderr=subprocess.STDOUT).returncode  # fmt: skip
    if rc != 0 or not (mdir / "accel_harness").exists():
        raise RuntimeError(f"Verilator build of the C++ harness failed; see {log}")


def _profile(exe: Path, train: Training, mdir: Path) -> None:
    """The profiling run of the instrumented harness (its logits are not checked: the golden
    file is zeros; exit 1 = mismatches is expected, 2 = a usage error is not)."""
    golden = mdir / "train_golden.bin"
    golden.write_bytes(bytes(train.count * train.out_len))
    out = mdir / "train.jsonl"
    out.unlink(missing_ok=True)
    args = ["--beats", str(train.beats), "--images", str(train.images), "--golden", str(golden),
            "--in-len", str(train.in_len), "--out-len", str(train.out_len),
            "--n-perf", str(train.n_perf), "--start", "0", "--count", str(train.count),
            "--out", str(out)]  # fmt: skip
    p = subprocess.run([str(exe), *args], capture_output=True, text=True)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"profiling run of the harness failed: {p.stderr[-2000:]}")


def _golden_logits(qm, images_uint8, path: Path) -> None:
    """Golden logits of every image (batched golden model), cached beside the case."""
    import numpy as np

    from hwgen.golden.run import predict

    key = hashlib.sha256(
        np.ascontiguousarray(images_uint8).tobytes() + pickle.dumps(qm)
    ).hexdigest()
    stamp = path.with_suffix(".key")
    if path.exists() and stamp.exists() and stamp.read_text() == key:
        return
    logits = predict(qm, images_uint8)
    logits.reshape(len(logits), -1).astype(np.int8).tofile(path)
    stamp.write_text(key)


class Design:
    """The Verilog and the compiled harness of one (model, array), made in a background
    thread (``start_design``) so the caller can do other work meanwhile (the flow runs its
    accuracy pass): Amaranth writes the Verilog, Verilator and g++ run as subprocesses."""

    def __init__(self, qm, array, *, tag: str = "", rtl_root: Path | None = None,
                 build: bool = True, platform=None) -> None:  # fmt: skip
        from hwgen.paths import sim_build
        from hwgen.schedule.lower import lower

        self.prog = lower(qm, array)
        self.name = f"fast_{qm.name}_{array}{tag}"
        self.work = sim_build() / self.name
        self.work.mkdir(parents=True, exist_ok=True)
        self._rtl_root = rtl_root or self.work / "rtl"
        self._build = build
        self._platform = platform
        self._out: dict = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from hwgen.emit.verilog import write_rtl

        try:
            out = write_rtl(self.prog, out_dir=self._rtl_root, platform=self._platform)
            self._out["verilog"] = v = out / "accel.v"
            if self._build:
                self._out["exe"] = build_harness(v)
        except Exception as e:  # re-raised in the caller's thread by wait()
            self._out["err"] = e

    def wait(self) -> tuple[Path, Path | None]:
        """(accel.v, the harness or None when not built here); raises the thread's error."""
        self._thread.join()
        if "err" in self._out:
            raise self._out["err"]
        return self._out["verilog"], self._out.get("exe")


def start_design(qm, array, *, n_images: int = 0, tag: str = "",
                 rtl_root: Path | None = None, platform=None) -> Design:  # fmt: skip
    """Start writing the Verilog and building the harness for a run of ``n_images`` (a
    profile-guided build needs the stimuli: then only the Verilog is made here).
    ``platform``: a simulation stand-in whose traits shape the design (e.g.
    ``hwgen.rtl.traits.traits_of`` a board's platform; no hooks: the harness has no models)."""
    return Design(qm, array, tag=tag, rtl_root=rtl_root, build=not pgo(n_images),
                  platform=platform)


def prepare_fast(
    qm, array, images_uint8, *, tag: str = "", rtl_root: Path | None = None,
    golden=None, design: Design | None = None, platform=None,
) -> FastCase:  # fmt: skip
    """Verilog, binary stimuli and golden logits for a bulk run; the harness builds meanwhile.

    ``golden``: the golden model's int8 logits of these images when the caller has them
    (the flow's accuracy pass), else they are computed (cached). ``design``: a
    ``start_design`` already under way for (qm, array). ``platform``: as ``start_design``'s.
    Returns when the golden file is written and the harness is compiled.
    """
    import numpy as np

    from hwgen.emit.images import weight_beats
    from hwgen.quant.inputs import quantize_images

    d = design or start_design(qm, array, n_images=len(images_uint8), tag=tag,
                               rtl_root=rtl_root, platform=platform)  # fmt: skip
    prog, work = d.prog, d.work
    c, h, w = prog.in_shape
    xq = quantize_images(images_uint8, qm.in_scale)  # uint8 pixels or float inputs
    hwc = xq.reshape(len(xq), c, h, w).transpose(0, 2, 3, 1).reshape(len(xq), -1)
    files = {k: work / f"{k}.bin" for k in ("beats", "images", "golden")}
    np.ascontiguousarray(hwc, dtype=np.int8).tofile(files["images"])
    weight_beats(prog).astype("<u4").tofile(files["beats"])
    if golden is None:
        _golden_logits(qm, images_uint8, files["golden"])
    else:
        g = np.asarray(golden).reshape(len(xq), -1)
        if g.shape[1] != prog.out_len or not np.array_equal(g, g.astype(np.int8)):
            raise ValueError(f"golden logits {g.shape} are not int8 x {prog.out_len} per image")
        g.astype(np.int8).tofile(files["golden"])
        files["golden"].with_suffix(".key").unlink(missing_ok=True)
    verilog, exe = d.wait()
    if exe is None:  # profile-guided: the training run needs the stimuli written above
        train = Training(files["beats"], files["images"], c * h * w, prog.out_len,
                         3 + len(prog.layers), min(PGO_TRAIN, len(xq)))  # fmt: skip
        exe = build_harness(verilog, train=train)
    return FastCase(
        name=d.name, prog=prog, work=work, verilog=verilog, beats=files["beats"],
        images=files["images"], golden=files["golden"], n_images=len(xq), in_len=c * h * w,
        out_len=prog.out_len, n_perf=3 + len(prog.layers), exe=exe,
    )  # fmt: skip


def pgo(n_images: int) -> bool:
    """Whether a run of ``n_images`` gets the profile-guided harness build."""
    return PGO_MIN_IMAGES is not None and n_images >= PGO_MIN_IMAGES


def _harness_args(case: FastCase, start: int, count: int, out: Path,
                  back_to_back: bool = False) -> list[str]:
    return [
        "--beats", str(case.beats), "--images", str(case.images), "--golden", str(case.golden),
        "--in-len", str(case.in_len), "--out-len", str(case.out_len),
        "--n-perf", str(case.n_perf), "--start", str(start), "--count", str(count),
        "--out", str(out), "--back-to-back", str(int(back_to_back)),
    ]  # fmt: skip


def run_shard(exe: str, args: list[str]) -> dict:
    """One Dask task: run the harness on one shard; rc 0 = all bit-exact, 1 = a mismatch."""
    t0 = time.perf_counter()
    p = subprocess.run([exe, *args], capture_output=True, text=True)
    return {"rc": p.returncode, "stderr": p.stderr[-2000:], "wall_s": time.perf_counter() - t0}


def run_inline(case: FastCase, back_to_back: bool = False) -> tuple[list[dict], float]:
    """Every image of ``case`` in this process (one shard, no Dask client): for callers that
    already are a Dask task (``hwgen sweep``). Returns (records by index, wall s).
    ``back_to_back``: the image stream feeds itself, so each image loads while the one
    before it computes (the harness's --back-to-back)."""
    out = case.work / "results.jsonl"
    out.unlink(missing_ok=True)
    r = run_shard(str(case.exe), _harness_args(case, 0, case.n_images, out, back_to_back))
    if r["rc"] not in (0, 1):
        raise RuntimeError(f"C++ harness failed (exit {r['rc']}): {r['stderr']}")
    recs = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return sorted(recs, key=lambda x: x["index"]), r["wall_s"]


def _count_lines(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        if p.exists():
            with open(p, "rb") as f:
                n += f.read().count(b"\n")
    return n


def _progress(done: int, total: int, t0: float) -> str:
    dt = time.perf_counter() - t0
    rate = done / dt if dt > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("nan")
    eta_s = f"{int(eta // 60)}m{int(eta % 60):02d}s" if rate > 0 else "?"
    return (
        f"[hwgen sim] {done}/{total} images ({100 * done / max(total, 1):.0f} %), "
        f"{rate:.1f} images/s, ETA {eta_s}"
    )


def simulate_fast(
    case: FastCase,
    exe: Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    shard_size: int | None = None,
    progress: bool = True,
    interval: float = 5.0,
) -> tuple[list[dict], float]:
    """Run every image of ``case`` as Dask tasks; returns (records by index, sim wall s)."""
    from hwgen.dask_cluster import client

    n = case.n_images
    if shard_size is None:
        # >= 4 shards per worker, at most 200 images each: the last shard leaves the other
        # workers idle for up to its length (200 mnist_cnn images ~ 17 s of one core); each
        # shard reloads the weights (~ 1 image of cycles), 0.5 % at 200.
        shard_size = max(1, min(200, -(-n // (4 * max(workers, 1)))))
    out_dir = case.work / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.jsonl"):
        old.unlink()
    shards = [(s, min(shard_size, n - s)) for s in range(0, n, shard_size)]
    outs = [out_dir / f"shard_{s:06d}.jsonl" for s, _ in shards]
    t0 = time.perf_counter()
    with client(scheduler, workers) as c:
        t0 = time.perf_counter()  # the cluster's start-up is not simulation time
        futs = c.map(
            run_shard,
            [str(exe)] * len(shards),
            [_harness_args(case, s, k, o) for (s, k), o in zip(shards, outs, strict=True)],
            pure=False,
        )
        last = t0
        while not all(f.done() for f in futs):
            time.sleep(0.2)
            if progress and time.perf_counter() - last >= interval:
                last = time.perf_counter()
                print(_progress(_count_lines(outs), n, t0), flush=True)
        runs = c.gather(futs)
        cluster = None if scheduler else c.cluster  # the LocalCluster started for this run
    if cluster is not None:
        cluster.close()
    wall = time.perf_counter() - t0
    if progress:
        print(_progress(_count_lines(outs), n, t0), flush=True)
    broken = [r for r in runs if r["rc"] not in (0, 1)]
    if broken:
        raise RuntimeError(f"C++ harness failed (exit {broken[0]['rc']}): {broken[0]['stderr']}")
    recs: dict[int, dict] = {}
    for o in outs:
        for line in o.read_text().splitlines() if o.exists() else []:
            r = json.loads(line)
            recs[r["index"]] = r
    (case.work / "results.jsonl").write_text(
        "".join(json.dumps(recs[i]) + "\n" for i in sorted(recs))
    )
    return [recs[i] for i in sorted(recs)], wall


def waveform_for(case: FastCase, index: int) -> Path:
    """Re-run one image on the traced harness build; returns the VCD path."""
    exe = build_harness(case.verilog, trace=True)
    vcd = case.work / f"failed_image_{index}.vcd"
    out = case.work / f"failed_image_{index}.jsonl"
    out.unlink(missing_ok=True)
    subprocess.run([str(exe), *_harness_args(case, index, 1, out), "--trace", str(vcd)],
                   capture_output=True)  # fmt: skip
    return vcd


def _evaluated_logits(st, images):
    """The int8 golden logits the flow's accuracy pass computed (``st.int8_logits``, the
    golden model over ``data.test(cfg.eval_n)``) for ``images``, when these are exactly its
    first images; else None (the golden model runs again)."""
    import numpy as np

    ref = getattr(st, "int8_logits", None)
    if ref is None or len(ref) < len(images):
        return None
    evaluated, _ = st.source.data.test(st.cfg.eval_n)
    if len(evaluated) < len(images) or not np.array_equal(evaluated[: len(images)], images):
        return None
    return ref[: len(images)]


def simulate_state(st, *, workers: int = 2, scheduler: str | None = None) -> None:
    """The flow's simulate step on the fast engine: sets ``st.summary`` (hwgen.flow state)."""
    from hwgen.perf.model import summarize

    cfg = st.cfg
    images, labels = st.sim_images, st.sim_labels
    if images is None:
        images, labels = st.source.data.test(cfg.n)
    who = scheduler or f"{workers} local worker process(es)"
    st.log(f"{st.name} on a {cfg.array} array, {len(images)} test image(s), fast engine "
           f"(compiled Verilator harness as Dask tasks on {who}, gap-free streams)")  # fmt: skip
    t0 = time.perf_counter()
    golden = _evaluated_logits(st, images)
    design = st.sim_prep if isinstance(st.sim_prep, Design) else None
    case = prepare_fast(st.qmodel, cfg.array, images, golden=golden, design=design)
    exe = case.exe
    how = "from the accuracy pass" if golden is not None else "computed"
    st.log(f"harness {exe} ready, golden logits {how} ({time.perf_counter() - t0:.0f} s)")
    recs, wall = simulate_fast(case, exe, workers=workers, scheduler=scheduler)
    if len(recs) != len(images):
        missing = sorted(set(range(len(images))) - {r["index"] for r in recs})
        raise RuntimeError(f"fast simulation: {len(missing)} image(s) produced no result, "
                           f"first {missing[:5]}; see {case.work / 'results'}")  # fmt: skip
    st.summary = summarize(case.prog, recs, labels, {"wall_s": wall, "weights_load_s": 0.0})
    st.summary["engine"] = "fast"
    st.summary["workers"] = scheduler or workers
    bad = [r for r in recs if not r["match"]]
    if bad:
        wave = waveform_for(case, bad[0]["index"])
        st.summary["waveform"] = str(wave)
        st.log(f"image {bad[0]['index']} differs from the golden model: {bad[0]}; "
               f"waveform {wave}")  # fmt: skip
