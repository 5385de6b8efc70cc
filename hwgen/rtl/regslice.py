"""RegSlice: a register slice (skid buffer) on a lib.stream, for a stream that crosses the die.

Both directions leave the slice from flip-flops: downstream `valid` and the payload are
registers, and so is upstream `ready`. The downstream `ready` only steers the slice's own
registers (one or two LUT levels), so it never travels on into the upstream unit's logic
(the host link's frame-buffer pointer and dispatcher state, for the Accelerator's streams).

Two entries: the output register and a skid register. A beat offered while the output is
held (valid without ready) waits in the skid register, and `ready` drops for as long as it
is full; the output takes the skid's beat first when it moves. Nothing is lost or
duplicated, beats leave in order, and while downstream `ready` stays high a beat a cycle
passes (one cycle of latency). Golden: `slice_step`.
"""

from __future__ import annotations

from typing import Any

from amaranth import Module, Mux, Signal
from amaranth.hdl import ShapeLike
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.traits import trait

__all__ = ["RegSlice", "SliceState", "slice_step"]

# (output register, skid register): a payload, or None while empty
SliceState = tuple[Any, Any]


def slice_step(state: SliceState, i_valid: bool, i_data: Any,
               o_ready: bool) -> tuple[dict[str, Any], SliceState]:
    """RegSlice's golden: this cycle's outputs (i_ready, o_valid, o_data) and the next state,
    for the inputs of one cycle."""
    o, s = state
    out = {"i_ready": s is None, "o_valid": o is not None, "o_data": o}
    take = bool(i_valid) and s is None
    if o is None or o_ready:  # the output register moves: the skid's beat first
        if s is not None:
            o, s = s, None
        else:
            o = i_data if take else None
    elif take:  # the output is held: the new beat waits in the skid register
        s = i_data
    return out, (o, s)


class RegSlice(wiring.Component):
    """i (In stream) -> o (Out stream), every output from a flip-flop (see the module
    docstring). `layout` is the payload's shape (a data layout or a plain shape)."""

    def __init__(self, layout: ShapeLike) -> None:
        self.layout = layout
        super().__init__({
            "i": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
        })  # fmt: skip

    def elaborate(self, platform) -> Module:
        m = Module()
        if not trait(platform, "stream_slices"):  # (a small device: a plain wire)
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready)]  # fmt: skip
            return m
        o_valid = Signal()
        s_valid = Signal()
        # payload registers are read only with their valid: no reset (timing, reset net)
        o_data = Signal(self.layout, reset_less=True)
        s_data = Signal(self.layout, reset_less=True)
        rdy = Signal(init=1)  # == ~s_valid, kept as its own flip-flop: upstream ready
        take = Signal()
        m.d.comb += [
            self.i.ready.eq(rdy),
            self.o.valid.eq(o_valid),
            self.o.payload.eq(o_data),
            take.eq(self.i.valid & rdy),
        ]
        with m.If(~o_valid | self.o.ready):
            m.d.sync += [o_valid.eq(s_valid | take),
                         o_data.eq(Mux(s_valid, s_data, self.i.payload)),
                         s_valid.eq(0), rdy.eq(1)]  # fmt: skip
        with m.Elif(take):
            m.d.sync += [s_valid.eq(1), rdy.eq(0)]
        # The skid register takes the offered payload in every cycle it is empty (`rdy`): it
        # is read only once s_valid says a beat was kept in it, and then it holds (timing:
        # its enable is one flip-flop, not a LUT of the downstream `ready`, which fanned out
        # to its ~33 enables: the image slice's 7.05 ns on the 8x8, 134.0 MHz seed 1)
        with m.If(rdy):
            m.d.sync += s_data.eq(self.i.payload)
        return m
