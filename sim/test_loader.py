# amaranth: UnusedElaboratable=no
"""WeightLoader against its golden model (`LoaderModel`), every cycle, in the Amaranth simulator.

Random sequences of well-formed, short, long and `last`-less transfers, with random gaps,
`restart` pulses and design resets (through a ResetInserter, which leaves the reset-less
`loaded` alone). Each cycle: `ready` and `loaded` equal the model's; on each accepted beat the
fault outputs equal the model's verdict; the words written to each memory equal the model's.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, ResetInserter, Signal
from amaranth.sim import Simulator

from hwgen.rtl.loader import LoaderModel, WeightLoader, beats_per_word

REGIONS = [(8, 3), (40, 2), (72, 2)]  # 1, 2 and 3 beats per word: 13 beats in all


def transfers(rng: np.random.Generator, n: int) -> list[tuple[str, list[tuple[int, int]]]]:
    """n transfers of random kinds: (kind, [(data, last), ...])."""
    total = sum(d * beats_per_word(w) for w, d in REGIONS)
    out = []
    for _ in range(n):
        kind = str(rng.choice(["ok", "ok", "short", "long", "nolast"]))
        length = {"ok": total, "short": int(rng.integers(1, total)), "nolast": total,
                  "long": total + int(rng.integers(1, 6))}[kind]  # fmt: skip
        data = rng.integers(0, 1 << 32, length).tolist()
        lasts = [0] * length
        if kind != "nolast":
            lasts[-1] = 1
        out.append((kind, list(zip(data, lasts, strict=True))))
    return out


def test_loader_matches_model() -> None:
    rng = np.random.default_rng(4)
    loader = WeightLoader(regions=REGIONS)
    rst = Signal()
    top = Module()
    top.submodules.loader = ResetInserter(rst)(loader)
    model = LoaderModel(REGIONS)
    plan = transfers(rng, 40)
    kinds = {k for k, _ in plan}
    assert kinds == {"ok", "short", "long", "nolast"}, f"stimulus lacks a kind: {kinds}"
    seen = {"short": 0, "long": 0, "loaded": 0, "reset": 0, "reset_loaded": 0, "restart": 0}

    async def bench(ctx) -> None:
        got: list[dict[int, int]] = [{} for _ in REGIONS]
        beats = [b for _, t in plan for b in t]
        i = 0
        cycle = 0
        loaded_next = None  # the previous cycle's loaded_next: this cycle's loaded
        while i < len(beats):
            at = f"cycle {cycle}, beat {i}"
            act = rng.random()
            # once loaded, restart (to go on) and reset (loaded must survive it) are frequent
            restart = act < 0.01 or (model.loaded and act < 0.15)
            reset = not restart and (act > 0.99 or (model.loaded and act > 0.85))
            offer = not (restart or reset) and rng.random() > 0.2
            ctx.set(loader.restart, int(restart))
            ctx.set(rst, int(reset))
            ctx.set(loader.i_stream.valid, int(offer))
            ctx.set(loader.i_stream.payload.data, beats[i][0])
            ctx.set(loader.i_stream.payload.last, beats[i][1])
            # writes seen now come from the previous cycle's beat: memories equal the model's
            for n in range(len(REGIONS)):
                if ctx.get(getattr(loader, f"we{n}")):
                    got[n][ctx.get(getattr(loader, f"addr{n}"))] = ctx.get(
                        getattr(loader, f"data{n}")
                    )
            assert got == model.mems, f"{at}: memories differ from the model"
            assert ctx.get(loader.loaded) == model.loaded, f"{at}: loaded"
            if loaded_next is not None:
                assert model.loaded == loaded_next, f"{at}: the last cycle's loaded_next"
            ready = ctx.get(loader.i_stream.ready)
            assert ready == int(model.ready and not restart), f"{at}: ready {ready}"
            short, long = ctx.get(loader.err_short), ctx.get(loader.err_long)
            if offer and ready:
                verdict = model.beat_in(*beats[i])
                assert (short, long) == (verdict == "short", verdict == "long"), (
                    f"{at}: faults short={short} long={long}, model says {verdict}"
                )
                if verdict:
                    seen[verdict] += 1
                seen["loaded"] += model.loaded  # only the final beat of a good transfer
                i += 1
            else:
                assert (short, long) == (0, 0), f"{at}: a fault without a beat"
            if restart:
                model.restart()
                seen["restart"] += 1
            if reset:
                seen["reset_loaded" if model.loaded else "reset"] += 1
                model.reset()
            loaded_next = ctx.get(loader.loaded_next)
            await ctx.tick()
            cycle += 1
        ctx.set(loader.i_stream.valid, 0)
        for n in range(len(REGIONS)):
            if ctx.get(getattr(loader, f"we{n}")):
                got[n][ctx.get(getattr(loader, f"addr{n}"))] = ctx.get(getattr(loader, f"data{n}"))
        assert got == model.mems, "memories differ from the model at the end"

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # the random run exercised every outcome
    assert min(seen.values()) > 0, f"an outcome never happened: {seen}"
