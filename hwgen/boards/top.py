"""A minimal board top: clock/PLL, reset, LEDs, and a scan chain over every core port.

Until the UART host link's top replaces it, this gives the synthesis tools a complete design
in which no core logic can be trimmed: every core input comes from a register loaded from a
serial pin, every core output is captured into a register shifted out on a serial pin.

Pins (the FTDI UART lines of the ULX3S, host's view: RTS and DTR are outputs of the host):
  rx   scan data in            rts  shift (1: both chains move one bit per clock)
  tx   scan data out           dtr  rising edge: update core inputs from the chain and
                                    capture the core outputs into the out chain
LEDs: 0 busy, 1 done, 2 error (when the core has one), 3 weights loaded.
"""

from __future__ import annotations

from amaranth import Cat, ClockDomain, Const, Elaboratable, Module, Signal, Value
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import Flow

from .pll import ecp5_pll, ecp5_pll_params

__all__ = ["ScanTop", "core_ports"]


def core_ports(core) -> tuple[list[Value], list[Value]]:
    """(inputs, outputs) of a wiring.Component as flat values, constants left out."""
    ins, outs = [], []
    for _path, member, value in core.signature.flatten(core):
        v = Value.cast(value)
        if isinstance(v, Const):
            continue
        (ins if member.flow == Flow.In else outs).append(v)
    return ins, outs


class ScanTop(Elaboratable):
    def __init__(self, core, *, freq_mhz: float) -> None:
        self.core = core
        self.freq_mhz = freq_mhz

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core = core = self.core

        # Clock: board oscillator -> PLL -> sync; reset held until the PLL locks.
        clk_in = platform.request(platform.default_clk)
        pll = ecp5_pll_params(platform.default_clk_frequency / 1e6, self.freq_mhz)
        clk, lock = ecp5_pll(m, clk_in.i, pll)
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += cd.clk.eq(clk)
        platform.add_clock_constraint(clk, pll.fout_mhz * 1e6)
        m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")

        uart = platform.request("uart", 0)
        sdi, shift, update = Signal(), Signal(), Signal()
        m.submodules.sync_rx = FFSynchronizer(uart.rx.i, sdi)
        m.submodules.sync_rts = FFSynchronizer(uart.rts.i, shift)
        m.submodules.sync_dtr = FFSynchronizer(uart.dtr.i, update)

        ins, outs = core_ports(core)
        in_bits = Cat(*ins)
        out_bits = Cat(*outs)
        chain_in = Signal(len(in_bits))
        held = Signal(len(in_bits))
        chain_out = Signal(len(out_bits))
        update_d = Signal()
        m.d.sync += update_d.eq(update)
        with m.If(update & ~update_d):
            m.d.sync += [held.eq(chain_in), chain_out.eq(out_bits)]
        with m.Elif(shift):
            m.d.sync += [
                chain_in.eq(Cat(chain_in[1:], sdi)),
                chain_out.eq(chain_out[1:]),
            ]
        m.d.comb += [in_bits.eq(held), uart.tx.o.eq(chain_out[0])]

        leds = [platform.request("led", i) for i in range(4)]
        flags = [core.busy, core.done, getattr(core, "error", Const(0, 1)), core.weights_loaded]
        for led, flag in zip(leds, flags, strict=True):
            m.d.sync += led.o.eq(flag)
        return m


def top_for(spec, core, freq_mhz: float):
    """The board top for ``core`` (the ECP5 boards' scan top for now)."""
    if spec.family != "ecp5":
        raise NotImplementedError(f"no board top for the {spec.family} family yet")
    return ScanTop(core, freq_mhz=freq_mhz)
