# amaranth: UnusedElaboratable=no
"""WeightLoader against its golden model (`LoaderModel`), every cycle, in the Amaranth simulator.

Random sequences of well-formed, short, long and `last`-less transfers, with random gaps,
`restart` pulses and design resets (through a ResetInserter, which leaves the reset-less
`loaded` alone), also while a beat is staged. Each cycle: `ready` and `loaded` equal the
model's; the fault outputs equal the model's verdict (on the staged beat, or the header
check's); the words written to each memory equal the model's. The fixed-length loader (no
header) runs one set of regions; the header loader runs random ones: region sizes and widths,
beat regions, headers of one or two beats with counts up to, and past, each memory's depth,
wrong magic and counts of 0.
"""

from __future__ import annotations

import collections
import os
import re

import numpy as np
import pytest
from amaranth import Module, ResetInserter, Signal, unsigned
from amaranth.back import rtlil
from amaranth.hdl import Fragment
from amaranth.lib import data
from amaranth.sim import Simulator

from hwgen.rtl.attrs import copies_of
from hwgen.rtl.loader import (
    BEAT_PARTS,
    HEADER_CHECK_CYCLES,
    SLOT_GROUP,
    LoaderModel,
    WeightLoader,
    beats_per_word,
)
from hwgen.rtl.traits import SmallDeviceSim

REGIONS = [(8, 3), (40, 2), (72, 2)]  # 1, 2 and 3 beats per word: 13 beats in all
# the header test's seed (LOADER_SEED=n to try another; every failure message names it)
SEED = int(os.environ.get("LOADER_SEED", "7"))

Beat = tuple[int, int]  # (data, last)


def transfers(rng: np.random.Generator, n: int,
              regions: list[tuple[int, int]] = REGIONS) -> list[tuple[str, list[Beat]]]:
    """n transfers of random kinds: (kind, [(data, last), ...])."""
    total = sum(d * beats_per_word(w) for w, d in regions)
    out = []
    for _ in range(n):
        kind = str(rng.choice(["ok", "ok", "short", "long", "nolast"]))
        length = {"ok": total, "short": int(rng.integers(1, total)), "nolast": total,
                  "long": total + int(rng.integers(1, 6))}[kind]  # fmt: skip
        out.append((kind, _with_last(rng, length, kind != "nolast")))
    return out


def _with_last(rng: np.random.Generator, length: int, last: bool) -> list[Beat]:
    """length random beats, `last` on the final one if asked."""
    data = rng.integers(0, 1 << 32, length).tolist()
    lasts = [0] * length
    if last and length:
        lasts[-1] = 1
    return list(zip(data, lasts, strict=True))


def _writes(ctx, loader: WeightLoader, got: list[dict[int, int]]) -> None:
    """This cycle's memory writes into got (every copy of a write address equal)."""
    for n in range(len(got)):
        we, addr = (_copy_values(ctx, loader, f"{p}{n}") for p in ("we", "addr"))
        assert len(set(we)) == 1, f"memory {n}: write enable copies differ: {we}"
        if we[0]:
            assert len(set(addr)) == 1, f"memory {n}: write address copies differ: {addr}"
            got[n][addr[0]] = ctx.get(getattr(loader, f"data{n}"))


def _copy_values(ctx, loader: WeightLoader, name: str) -> list[int]:
    """A port's value in each of its copies (one, or an array with ``addr_copies``)."""
    return [ctx.get(c) for c in copies_of(getattr(loader, name))]


def run(loader: WeightLoader, model: LoaderModel, beats: list[Beat],
        rng: np.random.Generator, tag: str, platform=None) -> collections.Counter:  # fmt: skip
    """Streams `beats` into the loader with random gaps, restarts and resets, checking it
    against the model every cycle (failures start with `tag`); returns the outcomes seen.
    ``platform``: the traits it is elaborated with (hwgen.rtl.traits; default none)."""
    rst = Signal()
    top = Module()
    top.submodules.loader = ResetInserter(rst)(loader)
    seen: collections.Counter = collections.Counter()
    faults = ("short", "long", "header")

    async def bench(ctx) -> None:
        got: list[dict[int, int]] = [{} for _ in model.mems]
        # a write-stage region's writes are seen a cycle later: its memory is compared with
        # the model's of the cycle before
        lagged: list[dict[int, int]] = [{} for _ in model.mems]
        i = cycle = 0
        loaded_next = None  # the previous cycle's loaded_next: this cycle's loaded
        # after the last beat, quiet cycles: its staged beat and a header check play out
        quiet = HEADER_CHECK_CYCLES + 3
        while quiet:
            quiet -= i == len(beats)
            at = f"{tag}, cycle {cycle}, beat {i}"
            act = rng.random() if i < len(beats) else 0.5
            checking = model.check > 0
            # once loaded, restart (to go on) and reset (loaded must survive it) are frequent;
            # so are both in the header check (it must be dropped)
            restart = act < 0.01 or (model.loaded and act < 0.15) or (checking and act < 0.1)
            # (and between transfers, so a plain reset is seen at any seed)
            idle = model.stage is None and not model.words and model.addr == 0
            reset = not restart and (act > 0.99 or (model.loaded and act > 0.85)
                                     or (checking and act > 0.95)
                                     or (idle and act > 0.95))  # fmt: skip
            offer = i < len(beats) and not (restart or reset) and rng.random() > 0.2
            beat = beats[min(i, len(beats) - 1)]
            ctx.set(loader.restart, int(restart))
            ctx.set(rst, int(reset))
            ctx.set(loader.i_stream.valid, int(offer))
            ctx.set(loader.i_stream.payload.data, beat[0])
            ctx.set(loader.i_stream.payload.last, beat[1])
            # writes seen now come from the previous cycle's beat: memories equal the model's
            _writes(ctx, loader, got)
            now = [dict(mem) for mem in model.mems]
            want = [lagged[n] if n in loader.write_stage else now[n] for n in range(len(now))]
            assert got == want, f"{at}: memories differ from the model"
            lagged = now
            assert ctx.get(loader.loaded) == model.loaded, f"{at}: loaded"
            # the contract the controller relies on: every write made by the cycle `loaded`
            # rises in (a write stage's too)
            assert not model.loaded or got == now, f"{at}: loaded before a write was made"
            if model.loaded and model.header_layout is not None:
                hdr = ctx.get(loader.header.as_value())
                assert hdr == model.header, f"{at}: header {hdr:#x}, model {model.header:#x}"
            if loaded_next is not None:
                assert model.loaded == loaded_next, f"{at}: the last cycle's loaded_next"
            ready = ctx.get(loader.i_stream.ready)
            assert ready == int(model.ready and not restart), f"{at}: ready {ready}"
            pulses = tuple(ctx.get(getattr(loader, f"err_{f}")) for f in faults)
            take = offer and ready
            staged, was_loaded = model.stage is not None, model.loaded
            verdict = model.cycle(beat if take else None, restart=restart, reset=reset)
            i += take
            assert pulses == tuple(verdict == f for f in faults), (
                f"{at}: faults {dict(zip(faults, pulses, strict=True))}, model says {verdict}"
            )
            seen["loaded"] += model.loaded and not was_loaded  # a good transfer's final beat
            if verdict:
                seen[verdict] += 1
            if restart:
                seen["restart_check" if checking else
                     "restart_staged" if staged else "restart"] += 1  # fmt: skip
            if reset:
                seen["reset_check" if checking else
                     "reset_staged" if staged else
                     "reset_loaded" if model.loaded else "reset"] += 1  # fmt: skip
            loaded_next = ctx.get(loader.loaded_next)
            await ctx.tick()
            cycle += 1
        ctx.set(loader.i_stream.valid, 0)
        _writes(ctx, loader, got)
        assert got == model.mems, f"{tag}: memories differ from the model at the end"

    sim = Simulator(Fragment.get(top, platform))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("copies,stage,narrow", [
    ({}, (), ()), ({1: 2, 2: 3}, (), ()), ({1: 2, 2: 3}, (1,), ()), ({}, (0, 1, 2), ()),
    ({1: 2, 2: 3}, (1, 2), (2,)), ({}, (1, 2), (1, 2))])
def test_loader_matches_model(copies: dict[int, int], stage: tuple[int, ...],
                              narrow: tuple[int, ...]) -> None:
    """(``addr_copies``: regions 1 and 2 with 2 and 3 copies of their write address and
    enable; ``write_stage``: those regions' writes a cycle later, from registers of their
    own, the last region's too; ``narrow_stage``: of its word only the first beat's)"""
    rng = np.random.default_rng(4)
    plan = transfers(rng, 40)
    kinds = {k for k, _ in plan}
    assert kinds == {"ok", "short", "long", "nolast"}, f"stimulus lacks a kind: {kinds}"
    beats = [b for _, t in plan for b in t]
    loader = WeightLoader(regions=REGIONS, addr_copies=copies, write_stage=stage,
                          narrow_stage=narrow)  # fmt: skip
    assert all(len(getattr(loader, f"{p}{n}")) == k for n, k in copies.items()
               for p in ("addr", "we"))  # arrays
    seen = run(loader, LoaderModel(REGIONS), beats, rng,
               f"no header, stage {stage}, narrow {narrow}")
    # the random run exercised every outcome
    want = ("short", "long", "loaded", "reset", "reset_loaded", "reset_staged", "restart",
            "restart_staged")  # fmt: skip
    assert all(seen[k] for k in want), f"an outcome never happened: {seen}"


WIDE = [(8, 2), (600, 2), (72, 1)]  # 19 beats a word: three copies of the staged data


@pytest.mark.parametrize("platform", [None, SmallDeviceSim()], ids=["default", "small"])
def test_wide_words_fill_every_slot_group(platform) -> None:
    """Words wider than SLOT_GROUP beats: each group of acc's slots takes the staged beat
    from its own data copy, each part of a slot steered by its own copy of the beat
    (``copy_trees``; one register on a small device), and every
    word is written as the model's; `ready` comes from copies of its registers."""
    copies = -(-beats_per_word(600) // SLOT_GROUP) if platform is None else 1
    text = rtlil.convert(WeightLoader(regions=WIDE), platform=platform)
    assert [f"b_data_{k}" in text for k in range(1, 4)] == [k < copies for k in range(1, 4)]
    # and each part of a slot steered by its own copy of the beat (none on a small device)
    parts = [f"wire width 19 \\beat_p{j}\n" in text for j in range(1, BEAT_PARTS + 1)]
    assert parts == [platform is None and j < BEAT_PARTS for j in range(1, BEAT_PARTS + 1)]
    # under one rewind and one valid copy per group of slots, shared by the parts (and
    # beat_w's own): a pair per part and group spread two cones' nets over the die
    tags = {t for _, t in re.findall(r"wire width 1 \\beat_(rewind|valid)(\S*)\n", text)}
    assert tags == ({*map(str, range(copies)), "_w"} if platform is None else {""})
    # and the stream's `ready` from copies of `done` and `blocked` (one each on a small device)
    assert all((f"wire width 1 \\{c}\n" in text) == (platform is None)
               for c in ("done_o", "blocked_o"))
    rng = np.random.default_rng(11)
    beats = [b for _, t in transfers(rng, 12, WIDE) for b in t]
    seen = run(WeightLoader(regions=WIDE), LoaderModel(WIDE), beats, rng, "wide", platform)
    assert seen["loaded"], f"nothing loaded: {seen}"


def test_write_stage_arguments() -> None:
    """A stage on a region that is not there, or a narrow stage without a stage, is refused;
    a stage's registers are named for their region, a narrow one's word register is 32 bits
    (the first beat's slot) and a full one's the word's width."""
    for stage, narrow, match in (((3,), (), "write_stage"), ((2,), (1,), "narrow_stage")):
        with pytest.raises(ValueError, match=match):
            WeightLoader(regions=REGIONS, write_stage=stage, narrow_stage=narrow)
    text = rtlil.convert(WeightLoader(regions=REGIONS, addr_copies={1: 2}, write_stage=(1, 2),
                                      narrow_stage=(2,)))  # fmt: skip
    assert all(f"we1_d{k}" in text for k in ("", "_1"))
    assert "wire width 40 \\data1_d" in text and "wire width 32 \\data2_d" in text


# ---------------------------------------------------------------- the header path


class HeaderConfig:
    """A random header loader: regions (field, width, depth), the header layout (magic, one
    count field per region wide enough to count past its depth, maybe padding: one or two
    beats, fields in random order), the magic and the beat regions."""

    def __init__(self, rng: np.random.Generator, nreg: int = 0) -> None:
        nreg = nreg or int(rng.integers(1, 4))
        widths = [int(rng.choice([int(rng.integers(1, 33)), int(rng.integers(33, 100))]))
                  for _ in range(nreg)]  # fmt: skip
        self.regions = [(f"n{k}", w, int(rng.integers(1, 6))) for k, w in enumerate(widths)]
        self.beat_regions = tuple(k for k, w in enumerate(widths) if w > 32 and rng.random() < 0.5)
        fields = {"magic": unsigned(8)}
        fields |= {f: unsigned(d.bit_length() + 1) for f, _, d in self.regions}
        pad = int(rng.integers(0, 40))
        if pad:
            fields["pad"] = unsigned(pad)
        order = rng.permutation(len(fields))
        items = list(fields.items())
        self.layout = data.StructLayout(dict(items[k] for k in order))
        self.magic = int(rng.integers(0, 256))
        # regions with a write stage (the last one's too), and of those the narrow ones, from
        # the magic's bits: no draw of their own, so each seed's stimulus is as before
        self.write_stage = tuple(k for k in range(nreg) if self.magic >> k & 1)
        self.narrow_stage = tuple(k for k in self.write_stage if self.magic >> (4 + k) & 1)

    def loader(self) -> WeightLoader:
        return WeightLoader(regions=self.regions, header=self.layout, magic=self.magic,
                            beat_regions=self.beat_regions,
                            write_stage=self.write_stage,
                            narrow_stage=self.narrow_stage)  # fmt: skip

    def model(self) -> LoaderModel:
        return LoaderModel(self.regions, self.layout, self.magic, self.beat_regions)

    def __repr__(self) -> str:
        return (f"regions {self.regions}, beat regions {self.beat_regions}, "
                f"write stage {self.write_stage}, narrow {self.narrow_stage}, magic {self.magic}")


HEADER_KINDS = ["ok", "ok", "short", "long", "nolast", "magic", "deep", "zero", "alone"]


def header_transfer(rng: np.random.Generator, cfg: HeaderConfig, kind: str) -> list[Beat]:
    """One transfer of a kind: a good one, cut short, too long, without `last`, or with a
    wrong magic / a count past its depth / a count of 0, or the header alone."""
    counts = [int(rng.integers(1, d + 1)) for _, _, d in cfg.regions]
    magic = cfg.magic
    k = int(rng.integers(len(counts)))
    if kind == "magic":
        magic ^= 1 << int(rng.integers(8))
    elif kind == "deep":  # one past the depth (the boundary) or up to the field's largest
        top = 1 << cfg.layout[f"n{k}"].width
        counts[k] = cfg.regions[k][2] + 1 if rng.random() < 0.5 else int(
            rng.integers(cfg.regions[k][2] + 1, top))
    elif kind == "zero":
        counts[k] = 0
    values = {"magic": magic, **{f"n{n}": c for n, c in enumerate(counts)}}
    if "pad" in cfg.layout.members:
        values["pad"] = int(rng.integers(0, 1 << cfg.layout["pad"].width))
    word = sum(v << cfg.layout[f].offset for f, v in values.items())
    head = [word >> (32 * b) & 0xFFFF_FFFF for b in range(beats_per_word(cfg.layout.size))]
    if kind == "alone":  # the header with `last` (good or not)
        return [(v, int(b == len(head) - 1)) for b, v in enumerate(head)]
    body = sum(c * beats_per_word(w) for c, (_, w, _) in zip(counts, cfg.regions, strict=True))
    total = len(head) + body
    length = {"short": int(rng.integers(1, max(total, 2))),
              "long": total + int(rng.integers(1, 6))}.get(kind, total)  # fmt: skip
    beats = _with_last(rng, length, kind != "nolast")
    n_head = min(len(head), length)
    return [(v, beats[b][1]) for b, v in enumerate(head[:n_head])] + beats[n_head:]


def _header_run(rng: np.random.Generator, cfg: HeaderConfig, extra: int,
                tag: str, platform=None) -> collections.Counter:  # fmt: skip
    """Every kind of transfer once and `extra` random ones, in random order, through run."""
    kinds = HEADER_KINDS + [str(k) for k in rng.choice(HEADER_KINDS, extra)]
    beats = [b for k in rng.permutation(kinds) for b in header_transfer(rng, cfg, str(k))]
    return run(cfg.loader(), cfg.model(), beats, rng, f"seed {SEED}, {tag} ({cfg})", platform)


@pytest.mark.parametrize("platform", [None, SmallDeviceSim()], ids=["default", "small"])
def test_header_loader_matches_model(platform) -> None:
    """Random header loaders, random transfers of every kind: every cycle as the model; with
    the small device's traits too (no carry-chain tests, no registered word counts)."""
    rng = np.random.default_rng(SEED)
    seen: collections.Counter = collections.Counter()
    for c in range(6):
        seen += _header_run(rng, HeaderConfig(rng), 30, f"loader {c}", platform)
    want = ("short", "long", "header", "loaded", "reset", "reset_loaded", "reset_check",
            "reset_staged", "restart", "restart_check", "restart_staged")  # fmt: skip
    assert all(seen[k] for k in want), f"seed {SEED}: an outcome never happened: {seen}"


def test_header_loader_one_region() -> None:
    """A header loader of one region: there is no queue of following regions' lengths
    (the loader's elaboration used to index that empty queue)."""
    rng = np.random.default_rng(SEED)
    seen = _header_run(rng, HeaderConfig(rng, nreg=1), 60, "one region")
    assert seen["loaded"], f"seed {SEED}: nothing loaded: {seen}"


def test_header_loader_counts_of_many_beats() -> None:
    """Beat regions of 7 and 21 beats a word (the program's descriptor is 21): the word
    count, field x beats, is a tree of three shifted terms (`_times_minus`)."""
    rng = np.random.default_rng(SEED)
    cfg = HeaderConfig(rng, nreg=2)
    cfg.regions = [(f, 32 * k, d) for (f, _, d), k in zip(cfg.regions, (7, 21), strict=True)]
    cfg.beat_regions = (0, 1)
    seen = _header_run(rng, cfg, 30, "7 and 21 beats")
    assert seen["loaded"], f"seed {SEED}: nothing loaded: {seen}"
