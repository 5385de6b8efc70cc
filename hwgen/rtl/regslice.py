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

`valid_copy` adds `o_valid_copy`: the same value as `o.valid` from a register of its own
(UNSHARED), for one consumer's loads that sit elsewhere (the image writer's position steps,
hwgen/rtl/transfer.py), so their logic can sit by them rather than by the slice.
"""

from __future__ import annotations

from typing import Any

from amaranth import Module, Mux, Signal
from amaranth.hdl import ShapeLike
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.attrs import UNSHARED
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
    docstring). `layout` is the payload's shape (a data layout or a plain shape);
    `valid_copy` adds the output `o_valid_copy` (== o.valid, a register of its own).
    `registered`: registers or a plain wire; None asks the platform (trait `stream_slices`)."""

    def __init__(self, layout: ShapeLike, valid_copy: bool = False,
                 registered: bool | None = None) -> None:
        self.layout = layout
        self.valid_copy = valid_copy
        self.registered = registered
        ports = {"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))}
        if valid_copy:
            ports["o_valid_copy"] = Out(1)
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        registered = self.registered
        if registered is None:
            registered = trait(platform, "stream_slices")
        if not registered:  # (a small device: a plain wire)
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready)]  # fmt: skip
            if self.valid_copy:
                m.d.comb += self.o_valid_copy.eq(self.i.valid)
            return m
        # o_valid (and its copy): one next value, a flip-flop each (UNSHARED: hwgen.rtl.attrs)
        o_valid = Signal(attrs=UNSHARED if self.valid_copy else {})
        copies = [o_valid]
        if self.valid_copy:
            copies.append(Signal(name="o_valid_copy", attrs=UNSHARED))
            m.d.comb += self.o_valid_copy.eq(copies[1])
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
            m.d.sync += [*(v.eq(s_valid | take) for v in copies),
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
