"""The board top: the oscillator's clock (through the ECP5 PLL) into the ``sync`` domain, held
in reset until it is stable, and :class:`~hwgen.hostlink.top.HostTop` (the Accelerator behind
the framed UART host link, docs/hostlink.md) on the board's FTDI UART pins.

* ECP5 (ULX3S): 25 MHz oscillator -> EHXPLLL -> ``sync`` at the build clock; the design is held
  in reset (``ResetSynchronizer``) until the PLL reports lock.
* iCE40 (iCEBreaker): the 12 MHz oscillator drives ``sync`` directly; the platform's own
  power-on reset holds the design until the block RAMs are usable.

HostTop's UART divider is derived from the real build clock (the PLL's output, not the clock
asked for), so the baud rate on the wire is what the host opens the port with. LEDs show
busy / done / error / weights loaded (in the board's order, ``BoardSpec.leds``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth import ClockDomain, Elaboratable, Module, Signal, Value
from amaranth.lib.cdc import ResetSynchronizer

from hwgen.errors import UsageError
from hwgen.hostlink.top import HostTop
from hwgen.rtl.resets import add_unit
from hwgen.schedule.capacity import MemoryPlan

from .pll import PllParams, ecp5_pll, ecp5_pll_params

__all__ = ["BoardTop", "ClockPlan", "LED_STAGES", "LinkPlan", "clock_plan", "led_pipe", "link_plan",
           "top_for"]

MAX_BAUD_ERROR = 0.02  # 8N1 tolerates ~4 % between both ends: keep our side within 2 %


@dataclass(frozen=True)
class ClockPlan:
    """The design clock of one board build."""

    osc_mhz: float  # the board oscillator
    mhz: float  # the clock the design runs at (PLL output, or the oscillator)
    pll: PllParams | None  # None: the oscillator drives the design directly
    # the clock nextpnr places and routes for, when tighter than `mhz` (`--pnr-freq`)
    pnr_mhz: float | None = None

    def at_most(self, mhz: float) -> float | None:
        """The fastest clock this board's top runs at that is not above ``mhz`` (for a
        rebuild whose bitstream must run at a measured Fmax): a PLL output, or the
        oscillator; None if there is none."""
        if self.pll is None:
            return self.osc_mhz if self.osc_mhz <= mhz else None
        try:
            return ecp5_pll_params(self.osc_mhz, mhz).fout_mhz
        except ValueError:
            return None

    def text(self) -> str:
        if self.pll is None:
            return f"{self.mhz:g} MHz (the oscillator, no PLL)"
        p = self.pll
        pnr = f"; placed and routed for {self.pnr_mhz:g} MHz" if self.pnr_mhz else ""
        return (f"{self.mhz:g} MHz (EHXPLLL from {self.osc_mhz:g} MHz: CLKI_DIV {p.clki_div}, "
                f"CLKFB_DIV {p.clkfb_div}, CLKOP_DIV {p.clkop_div}, VCO {p.fvco_mhz:g} MHz{pnr})")


@dataclass(frozen=True)
class LinkPlan:
    """The UART of HostTop at one clock: the divider and the baud rate it really gives."""

    baud: int  # asked for
    clocks_per_bit: int
    actual_baud: float
    error: float  # relative

    def text(self) -> str:
        return (f"{self.baud} baud 8N1 ({self.clocks_per_bit} clocks/bit, actual "
                f"{self.actual_baud:.0f} baud, {100 * self.error:+.3f} %)")


def clock_plan(family: str, osc_mhz: float, freq_mhz: float | None,
               pnr_mhz: float | None = None) -> ClockPlan:
    """The build clock: the fastest ECP5 PLL setting not above ``freq_mhz`` (and within 1 %
    of it); iCE40 runs at the oscillator (``freq_mhz`` must be None or equal to it).
    ``pnr_mhz``: the clock nextpnr is told the PLL gives (ECP5 only, at least the PLL's): a
    tighter target makes its timing-driven placement work harder (the 12x16 routed at 130.8
    MHz placed for 150, at 116.8-123.5 placed for 120/125), while the bitstream runs at the
    PLL's clock."""
    if pnr_mhz is not None:
        _check_pnr(family, osc_mhz, freq_mhz, pnr_mhz)
    if family == "ecp5":
        assert freq_mhz is not None
        try:
            pll = ecp5_pll_params(osc_mhz, freq_mhz)
        except ValueError as e:
            raise UsageError(f"--freq {freq_mhz:g}: {e}") from None
        if abs(pll.fout_mhz - freq_mhz) > 0.01 * freq_mhz:
            raise UsageError(f"--freq {freq_mhz:g}: the fastest EHXPLLL output at or below "
                             f"it from {osc_mhz:g} MHz is {pll.fout_mhz:g} MHz")
        return ClockPlan(osc_mhz, pll.fout_mhz, pll, pnr_mhz)
    if freq_mhz is not None and freq_mhz != osc_mhz:
        raise UsageError(f"--freq {freq_mhz:g}: the {family} board top runs at its "
                         f"{osc_mhz:g} MHz oscillator (no PLL)")
    return ClockPlan(osc_mhz, osc_mhz, None)


def _check_pnr(family: str, osc_mhz: float, freq_mhz: float | None, pnr_mhz: float) -> None:
    """``--pnr-freq``: a number of MHz, on a board with a PLL, at least the design clock."""
    if not (math.isfinite(pnr_mhz) and pnr_mhz > 0):
        raise UsageError(f"--pnr-freq {pnr_mhz!r}: must be a positive number of MHz")
    if family != "ecp5":
        raise UsageError(f"--pnr-freq {pnr_mhz:g}: the {family} board top has no PLL, so its "
                         "clock constraint is the oscillator's")
    if freq_mhz is not None and pnr_mhz < freq_mhz:
        raise UsageError(f"--pnr-freq {pnr_mhz:g}: below the {freq_mhz:g} MHz design clock "
                         "(--freq): the bitstream would run faster than it was routed for")


def link_plan(clock_mhz: float, baud: int) -> LinkPlan:
    """HostTop's clocks per bit at ``clock_mhz``; UsageError if the rate is off by > 2 %."""
    if baud <= 0:
        raise UsageError(f"--baud {baud}: must be a positive integer")
    cpb = round(clock_mhz * 1e6 / baud)
    if cpb < 4:
        raise UsageError(f"--baud {baud}: needs at least 4 clocks per bit, the "
                         f"{clock_mhz:g} MHz clock gives {clock_mhz * 1e6 / baud:.2f}")
    actual = clock_mhz * 1e6 / cpb
    err = actual / baud - 1
    if abs(err) > MAX_BAUD_ERROR:
        raise UsageError(f"--baud {baud}: {clock_mhz:g} MHz / {cpb} clocks per bit gives "
                         f"{actual:.0f} baud ({100 * err:+.1f} %, more than 2 % off)")
    return LinkPlan(baud, cpb, actual, err)


LED_STAGES = 2


def led_pipe(m: Module, flag: Value, name: str) -> Signal:
    """``flag`` ``LED_STAGES`` cycles later, through reset-less flip-flops. Nobody sees a
    LED a few cycles late, and the stages let the placer cross the die from the flag's unit
    to the pin: one register by the pin, with the design reset on its set/reset pin, was the
    12x16's worst path (b78cb87 seed 2: the reset synchronizer to `led_2`'s LSR, 7.59 ns;
    seed 1: the loader's `loaded` to `led_3`, 7.85)."""
    q = flag
    for k in range(LED_STAGES):
        r = Signal(name=f"{name}_r{k}", reset_less=True)
        m.d.sync += r.eq(q)
        q = r
    return q


class BoardTop(Elaboratable):
    """Clock + reset + HostTop(plan) on the FTDI UART + four status LEDs."""

    def __init__(self, plan: MemoryPlan, clock: ClockPlan, link: LinkPlan,
                 leds: tuple[str, ...] = ("busy", "done", "error", "loaded")) -> None:
        self.plan = plan
        self.clock = clock
        self.link = link
        self.leds = leds
        self.host = HostTop(plan, clk_freq=clock.mhz * 1e6, baud=link.baud)
        assert self.host.cpb == link.clocks_per_bit

    def info(self) -> dict:
        """What the report says about the top."""
        return {
            "top": "HostTop (UART host link, docs/hostlink.md)",
            "clock": self.clock.text(),
            "clock_mhz": self.clock.mhz,
            "pnr_mhz": self.clock.pnr_mhz,  # (None: placed and routed for clock_mhz)
            "uart": self.link.text(),
            "baud": self.link.baud,
            "clocks_per_bit": self.link.clocks_per_bit,
            "max_payload": self.host.max_payload,
            "leds": list(self.leds),
            "memory_plan": self.plan.text(),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.clock.pll is not None:
            self._pll_domain(m, platform)
        # else: the platform makes `sync` from its default clock, with its power-on reset
        # HostTop's own logic on a registered reset too, its units one level further
        # (hwgen.rtl.resets; seed 2 of e5e1174 failed on the synchronizer's net into a LUT
        # in front of a host-link LSR pin, 7.02 ns)
        host = add_unit(m, "host", self.host, platform)
        uart = platform.request("uart", 0)
        m.d.comb += [host.uart_rx.eq(uart.rx.i), uart.tx.o.eq(host.uart_tx)]
        flags = {"busy": host.led_busy, "done": host.led_done, "error": host.led_error,
                 "loaded": host.led_loaded}
        for i, what in enumerate(self.leds):
            m.d.comb += platform.request("led", i).o.eq(led_pipe(m, flags[what], f"led{i}"))
        return m

    def _pll_domain(self, m: Module, platform) -> None:
        """Board oscillator -> EHXPLLL -> sync; reset held until the PLL locks."""
        clk_in = platform.request(platform.default_clk)
        clk, lock = ecp5_pll(m, clk_in.i, self.clock.pll)
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += cd.clk.eq(clk)
        # No clock constraint here: nextpnr derives the build clock's from the PLL's dividers
        # and its input's (the oscillator's, from the platform); `--pnr-freq`'s is written
        # after synthesis on the net's name there (hwgen.boards.clock_net: this signal's
        # name does not survive synthesis).
        m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")


def top_for(spec, plan: MemoryPlan, freq_mhz: float | None, baud: int,
            pnr_mhz: float | None = None) -> BoardTop:
    """The board top of ``spec`` (a BoardSpec) for a design sized by ``plan``."""
    clock = clock_plan(spec.family, spec.osc_mhz, freq_mhz, pnr_mhz)
    return BoardTop(plan, clock, link_plan(clock.mhz, baud), spec.leds)
