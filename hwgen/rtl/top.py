"""The Accelerator: controller, memories, feeders, systolic array and write-back.

The design is built for a MemoryPlan (array + memory depths + max layers); the program runs
from a descriptor memory loaded at run time with the weights, so one build runs any Program
that fits the plan (`MemoryPlan.check`). `Accelerator(program)` builds the smallest plan for
one program.

Streams (lib.stream, valid/ready; every payload carries `last` on its final item):
  weights  In  {data: u32, last} beats: model transfer (see loader.py: header, program,
               weights, parameters), once per model
  image    In  {data: int8, last} input values in HWC order: data transfer. Taken after
               `start`, and also before it: the next image loads into the input region
               while the current one computes (the preload, see ImageSlot in transfer.py)
  logits   Out {data: int8, last} results: result transfer
Control: `start` (pulse) -> busy ... -> `done` (level until the next accepted start).

Faults are reported, never absorbed: `status` (STATUS_LAYOUT) holds sticky error flags and
`error` is high while any flag is set.
  image_short     `last` came before the image's final value: the run is dropped (no layer
                  runs, no logits) and the controller goes to DONE.
  image_long      the final value came without `last`: the run is dropped and the values that
                  follow are discarded up to and including the next `last`, then DONE.
                  (An image's fault is flagged by the run that takes the image, in the
                  cycle after the faulty value was taken; for a preloaded image, after the
                  next start.)
  weights_short   a weight beat with `last` came before the final expected beat.
  weights_long    the final expected weight beat came without `last`; the loader discards up
                  to the next `last`. After either weight fault `weights_loaded` stays low and
                  the loader is rewound for a fresh transfer.
  weights_header  the transfer's header was refused (wrong magic, a region empty or larger
                  than its memory); the loader discards up to the next `last`.
  start_unloaded  `start` while `weights_loaded` is low (no complete model transfer): refused.
  start_busy      `start` during the data transfer or the computation: refused.
  start_unread    `start` during the result transfer (logits not all read): refused.
`start` is a one-cycle pulse: held high, its second cycle is a start while busy. A refused
start changes nothing else. An accepted start clears every flag; `weights_restart`
clears the weight flags. A design reset clears them too; `weights_loaded` survives a reset
(the memories keep the model). No weight beat is taken while `busy`.
Observability: `perf_sel`/`perf_data` read cycle counters (0 total, 1 data-in, 2 results-out,
3+L layer L); `dbg_*` reads activation buffer words while idle: `dbg_data` is the word at
`dbg_addr` of buffer `dbg_buf` two cycles later (row 0's port-A address is registered), not
while an image value is written (that write owns the port); `dbg_stop`/`dbg_layers` stop
after layer `dbg_layers` (for locating the first diverging layer).
Loaded program: `prog_layers`, `prog_in_len`, `prog_out_len` (from the loaded header: what a
host link needs to frame a transfer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.schedule.capacity import MemoryPlan
from hwgen.schedule.program import Program

from .attrs import UNSHARED, copies_of
from .bankmem import READ_LATENCY as WEIGHT_READ_LATENCY
from .bankmem import BankedMemory
from .delay import DELAY_RAM_FROM, DelayLine, chain
from .descriptor import DESC_LAYOUT, HEADER_LAYOUT, HEADER_MAGIC, beat_writes, narrow_fields
from .feeder import FEEDER_LATENCY, RowFeeder, feed_cfg
from .loader import BEAT_LAYOUT, WeightLoader, beats_per_word
from .parammem import ParamMemory
from .regslice import RegSlice
from .resets import add_unit
from .sequencer import Sequencer
from .systolic import SystolicArray
from .traits import trait
from .transfer import IMAGE_LAYOUT, LOGIT_LAYOUT, ImageSlot, ImageWriter, LogitSender
from .writeback import PARAM_LANE_LAYOUT, START_LAYOUT, WriteBack

if TYPE_CHECKING:
    from amaranth.hdl import ValueLike

__all__ = [
    "Accelerator",
    "DESC_BEATS",
    "IMAGE_LAYOUT",
    "LOGIT_LAYOUT",
    "PERF_READ_LATENCY",
    "STATUS_LAYOUT",
    "WEIGHT_LAYOUT",
    "fetch_cycles",
    "perf_index",
]

WEIGHT_LAYOUT = BEAT_LAYOUT  # {data: unsigned(32), last: 1}
# Sticky error flags (see the module docstring for when each is set and how they clear).
STATUS_LAYOUT = data.StructLayout(
    {
        "image_short": 1,
        "image_long": 1,
        "weights_short": 1,
        "weights_long": 1,
        "start_unloaded": 1,
        "start_busy": 1,
        "start_unread": 1,
        "weights_header": 1,
    }
)


DESC_BEATS = beats_per_word(DESC_LAYOUT.size)  # 32-bit program words per descriptor


def fetch_cycles(platform) -> int:
    """Controller cycles per layer outside its RUN counter (FETCH) on ``platform``: the
    beats' reads, one more with the program word's extra register (trait ``program_hop``),
    then one cycle with the whole descriptor in `desc` before the layer starts."""
    return DESC_BEATS + 2 + int(bool(trait(platform, "program_hop")))


# perf_sel indices of the cycle counters: the host driver and the testbenches read the same
PERF_TOTAL, PERF_DATA_IN, PERF_RESULTS_OUT, PERF_LAYER0 = 0, 1, 2, 3


def perf_index(name: str, layer: int = 0) -> int:
    return {"total": PERF_TOTAL, "input": PERF_DATA_IN, "output": PERF_RESULTS_OUT,
            "layer": PERF_LAYER0 + layer}[name]


def _bits(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


# result words: row 0's registered port-A address, block RAM, row 0's stage-M register, the
# result word register (`res_word`, after the output-buffer select)
RESULT_READ_LATENCY = 4
DBG_READ_LATENCY = 2  # `dbg_data`: row 0's registered port-A address, then the block RAM
# `perf_data`: the counter select's low bits pick within groups of four (registered), then
# the high bits pick the group (registered): no wide mux in one cycle
PERF_READ_LATENCY = 2


def _delay(m: Module, sig, n: int, name: str):
    return chain(m, sig, [f"{name}_{s}" for s in range(n)])


def _skew(m: Module, sig, n: int, name: str, ram_from: int):
    """A weight lane's column skew, ``sig`` ``n`` cycles later: the first cycle a register (a
    block RAM's read data goes into its output register, hwgen.boards.outreg), the rest a
    `DelayLine` (LUT RAM from ``ram_from`` cycles on)."""
    if n < 2:
        return _delay(m, sig, n, name)
    first = _delay(m, sig, 1, name)
    m.submodules[f"{name}_line"] = line = DelayLine(first.shape(), n - 1, ram_from=ram_from)
    m.d.comb += line.i.eq(first)
    return line.o


def _part1_delays(m: Module, seq, convw, q: int):
    """Part 1's read R/2 cycles after part 0's (the chain's skew at row R/2; ``q`` includes
    part 0's address wait), and its flags beside the data."""
    m.d.comb += convw.r2_addr.eq(_delay(m, seq.w2_addr, q, "w2a"))
    on = _delay(m, seq.w2_on, q + WEIGHT_READ_LATENCY, "w2on")
    zero = _delay(m, seq.w2_zero, q + WEIGHT_READ_LATENCY, "w2z")
    return on, zero


# an activation buffer copy's ports: (port A read, port B read or None, write port)
_Copy = tuple[memory.ReadPort, memory.ReadPort | None, memory.WritePort]


def _rport(bufs: list[list[_Copy]], b: int, i: int) -> memory.ReadPort:
    """The read port row i uses in buffer b."""
    ra, rb, _ = bufs[b][i // 2]
    return ra if i % 2 == 0 else rb


def _count(cnt: Signal):  # -> an Assign statement (not public in amaranth.hdl)
    """A cycle counter's step: +1, saturating (not wrapping) when narrower than 32 bits."""
    return cnt.eq(cnt + 1) if len(cnt) >= 32 else cnt.eq(cnt + ~cnt.all())


@dataclass(frozen=True)
class _Ctl:
    """The controller's registers besides its states (built by `_controller_regs`)."""

    layer: Signal
    layer_oh: Signal
    prog_addr: Signal
    prog_p1: Signal
    fetch_i: Signal
    fetch_more: Signal
    fetch_sel: Signal
    rom_q: Signal
    hop: int  # registers after rom_q in front of the descriptor (trait `program_hop`)
    rom_h: Signal  # that register (with hop)
    addr_idle: Signal  # the program address rewinds (`_program_fetch`)
    layer_busy: Signal  # the layer registers' own copy of busy_r (`_program_fetch`)
    seq_start: Signal
    wb_start: list[Signal]  # one per part of the write-back (START_LAYOUT)
    settle: Signal
    fetch_end: Signal
    layer_done: Signal
    units_done: Signal
    snd_start: Signal


@dataclass(frozen=True)
class _Fsm:
    """The controller's one-hot states and the flags its transitions keep (`_fsm_regs`)."""

    st: dict[str, Signal]
    busy_r: Signal
    stop_r: Signal
    win_r: Signal
    win_w: Signal  # win_r's copy for the image writer's steps (UNSHARED; `_image_window`)
    rel_r: Signal
    en_r: Signal
    en_next: Signal

    twins: dict[str, Signal]  # a state's flip-flop copy (UNSHARED), kept by `goto`

    def goto(self, cur: str, nxt: str) -> list:
        """The transition from state ``cur`` to state ``nxt``."""
        return [s.eq(v) for n, v in ((cur, 0), (nxt, 1))
                for s in (self.st[n], *([self.twins[n]] if n in self.twins else []))]

    def idle_next(self) -> list:
        """A transition into DONE: not busy, the slot's release as idle (the enable
        stays high in DONE's first cycle: busy_r was)."""
        return self.slot_ctl(1, 1)  # (busy_r: see its equation, `Accelerator._busy`)

    def slot_ctl(self, win: ValueLike, rel: ValueLike) -> list:
        """The image slot's release flag (rel_r) in the next state."""
        # (win: see win_r's equation, Accelerator._layer_end)
        return [self.rel_r.eq(rel)]


def _controller_regs(m: Module, n_layers: int, seq: Sequencer, wb: WriteBack,
                     snd: LogitSender, hop: int) -> _Ctl:
    """The controller's registers: layer and program positions, FETCH's and RUN's flags."""
    layer = Signal(range(max(n_layers, 2)))
    # layer_oh[n] == (layer == n), kept with `layer`: each layer counter's enable is a
    # flip-flop, not a decode of `layer` (timing)
    layer_oh = Signal(n_layers, init=1)
    prog_addr = Signal(range(n_layers * DESC_BEATS + 1))  # next program beat to read
    # prog_addr + 1, a register kept with prog_addr: the program memory's read address
    # is prog_addr + in_fetch, a 2:1 select of two registers by FETCH's flip-flop (see
    # rom_q, _program_fetch). Timing: an up/down counter set with the transitions into and out of
    # FETCH had layer_done -> 5 LUT levels in front of it, 7.8 ns routed on e38c5b2.
    prog_p1 = Signal.like(prog_addr, init=1)
    fetch_i = Signal(range(DESC_BEATS + 2 + hop))  # FETCH's cycle
    # fetch_i < DESC_BEATS, a flag kept with fetch_i (timing: the compare's carry and
    # LUTs sat in front of the program address's steps, 6.94 ns routed on b24ce83 seed 1)
    fetch_more = Signal(init=1)
    fetch_sel = Signal(DESC_BEATS)  # FETCH writes desc slice i (_program_fetch)
    rom_q = Signal(32, reset_less=True)
    rom_h = Signal(32, reset_less=True)
    # The program address's registers sit by the program block; its select and steps read
    # a copy of FETCH's flip-flop (`_Fsm.twins`) kept by their next values, not the
    # controller's own across the die (timing: st_fetch -> 6.63 ns of routing -> the address
    # select, 8.45 ns on the 12x16 of 9ea76c6 seed 2; st_fetch & fetch_more -> the steps'
    # enable 8.21 ns), and its rewind a flag of its own (`_program_fetch`). (fetch_more has
    # no other reader.)
    addr_idle = Signal(init=1)
    # The layer registers' rewind reads busy_r's own copy (their reset pins: ~busy_r, which
    # the 12x16 of 92cb18e seed 1 placed by the host link, 3.69 + 3.41 ns of routing,
    # 120.6 MHz; there busy_r and its copy were one flip-flop, busy_r now UNSHARED too)
    layer_busy = Signal(attrs=UNSHARED)
    # UNSHARED: the same next value, but each drives its own unit's ~400 loads (timing)
    seq_start = Signal(attrs=UNSHARED)
    wb_start = [Signal(name=f"wb_start_{u}", attrs=UNSHARED) for u in START_LAYOUT.members]
    # RUN's first three cycles, shifted in (settle[2]: RUN's end test may look at the
    # layer; a flag, not a compare)
    settle = Signal(3)
    fetch_end = Signal()  # FETCH's final cycle (fetch_i == DESC_BEATS + 1 + hop), a flag
    # the layer is over (sequencer idle, write-back done) and RUN is past its settle
    # cycles, registered (== settle[2] & the registered ~seq.busy & wb.done): the
    # controller's RUN exit and the result transfer's start come from this one flip-flop
    # (timing), and it also waits out the write-back's extra write register (see the
    # buffers in `elaborate`). Set in `_layer_end`, from settle[2]'s next value.
    layer_done = Signal()
    # ~seq.busy & wb.done, registered (timing: their flip-flops sit with their units, and
    # ANDed with the controller's FETCH/RUN flags they were 4 LUT levels and 5.8 ns of
    # routing in front of layer_done, 7.30 ns routed on oob13 seed 2). One cycle more per
    # layer; settle[2] still covers RUN's first cycles (this register then holds RUN1's
    # values, when the sequencer runs and the write-back's flags are cleared).
    units_done = Signal()
    snd_start = Signal()  # the result transfer's start, a registered pulse (timing)
    m.d.comb += [seq.start.eq(seq_start), wb.start.eq(Cat(wb_start)), snd.start.eq(snd_start)]
    return _Ctl(layer=layer, layer_oh=layer_oh, prog_addr=prog_addr, prog_p1=prog_p1,
                fetch_i=fetch_i, fetch_more=fetch_more, fetch_sel=fetch_sel, rom_q=rom_q,
                hop=hop, rom_h=rom_h, addr_idle=addr_idle, layer_busy=layer_busy,
                seq_start=seq_start, wb_start=wb_start, settle=settle, fetch_end=fetch_end,
                layer_done=layer_done, units_done=units_done, snd_start=snd_start)


def _row0_read_addr(m: Module, feeder0: RowFeeder, AW: int) -> tuple[Signal, Signal]:
    """Row 0's registered port-A read address (rd_addr0) and its next value (rd_next0)."""
    # Row 0's port-A read address is a register of its own (rd_addr0, set here): the
    # alternatives are muxed a cycle ahead (feeder 0's stage-A address before its
    # register), so only the write mux sits in front of copy 0's port A, as for the others.
    rd_addr0 = Signal(AW, reset_less=True)
    rd_next0 = Signal(AW)
    m.d.comb += rd_next0.eq(feeder0.raddr_next)
    m.d.sync += rd_addr0.eq(rd_next0)
    return rd_addr0, rd_next0


def _writeback_regs(m: Module, wb: WriteBack, desc: data.View
                    ) -> tuple[list[Signal], Signal, Signal]:
    """The write-back's write, registered once in front of the buffers' write muxes."""
    # the write-back writes buffer b (UNSHARED: each sits by its buffer's write mux)
    wb_we = [Signal(name=f"wb_we{b}", attrs=UNSHARED) for b in range(2)]
    wb_wa = Signal.like(wb.wr_addr, name="wb_wa", reset_less=True)
    wb_wd = Signal.like(wb.wr_data, name="wb_wd", reset_less=True)
    # (the image slot's window reads wb_we[0]'s next value in win_r: `_layer_end`)
    m.d.sync += [*(wb_we[b].eq(wb.wr_en & (desc.dst == b)) for b in range(2)),
                 wb_wa.eq(wb.wr_addr), wb_wd.eq(wb.wr_data)]  # fmt: skip
    return wb_we, wb_wa, wb_wd


def _header_limits(m: Module, hdr: data.View, img: ImageWriter, snd: LogitSender) -> Signal:
    """The header's limits minus one, registered, for the loop-end tests; returns n_last."""
    # The header's limits minus one, registered: the loop-end tests compare registers. The
    # header changes only in a model load, long before any start can use these.
    n_last = Signal.like(hdr.n_layers, reset_less=True)
    in_c_m1 = Signal.like(hdr.in_c, reset_less=True)
    in_len_m1 = Signal.like(hdr.in_len, reset_less=True)
    out_len_m1 = Signal.like(hdr.out_len, reset_less=True)
    m.d.sync += [n_last.eq(hdr.n_layers - 1), in_c_m1.eq(hdr.in_c - 1),
                 in_len_m1.eq(hdr.in_len - 1), out_len_m1.eq(hdr.out_len - 1)]
    m.d.comb += [img.c_last.eq(in_c_m1), img.len_last.eq(in_len_m1),
                 snd.len_last.eq(out_len_m1)]
    return n_last


def _start_clears(m: Module, ctl: _Ctl, counters: Array) -> tuple[list[Signal], list]:
    """The cycle counters' clear flip-flops (clr), and `begin`: what an accepted start does."""
    # an accepted start (from IDLE or DONE, weights loaded) rewinds the input pointer, the
    # layer and the counters, and clears the status
    # The cycle counters clear in LOAD_IN's first cycle, each from a flip-flop of its own
    # (an accepted start, registered): timing — the start's LUT drove every counter bit.
    # The two that count in that cycle (total, LOAD_IN) restart at 1 instead.
    clr = [Signal(name=f"perf_clr{n}", attrs=UNSHARED) for n in range(len(counters))]
    m.d.sync += [c.eq(0) for c in clr]
    # (the layer and program positions are rewound while idle instead, _program_fetch)
    begin = [ctl.fetch_i.eq(0), ctl.fetch_more.eq(1), *(c.eq(1) for c in clr)]
    return clr, begin


def _image_window(m: Module, fsm: _Fsm, slot: ImageSlot, img: ImageWriter) -> None:
    """The image slot's window, enable and release, from the controller's flip-flops."""
    # The image slot (the preload): the image's buffer-0 write shares port A with row
    # reads, the result transfer and the write-back, so a value is taken only when none
    # of them uses it: while idle, loading or fetching, or running a layer marked
    # `preload` (it does not read buffer 0; the input region is no longer read) in a
    # cycle without a write-back to buffer 0. Writes land one cycle later (registered);
    # a layer's first read comes later than that after FETCH. The controller's part is
    # win_r / rel_r (flip-flops, see `_fsm_regs`); win_r includes the write-back's part.
    m.d.comb += [
        slot.window.eq(fsm.win_r),  # (implies en_r: see win_r)
        # the writer's steps read a copy (timing: their LUT then sits by the writer's
        # position registers, not by the slot; see the image slice in `_transfers`)
        img.window.eq(fsm.win_w),
        # no new model while idle: a preloaded image is dropped (busy: the run goes on)
        slot.enable.eq(fsm.en_r),
        slot.release.eq(fsm.rel_r),
    ]


def _counter_clears(m: Module, counters: Array, clr: list[Signal]) -> None:
    """The cycle counters' clears (after the states' counts: the clear wins)."""
    for n, c in enumerate(clr):  # after the states' counts: the clear wins
        with m.If(c):
            # LOAD_IN's first cycle counts in the total and the data-in counter
            m.d.sync += counters[n].eq(int(n in (PERF_TOTAL, PERF_DATA_IN)))


def _load_in(m: Module, fsm: _Fsm, counters: Array, slot: ImageSlot, flag: Signal) -> None:
    """State LOAD_IN: waits for the image slot's whole image, then FETCH (or DONE)."""
    # Waits for the slot to hold a whole image (at once if it was preloaded). The
    # image must end exactly on its in_len-th value: a short one is dropped unrun,
    # a long one once the slot has discarded it up to its `last`. Its fault is
    # flagged as soon as the slot knows it (the slot keeps it with the image).
    m.d.sync += [_count(counters[PERF_TOTAL]), _count(counters[PERF_DATA_IN])]
    # (in LOAD_IN the slot's image is this run's; its kept fault flags are
    # registered in the cycle the faulty value is taken, so the status flag rises
    # one cycle later, from flip-flops: timing)
    m.d.comb += [flag.image_short.eq(slot.bad_short),
                 flag.image_long.eq(slot.bad_long),
                 slot.take.eq(slot.full)]
    with m.If(slot.full):
        with m.If(slot.bad_short | slot.bad_long):
            m.d.sync += fsm.goto("LOAD_IN", "DONE")
            m.d.sync += fsm.idle_next()
        with m.Else():
            m.d.sync += fsm.goto("LOAD_IN", "FETCH")


class Accelerator(wiring.Component):
    def __init__(self, plan: MemoryPlan | Program) -> None:
        if isinstance(plan, Program):
            plan = MemoryPlan.of(plan)
        self.plan = plan
        cfg = plan.array
        self.R, self.C = cfg.rows, cfg.cols
        self.addr_width = _bits(max(plan.buf_depth))
        self.n_layers = plan.max_layers
        super().__init__(
            {
                "weights": In(stream.Signature(WEIGHT_LAYOUT)),
                "weights_restart": In(1),
                "weights_loaded": Out(1),
                "prog_layers": Out(8),
                "prog_in_len": Out(24),
                "prog_out_len": Out(16),
                "image": In(stream.Signature(IMAGE_LAYOUT)),
                "logits": Out(stream.Signature(LOGIT_LAYOUT)),
                "start": In(1),
                "busy": Out(1),
                "done": Out(1),
                "status": Out(STATUS_LAYOUT),
                "error": Out(1),
                "perf_sel": In(8),
                "perf_data": Out(32),
                "dbg_buf": In(1),
                "dbg_addr": In(unsigned(self.addr_width)),
                "dbg_data": Out(unsigned(8 * self.C)),
                "dbg_stop": In(1),
                "dbg_layers": In(8),
            }
        )

    def _part1_stream(self, m: Module, seq, convw, array, wlat: int, ram_from: int) -> None:
        """The second conv weight stream into row R/2 (two-stream remainder tiles): read
        R/2 cycles after part 0's word, gated to 0 past part 1's real elements, then the same
        column skew as the first stream."""
        C = self.C
        on, zero = _part1_delays(m, seq, convw, self.R // 2 + wlat)
        for j in range(C):
            lane = Mux(zero, 0, convw.r2_data[8 * j : 8 * j + 8])
            m.d.comb += [array.col_w2[j].eq(_skew(m, lane, j, f"cw2_{j}", ram_from)),
                         array.w2_sel[j].eq(_delay(m, on, j, f"w2s{j}"))]

    def elaborate(self, platform) -> Module:
        """The whole accelerator, piece by piece (the order of the pieces fixes the netlist)."""
        m = Module()
        # ---------------- memories
        convw, directw, params, stream = self._weight_memories(m, platform)
        bufs = self._act_buffers(m)
        rom_r, rom_w, desc, desc_regs = self._program_memory(m, platform)
        # ---------------- model transfer
        loader = self._model_transfer(m, platform, rom_w, convw, directw, params)
        hdr = loader.header  # the loaded program's header (valid while weights_loaded)
        # ---------------- compute pipeline
        seq, wb, array = self._compute_units(m, platform, desc, stream)
        feeders = self._feeders(m, platform, seq, array, desc, bufs)
        ram_from = trait(platform, "delay_ram_from", DELAY_RAM_FROM)
        self._weight_reads(m, seq, array, convw, directw, stream, ram_from)
        self._writeback_inputs(m, array, wb, params)
        # ---------------- data and result transfers (hwgen/rtl/transfer.py)
        img, slot, snd = self._transfers(m, platform, hdr, desc, feeders)

        # ---------------- controller
        hop = int(bool(trait(platform, "program_hop")))
        ctl = _controller_regs(m, self.n_layers, seq, wb, snd, hop)
        counters = self._perf_counters(m, platform)

        # buffer connections: row i reads port i%2 of copy i//2; a write goes to every copy
        # through port A, whose address is the write's while it writes, else row 2k's read.
        # The write-back's write is registered here (`wb_we`: the image slot's window then
        # knows a cycle ahead, from a flip-flop, that the write-back takes port A) and again
        # after the mux with the image's write, then once more per copy with `copy_trees`
        # (timing: port A's address select and the write enables come from flip-flops of
        # their own near each copy). It lands two (three) cycles later, which nothing can
        # see: within a layer the written buffer is not the one read, and a layer's results
        # are read only after the controller has seen `layer_done` (registered from the
        # write-back's done, itself a cycle after the final write) and fetched or started the
        # result transfer. Measured margin (session 33): the back-to-back image overlap and
        # the network tests still pass with eight more write stages.
        rd_addr0, rd_next0 = _row0_read_addr(m, feeders[0], self.addr_width)
        wb_we, wb_wa, wb_wd = _writeback_regs(m, wb, desc)
        trees = trait(platform, "copy_trees")
        for b in range(2):
            self._buffer_writes(m, b, bufs[b], wb_we, wb_wa, wb_wd, img, rd_addr0, feeders,
                                trees)
        self._debug_read(m, bufs)

        flag, kept = self._status(m, loader)
        m.d.sync += ctl.snd_start.eq(0)
        n_last = _header_limits(m, hdr, img, snd)
        clr, begin = _start_clears(m, ctl, counters)
        fsm = self._fsm_regs(m, loader)
        self._fsm_states(m, ctl, fsm, desc, counters, n_last, slot, snd, begin, kept, flag)
        self._layer_end(m, ctl, fsm, seq, wb, snd, desc)
        # rom_q is the block RAM's output register; LUT RAM has none to absorb it, so there
        # the program is read at `prog_addr` itself (timing: FETCH's address select, from the
        # state's flip-flop across the die, was in front of the LUT RAM read, 8.54 ns routed
        # on the 12x16 of 05d735f seed 3). The same cycles either way.
        outreg = (trait(platform, "bram_output_register")
                  and not trait(platform, "program_lut_ram"))
        self._program_fetch(m, ctl, fsm, desc_regs, rom_r, outreg)
        self._busy(m, ctl, fsm, slot, snd)
        self._row0_read_select(m, fsm, rd_next0, snd)
        _image_window(m, fsm, slot, img)
        _counter_clears(m, counters, clr)
        self._start_refusals(m, fsm, flag)
        return m

    def _weight_memories(self, m: Module, platform
                         ) -> tuple[BankedMemory, BankedMemory, ParamMemory, bool]:
        """The weight and parameter memories, and `stream` (part 1's weights a second read)."""
        plan = self.plan
        cfg = plan.array
        R, C = self.R, self.C
        # the weight memories are deep: explicit block-RAM banks with registered outputs
        # two-stream remainder tiles (ArrayConfig.remainder_stream): part 1's weights are a
        # second read of the conv-weight memory, on the port its write uses
        stream = cfg.remainder_tiles and cfg.remainder_stream and R % 2 == 0
        # (written from the loader's commit, address and assembly flip-flops: no second copy
        # of the word in front of the block RAMs)
        convw = BankedMemory(width=8 * C, depth=plan.convw_depth, second_read=stream,
                             write_from_registers=True)
        # (its read and write addresses copied per part of the word: 8*R*C bits, up to 86
        # blocks a bank)
        directw = BankedMemory(width=8 * R * C, depth=plan.directw_depth,
                               write_from_registers=True, read_addr_copies=True,
                               write_addr_copies=True)
        # block RAM, not LUT RAM: a LUT-RAM read fans the address out to hundreds of cells;
        # LUT RAM only where the device's block RAM is full without it (a 12x16 on the 85F)
        self.params_in_lutram = plan.params_in_lutram(trait(platform, "bram_budget"))
        # (in LUT RAM a memory per lane, each with its own registered address: hwgen.rtl.parammem)
        params = ParamMemory(lane=PARAM_LANE_LAYOUT, lanes=C, depth=plan.param_depth,
                             lutram=self.params_in_lutram)
        m.submodules.convw = convw
        m.submodules.directw = directw
        m.submodules.params = self.params = params
        return convw, directw, params, stream

    def _act_buffers(self, m: Module) -> list[list[_Copy]]:
        """The two activation buffers, one block-RAM copy per pair of rows each."""
        R, C = self.R, self.C
        # Activation buffers: one physical copy per pair of rows. Copy k serves row 2k through
        # port A (which the write shares: a buffer is never read while it is written) and row
        # 2k+1 through port B, so one ECP5 DP16KD (true dual port) holds both read ports and
        # the write. Both reads are transparent to the write only so that yosys can map the
        # three ports onto the block's two without duplicating it; a value read in a write
        # cycle is never used (the feeders read the source buffer, the write-back writes the
        # other one), so transparency is never observed.
        bufs = []  # bufs[b][k] = (port A read, port B read or None, write port) of copy k
        for b in range(2):
            copies = []
            for k in range((R + 1) // 2):
                # no_rw_check: port B never reads the word port A writes in that cycle (see
                # above), so yosys adds no collision bypass after the block RAM
                mem = memory.Memory(shape=unsigned(8 * C), depth=self.plan.buf_depth[b],
                                    init=[], attrs={"no_rw_check": 1})
                m.submodules[f"act{b}_{k}"] = mem
                wp = mem.write_port(granularity=8)
                ra = mem.read_port(transparent_for=(wp,))
                # port B is not transparent to port A's write: a layer never reads the region
                # it writes in the same cycle, and the bypass logic would sit on the read path
                rb = mem.read_port() if 2 * k + 1 < R else None
                copies.append((ra, rb, wp))
            bufs.append(copies)
        return bufs

    def _program_memory(self, m: Module, platform) -> tuple[memory.ReadPort, memory.WritePort,
                                                            data.View, dict[str, Signal]]:
        """The program memory (descriptor beats), `desc`, the layer's descriptor, and its
        register (a narrowed register per field, `narrow_fields`)."""
        # the program: one descriptor per layer, loaded with the weights and stored as its
        # DESC_BEATS 32-bit beats (a narrow block RAM; a descriptor-wide memory would be
        # flip-flops on a device without LUT RAM). FETCH copies a layer's beats into `desc`.
        # (trait `program_lut_ram`: in LUT RAM, which the placer puts by its readers; the
        # same read register and cycles)
        attrs = {"no_rw_check": 1}  # written only by a model load
        if trait(platform, "program_lut_ram"):
            attrs["ram_style"] = "distributed"
        rom = memory.Memory(shape=unsigned(32), depth=self.plan.max_layers * DESC_BEATS,
                            init=[], attrs=attrs)
        m.submodules.program = rom
        rom_r, rom_w = rom.read_port(), rom.write_port()
        # `desc` is the layout's view of the descriptor register, whose classed fields keep
        # only the plan's bits (hwgen.schedule.fields; the plan refuses a wider program)
        desc = Signal(DESC_LAYOUT)
        regs = narrow_fields(self.plan.desc_bits)
        m.d.comb += [desc[f].eq(r) for f, r in regs.items()]
        return rom_r, rom_w, desc, regs

    def _model_transfer(self, m: Module, platform, rom_w: memory.WritePort,
                        convw: BankedMemory, directw: BankedMemory,
                        params: ParamMemory) -> WeightLoader:
        """The weight loader, on the `weights` stream, writing the program and the memories."""
        plan = self.plan
        R, C = self.R, self.C
        staged = trait(platform, "copy_trees")  # (the write stages below, on the board)
        loader = WeightLoader(
            header=HEADER_LAYOUT,
            magic=HEADER_MAGIC,
            regions=[
                ("n_layers", DESC_LAYOUT.size, plan.max_layers),
                ("convw_words", 8 * C, plan.convw_depth),
                ("directw_words", 8 * R * C, plan.directw_depth),
                ("param_words", PARAM_LANE_LAYOUT.size * C, plan.param_depth),
            ],
            beat_regions=(0,),  # the program memory holds beats (_program_memory)
            # one per part of the direct-weight word, one per lane of LUT-RAM parameters
            addr_copies={2: directw.n_parts, 3: params.write_copies},
            # the direct weights (a word of R*C bytes across the die) a cycle later, from
            # a word register by their block RAMs (hwgen.rtl.loader `_write_stage`), the
            # program (acc's slots -> the program block's data pins, 8.16 ns routed on
            # the 12x16 of 9ea76c6 seed 2) and the parameters (the enable's AND -> a lane's
            # enable copy, 8.56 ns routed on the 12x16 of 467296e seed 1; a narrow stage:
            # the word's first beat only, not 72 bits a lane)
            write_stage=(0, 2, 3) if staged else (),
            narrow_stage=(3,) if staged else (),
        )
        add_unit(m, "loader", loader, platform)
        hdr = loader.header  # the loaded program's header (valid while weights_loaded)
        # no beat is taken while the controller is busy: the running inference reads these
        # memories (a weights_restart mid-run only rewinds the loader)
        m.d.comb += [
            loader.i_stream.valid.eq(self.weights.valid & ~self.busy),
            loader.i_stream.payload.eq(self.weights.payload),
            self.weights.ready.eq(loader.i_stream.ready & ~self.busy),
            loader.restart.eq(self.weights_restart),
            self.weights_loaded.eq(loader.loaded),
            self.prog_layers.eq(hdr.n_layers),
            self.prog_in_len.eq(hdr.in_len),
            self.prog_out_len.eq(hdr.out_len),
        ]
        m.d.comb += [
            rom_w.en.eq(loader.we0),
            rom_w.addr.eq(loader.addr0),
            rom_w.data.eq(loader.data0),
        ]
        for n, mem in ((1, convw), (2, directw), (3, params)):
            # (the direct weights' write address and enable in copies, one per part of the
            # word)
            for mem_port, port in ((mem.w_addr, f"addr{n}"), (mem.w_en, f"we{n}")):
                m.d.comb += [d.eq(a) for d, a in zip(copies_of(mem_port),
                                                     copies_of(getattr(loader, port)),
                                                     strict=True)]  # fmt: skip
            m.d.comb += mem.w_data.eq(getattr(loader, f"data{n}"))
        return loader

    def _compute_units(self, m: Module, platform, desc: data.View, stream: bool
                       ) -> tuple[Sequencer, WriteBack, SystolicArray]:
        """The sequencer, the write-back and the systolic array, and the array's direct mode."""
        plan = self.plan
        cfg = plan.array
        R, C = self.R, self.C
        seq = Sequencer(cols=C, rows=R, stream=stream)
        add_unit(m, "seq", seq, platform)
        wb = WriteBack(
            rows=R,
            cols=C,
            acc_width=cfg.acc_width,
            addr_width=self.addr_width,
            param_addr_width=_bits(plan.param_depth),
            pool_max_k=plan.pool_max_k,
            pool_max_out_w=plan.pool_max_out_w,
            sum_width=plan.acc_width,
            fold=stream,
            param_hop=bool(trait(platform, "param_hop")) and not self.params_in_lutram,
        )
        # Submodules elaborate in the order they are added, and a board's multiplier hook
        # hands out DSP blocks in that order: the requant lanes' 32x32 products (four DSPs
        # each, huge and slow in LUTs) come before the PEs (int8: a small LUT multiplier).
        add_unit(m, "wb", wb, platform)
        # The PE accumulators are plan.acc_width bits (the program's overflow bound, checked
        # by MemoryPlan.check); their results sign-extend into the 32-bit write-back below.
        array = SystolicArray(replace(cfg, acc_width=plan.acc_width),
                              inject_row=R // 2 if stream else None)
        add_unit(m, "array", array, platform)
        m.d.comb += [seq.desc.eq(desc), wb.desc.eq(desc)]
        # direct mode per tile (a linear layer, or a conv's remainder tile): registered with
        # the token, then FEEDER_LATENCY - direct_latency more, so that it reaches the PEs
        # with the tile's first operands
        direct_q = Signal(name="direct_q", reset_less=True)
        m.d.sync += direct_q.eq(desc.mode | (0 if stream else seq.rem))
        m.d.comb += array.direct.eq(
            _delay(m, direct_q, FEEDER_LATENCY - array.direct_latency, "direct"))
        return seq, wb, array

    def _feeders(self, m: Module, platform, seq: Sequencer, array: SystolicArray,
                 desc: data.View, bufs: list[list[_Copy]]) -> list[RowFeeder]:
        """The row feeders, a chain from the sequencer's token, reading the buffers."""
        feeders = []
        for i in range(self.R):
            f = RowFeeder(index=i, rows=self.R, cols=self.C, addr_width=self.addr_width)
            add_unit(m, f"feed{i}", f, platform)
            if i == 0:
                m.d.comb += [f.tok_in.eq(seq.tok), f.pix_in.eq(seq.pix),
                             f.cfg_in.eq(feed_cfg(m, desc, seq.rem, self.R,
                                                      trait(platform, "path_registers")))]
            else:
                prev = feeders[-1]
                m.d.comb += f.follow(prev)
            m.d.comb += [
                f.rdata0.eq(_rport(bufs, 0, i).data),
                f.rdata1.eq(_rport(bufs, 1, i).data),
                array.row_in[i].valid.eq(f.row.valid),
                array.row_in[i].first.eq(f.row.first),
                array.row_in[i].last.eq(f.row.last),
                array.row_in[i].a.eq(f.row.a),
            ]
            feeders.append(f)
        return feeders

    def _weight_reads(self, m: Module, seq: Sequencer, array: SystolicArray,
                      convw: BankedMemory, directw: BankedMemory, stream: bool,
                      ram_from: int) -> None:
        """The weight memories' read addresses and their words into the array."""
        # Weights: the sequencer names a word in its cycle c; row 0's operand reaches the
        # array at c+FEEDER_LATENCY and its weight is due weight_lead cycles earlier. The
        # memories return a word READ_LATENCY (W) cycles after its address, so the address
        # waits the rest, wlat = FEEDER_LATENCY-W-lead cycles (an address, not the word: the
        # direct word is 8*R*C bits, 1,536 at 12x16), and conv lane j j more (the column
        # skew; the direct word is pre-skewed). The direct-weight memory registers its
        # address copies itself (read_addr_copies): one cycle of its latency is one of wlat.
        wlat = FEEDER_LATENCY - WEIGHT_READ_LATENCY - array.weight_lead
        dlat = wlat - (directw.read_latency - WEIGHT_READ_LATENCY)
        m.d.comb += [
            convw.r_addr.eq(_delay(m, seq.convw_addr, wlat, "cwa")),
            directw.r_addr.eq(_delay(m, seq.directw_addr, dlat, "dwa")),
        ]
        for j in range(self.C):
            lane = convw.r_data[8 * j : 8 * j + 8]
            m.d.comb += array.col_w[j].eq(_skew(m, lane, j, f"cw{j}", ram_from))
        m.d.comb += array.w_direct.as_value().eq(directw.r_data)
        if stream:
            self._part1_stream(m, seq, convw, array, wlat, ram_from)

    def _writeback_inputs(self, m: Module, array: SystolicArray, wb: WriteBack,
                          params: ParamMemory) -> None:
        """The array's column outputs and the parameter reads into the write-back."""
        for j in range(self.C):
            m.d.comb += [
                wb.col_out[j].valid.eq(array.col_out[j].valid),
                wb.col_out[j].data.eq(array.col_out[j].data),
            ]
        m.d.comb += [params.r_addr.eq(wb.param_addr), wb.param_data.eq(params.r_data)]

    def _transfers(self, m: Module, platform, hdr: data.View, desc: data.View,
                   feeders: list[RowFeeder]) -> tuple[ImageWriter, ImageSlot, LogitSender]:
        """The data and result transfers: the image writer and slot, the logit sender."""
        C, AW = self.C, self.addr_width
        img = ImageWriter(cols=C, addr_width=AW)
        slot = ImageSlot()  # the input region: loaded also while the previous image runs
        add_unit(m, "image_slot", slot, platform)
        # the result words come through row 0's stage-M registers (one flip-flop after the
        # block RAM, which the board moves into the block's output register)
        snd = LogitSender(cols=C, addr_width=AW, read_latency=RESULT_READ_LATENCY)
        add_unit(m, "image_in", img, platform)
        add_unit(m, "logits_out", snd, platform)
        # the selected word is registered once more before the sender (timing: row 0's
        # stage-M registers sit by the buffers, the sender by the host link; the select and
        # the sender's word shift behind that route were 6.97 ns on s16 seed 3)
        res_word = Signal(8 * C, name="res_word", reset_less=True)
        m.d.sync += res_word.eq(Mux(hdr.out_buf, feeders[0].word1, feeders[0].word0))
        # The image enters through a register slice here on a large device (trait
        # `image_slice`; else a wire, and a host link puts its own slice in front): its
        # `valid` has a copy for the writer's position steps, so their LUT (step = valid &
        # window) sits by the ~70 position registers by buffer 0, not by the slice (timing:
        # that LUT's net across the die to `final`'s enable, 8.84 ns, was the only path over
        # 8 ns on the 12x16 of a097850 seed 1)
        isl = RegSlice(IMAGE_LAYOUT, valid_copy=True, registered=trait(platform, "image_slice"))
        add_unit(m, "image_slice", isl, platform)
        wiring.connect(m, wiring.flipped(self.image), isl.i)
        image = isl.o
        m.d.comb += [
            img.i_stream.valid.eq(image.valid),
            img.step_valid.eq(isl.o_valid_copy),
            img.i_stream.payload.eq(image.payload),
            image.ready.eq(img.i_stream.ready | slot.discard),
            img.active.eq(slot.fill),
            img.clear.eq(slot.clear),
            slot.last_in.eq(image.valid & image.payload.last),
            slot.complete.eq(img.complete),
            slot.short.eq(img.short),
            slot.long.eq(img.long),
            snd.rdata.eq(res_word),
            snd.base.eq(desc.dst_base),  # the last layer's: its output is the logits
            self.logits.valid.eq(snd.o_stream.valid),
            self.logits.payload.eq(snd.o_stream.payload),
            snd.o_stream.ready.eq(self.logits.ready),
        ]
        return img, slot, snd

    def _perf_counters(self, m: Module, platform) -> Array:
        """The cycle counters and their registered two-stage read (perf_sel -> perf_data)."""
        # Cycle counters, 32 bits unless the platform asks for fewer (hwgen.rtl.traits); a
        # narrower one saturates (`_count`) rather than wrap.
        pw = trait(platform, "perf_counter_width")
        counters = Array(Signal(pw, name=f"perf{n}") for n in range(PERF_LAYER0 + self.n_layers))
        # Registered read in two stages (perf_data follows perf_sel PERF_READ_LATENCY cycles
        # later): a 4:1 mux per group of four counters by the select's low bits, then the
        # group by its high bits (timing: the one-cycle 8-bit-select mux was 8 ns routed).
        # A select past the last counter reads 0.
        n_cnt = len(counters)
        if not trait(platform, "perf_read_registers"):
            # a small device at a slow clock (trait `perf_read_registers`): one combinational
            # mux, valid from perf_sel's cycle on (a stopped counter reads the same)
            m.d.comb += self.perf_data.eq(Array(list(counters) + [Const(0, pw)])[
                             Mux(self.perf_sel < n_cnt, self.perf_sel, n_cnt)])
            return counters
        groups = [counters[g : g + 4] for g in range(0, n_cnt, 4)]
        grp_r = [Signal(pw, name=f"perf_grp{g}", reset_less=True) for g in range(len(groups))]
        hi_r = Signal(6, reset_less=True)  # the select's high bits, beside stage 1
        sel = self.perf_sel
        for r, grp in zip(grp_r, groups, strict=True):
            m.d.sync += r.eq(Array(grp + [Const(0, pw)] * (4 - len(grp)))[sel[:2]])
        m.d.sync += hi_r.eq(sel[2:])
        with m.Switch(hi_r):
            for g, r in enumerate(grp_r):
                with m.Case(g):
                    m.d.sync += self.perf_data.eq(r)
            with m.Default():
                m.d.sync += self.perf_data.eq(0)
        return counters

    def _buffer_writes(self, m: Module, b: int, copies: list[_Copy],
                       wb_we: list[Signal], wb_wa: Signal, wb_wd: Signal, img: ImageWriter,
                       rd_addr0: Signal, feeders: list[RowFeeder], tree: bool) -> None:
        """Buffer b's registered write (write-back, or image in buffer 0) and copy addresses."""
        C, AW = self.C, self.addr_width
        w_en_c = Signal(C, name=f"act{b}_wen_c") if b == 0 else None
        w_addr_c = Signal(AW, name=f"act{b}_waddr_c")
        w_data_c = Signal(8 * C, name=f"act{b}_wdata_c")
        # any lane written, from the two writers' enables (the image's lanes are one-hot,
        # never zero) rather than an OR over the lanes
        any_c = wb_we[b] | img.we if b == 0 else wb_we[b]
        # the write-back first: an image value is taken only in a cycle without its
        # write to buffer 0 (`_image_window`), so the two never meet here. The address and
        # data select by the write-back's enable alone (without either enable they are not
        # written): the image's `we` (its stream's valid and the window, a LUT of four
        # units' flip-flops) selects only the lane enables (timing: it also selected 138
        # address and data bits, 195 loads in all, and reached buffer 0's enables at
        # 8.95 ns routed on the 12x16 of ce17011 seed 2)
        if b == 0:
            m.d.comb += [
                w_addr_c.eq(Mux(wb_we[b], wb_wa, img.addr)),
                w_data_c.eq(Mux(wb_we[b], wb_wd, Cat(*([img.data] * C)))),
                w_en_c.eq(Mux(wb_we[b], (1 << C) - 1, img.lanes & img.we.replicate(C))),
            ]
        else:  # every lane or none: the lane enables are the copies' `w_any` (below)
            m.d.comb += [w_addr_c.eq(wb_wa), w_data_c.eq(wb_wd)]
        w_en, w_any, w_addr, w_data = self._write_copies(
            m, f"act{b}", len(copies), tree, w_en_c, any_c, w_addr_c, w_data_c)
        for k, (ra, rb, wp) in enumerate(copies):
            a_addr = Signal(AW, name=f"act{b}_{k}_addr_a")
            row_a = rd_addr0 if k == 0 else feeders[2 * k].raddr
            m.d.comb += [
                a_addr.eq(Mux(w_any[k], w_addr[k], row_a)),
                ra.addr.eq(a_addr),
                wp.addr.eq(a_addr),
                wp.data.eq(w_data[k]),
                wp.en.eq(w_en[k]),
            ]
            if rb is not None:
                m.d.comb += rb.addr.eq(feeders[2 * k + 1].raddr)

    @staticmethod
    def _write_copies(m: Module, name: str, n: int, tree: bool, en_c: Value | None,
                      any_c: Value, addr_c: Value, data_c: Value
                      ) -> tuple[list[Value], list[Signal], list[Signal], list[Signal]]:
        """A buffer's write registered for its n copies: per copy (lane enables, port A's
        address select, address, data). ``en_c`` None: every lane is written
        with ``any_c`` (the write-back's buffer), and each copy's lane enables are its own
        `w_any` flip-flop (the same cycle; timing: a shared lane-enable register, which yosys
        merges with the equal `wany` one, reached all 96 lane-enable flip-flops of the six
        copies, 7.70 ns on the 12x16 of 92cb18e seed 1).

        w_any and the address have one flip-flop per copy (UNSHARED; timing: one shared
        fanned out to every copy's address mux across the die: the 12x8's worst path, 61
        endpoints, 130.67 MHz; a shared address reached a far copy's pins, 8.75 ns of
        routing, the 12x16's at 102.43 MHz). With ``tree`` the write is first registered
        once by its sources and the per-copy registers take those flip-flops (D = Q), a cycle
        later: copies fed from one shared next-value cone put its LUTs and the long route in
        front of every copy (the 12x16's critical path, session 32: 89.0 / 73.1 MHz).
        With ``tree`` the data has a flip-flop per copy too (one register's bit went to six
        copies' block RAMs across the die: 6.71 ns of routing, the worst path of the 12x16
        of 5da058b seed 1 at 134.21 MHz, and seed 2's at 113.58 MHz); without, one register.

        The tree's per-copy flags are reset-less: they copy a flip-flop that has the reset,
        and with a reset of their own yosys builds their D as one LUT (source AND NOT reset)
        shared by every copy, so the copies hung off one LUT again (session 54: that LUT by
        copy 5, copy 1's lane enable 8.13 ns on the 12x16 of 823c12c). After a reset a copy
        holds its flip-flop's last value one cycle more: a write in flight lands as if the
        reset came a cycle later (buffers keep their contents through a reset anyway)."""
        AW, DW = len(addr_c), len(data_c)
        # the data registers: one per copy with the tree, else one for all
        data_regs = ([Signal(DW, name=f"{name}_{k}_wdata", reset_less=True, attrs=UNSHARED)
                      for k in range(n)] if tree
                     else [Signal(DW, name=f"{name}_wdata", reset_less=True)])
        w_data = data_regs if tree else data_regs * n
        w_any = [Signal(name=f"{name}_{k}_wany", attrs=UNSHARED, reset_less=tree)
                 for k in range(n)]
        w_addr = [Signal(AW, name=f"{name}_{k}_waddr", reset_less=True, attrs=UNSHARED)
                  for k in range(n)]
        if tree:
            any1 = Signal(name=f"{name}_wany")
            addr1 = Signal(AW, name=f"{name}_waddr", reset_less=True)
            data1 = Signal(DW, name=f"{name}_wdata1", reset_less=True)
            m.d.sync += [any1.eq(any_c), addr1.eq(addr_c), data1.eq(data_c)]
            any_c, addr_c, data_c = any1, addr1, data1
        m.d.sync += [*(wa.eq(any_c) for wa in w_any), *(wa.eq(addr_c) for wa in w_addr),
                     *(wd.eq(data_c) for wd in data_regs)]
        if en_c is None:
            return [wa.replicate(DW // 8) for wa in w_any], w_any, w_addr, w_data
        w_en = Signal(len(en_c), name=f"{name}_wen")
        m.d.sync += w_en.eq(en_c)
        if not tree:
            return [w_en] * n, w_any, w_addr, w_data
        en_k = [Signal(len(en_c), name=f"{name}_{k}_wen", attrs=UNSHARED, reset_less=True)
                for k in range(n)]
        m.d.sync += [e.eq(w_en) for e in en_k]
        return en_k, w_any, w_addr, w_data

    def _debug_read(self, m: Module, bufs: list[list[_Copy]]) -> None:
        """`dbg_data`: row 0's read of the buffer `dbg_buf` selects."""
        C = self.C
        dbg_sel = _delay(m, self.dbg_buf, DBG_READ_LATENCY, "dbg_sel")
        m.d.comb += self.dbg_data.eq(
            (_rport(bufs, 0, 0).data & ~(dbg_sel.replicate(8 * C)))
            | (_rport(bufs, 1, 0).data & dbg_sel.replicate(8 * C))
        )

    def _status(self, m: Module, loader: WeightLoader) -> tuple[Signal, Signal]:
        """The sticky error flags (`status`, `error`); returns this cycle's `flag` and `kept`."""
        # ---- status: sticky error flags, set by `flag`, cleared by an accepted start (all)
        # and by weights_restart (the weight flags)
        status = Signal(STATUS_LAYOUT)
        flag = Signal(STATUS_LAYOUT)  # this cycle's new faults
        m.d.comb += [
            self.status.eq(status),
            self.error.eq(status.as_value().any()),
            # (the host link reads these flags in the cycle after the beat that raised them:
            # not registered again; the loader's pulses are AND-ORs of flip-flops and the
            # stream's valid/last)
            flag.weights_short.eq(loader.err_short),
            flag.weights_long.eq(loader.err_long),
            flag.weights_header.eq(loader.err_header),
        ]
        kept = Signal(STATUS_LAYOUT)
        m.d.comb += kept.eq(status)
        with m.If(self.weights_restart):
            m.d.comb += [kept.weights_short.eq(0), kept.weights_long.eq(0),
                         kept.weights_header.eq(0)]  # fmt: skip
        m.d.sync += status.eq(kept.as_value() | flag.as_value())
        return flag, kept

    def _fsm_regs(self, m: Module, loader: WeightLoader) -> _Fsm:
        """The controller's one-hot states and its busy, stop and image-slot flip-flops."""
        # The controller's states, one-hot: one flip-flop per state, so every transition
        # condition and state test (`_fsm_states`) starts from a flip-flop, not from a decode of a
        # binary state register (timing: busy/win_r/rel_r's enables were five LUT levels).
        states = ("IDLE", "LOAD_IN", "FETCH", "RUN", "OUT", "DONE")
        st = {n: Signal(name=f"st_{n.lower()}", init=n == "IDLE") for n in states}
        # == ~(state IDLE or DONE), kept by the transitions (_busy); UNSHARED: its copy
        # (_Ctl.layer_busy) is kept apart, and an unmarked equal register would be merged
        # into it
        busy_r = Signal(attrs=UNSHARED)
        stop_r = Signal()  # the layer being run is the last (or the debug stop's)
        # The image slot's controller inputs as flip-flops (timing: no state decode in front
        # of the image writer's enables; see `_image_window`): win_r == (IDLE | LOAD_IN |
        # FETCH | DONE | RUN & desc.preload) & en_r & ~wb_we[0] (its next value written out in
        # _layer_end, from the transitions' flip-flops; it includes the slot's enable and the
        # write-back's buffer-0 write, so it is the image window itself) and rel_r == IDLE |
        # DONE | RUN & desc.preload (kept by the transitions), in every cycle.
        win_r = Signal(init=1, attrs=UNSHARED)
        win_w = Signal(init=1, attrs=UNSHARED)
        rel_r = Signal(init=1)
        # The slot's enable, en_r == busy_r | (weights_loaded, one cycle late when it rises
        # and at once when it falls) in every cycle: a flip-flop with one LUT of four
        # flip-flops in front of it. Its next value is busy_r | weights_loaded &
        # ~weights_restart (a restart drops weights_loaded at the next edge), or 1 for an
        # accepted start (from IDLE or DONE, i.e. ~busy_r, with weights_loaded; a restart in
        # its cycle notwithstanding: busy_r implies en_r). Timing: the loader's `loaded_next`
        # (its final-beat decision, five LUT levels in front of this enable on the 8x8) is no
        # longer read; the slot opens one cycle later after a model load, long before any
        # image can come (and a start needs weights_loaded, which the window then has).
        en_r = Signal()
        en_next = Signal()
        m.d.comb += en_next.eq(busy_r | (loader.loaded & (~loader.restart | self.start)))
        m.d.sync += en_r.eq(en_next)
        # FETCH's copy for the program address (`_program_fetch`, beside `_Ctl.addr_idle`)
        twins = {"FETCH": Signal(name="st_fetch_addr", attrs=UNSHARED)}
        return _Fsm(st=st, busy_r=busy_r, stop_r=stop_r, win_r=win_r, win_w=win_w,
                     rel_r=rel_r, en_r=en_r, en_next=en_next, twins=twins)

    def _try_start(self, m: Module, fsm: _Fsm, cur: str, begin: list, kept: Signal,
                   flag: Signal) -> None:
        """A start in state ``cur`` (IDLE or DONE): accepted with weights loaded, else flagged."""
        with m.If(self.start & self.weights_loaded):
            m.d.sync += begin
            m.d.comb += kept.eq(0)
            m.d.sync += fsm.goto(cur, "LOAD_IN")
            m.d.sync += fsm.slot_ctl(1, 0)
        with m.Elif(self.start):
            m.d.comb += flag.start_unloaded.eq(1)

    def _fsm_states(self, m: Module, ctl: _Ctl, fsm: _Fsm, desc: data.View, counters: Array,
                    n_last: Signal, slot: ImageSlot, snd: LogitSender, begin: list,
                    kept: Signal, flag: Signal) -> None:
        """The controller's state blocks (one-hot: at most one is active)."""
        st = fsm.st
        with m.If(st["IDLE"]):
            self._try_start(m, fsm, "IDLE", begin, kept, flag)
        with m.If(st["LOAD_IN"]):
            _load_in(m, fsm, counters, slot, flag)
        with m.If(st["FETCH"]):
            self._fetch(m, ctl, fsm, desc, counters, n_last)
        with m.If(st["RUN"]):
            self._run(m, ctl, fsm, desc, counters)
        with m.If(st["OUT"]):  # the result transfer (LogitSender)
            m.d.sync += [_count(counters[PERF_TOTAL]), _count(counters[PERF_RESULTS_OUT])]
            with m.If(snd.done):
                m.d.sync += fsm.goto("OUT", "DONE")
                m.d.sync += fsm.idle_next()
        with m.If(st["DONE"]):
            m.d.comb += self.done.eq(1)
            self._try_start(m, fsm, "DONE", begin, kept, flag)

    def _fetch(self, m: Module, ctl: _Ctl, fsm: _Fsm, desc: data.View, counters: Array,
               n_last: Signal) -> None:
        """State FETCH: the layer's descriptor beats into `desc`, then RUN."""
        # fetch_cycles() cycles: beat i is read in cycle i (address `prog_addr`, which
        # runs on through the layers) and written to its slice of `desc` in cycle
        # i+1 (i+2 with the hop, `_program_fetch`). The final cycle (DESC_BEATS + 1 + hop)
        # has the whole descriptor in `desc` and starts the layer: the units' per-layer
        # registers (constants derived from `desc`, rewritten every cycle) are then valid
        # in their start cycle, so no start branch computes from the descriptor (timing;
        # +1 cycle per layer).
        fetch_i, fetch_more, fetch_end = ctl.fetch_i, ctl.fetch_more, ctl.fetch_end
        layer = ctl.layer
        m.d.sync += [_count(counters[PERF_TOTAL]), fetch_i.eq(fetch_i + 1),
                     fetch_more.eq(fetch_i < DESC_BEATS - 1),
                     fetch_end.eq(fetch_i == DESC_BEATS + ctl.hop)]  # fmt: skip
        with m.If(fetch_end):
            m.d.sync += [ctl.settle.eq(0), fetch_i.eq(0), fetch_more.eq(1)]
            # whether the run stops after this layer, registered for RUN's end test
            m.d.sync += fsm.stop_r.eq((layer == n_last)
                                      | (self.dbg_stop & (layer == self.dbg_layers)))
            m.d.sync += fsm.slot_ctl(desc.preload, desc.preload)
            m.d.sync += fsm.goto("FETCH", "RUN")

    def _run(self, m: Module, ctl: _Ctl, fsm: _Fsm, desc: data.View, counters: Array) -> None:
        """State RUN: the layer runs (counted per layer), then FETCH, OUT or DONE."""
        settle, layer, layer_oh = ctl.settle, ctl.layer, ctl.layer_oh
        m.d.sync += [_count(counters[PERF_TOTAL]), *fsm.slot_ctl(desc.preload, desc.preload)]
        for n in range(self.n_layers):  # one incrementer per counter, no shared mux
            with m.If(layer_oh[n]):
                m.d.sync += _count(counters[PERF_LAYER0 + n])
        with m.If(~settle[2]):
            m.d.sync += settle.eq(Cat(1, settle[:2]))
        # (layer_done includes settle[2]: RUN's first cycles see the previous layer)
        with m.If(ctl.layer_done):
            with m.If(fsm.stop_r):
                with m.If(self.dbg_stop):
                    m.d.sync += fsm.goto("RUN", "DONE")
                    m.d.sync += fsm.idle_next()
                with m.Else():
                    m.d.sync += [ctl.snd_start.eq(1), *fsm.slot_ctl(0, 0)]
                    m.d.sync += fsm.goto("RUN", "OUT")
            with m.Else():
                m.d.sync += [layer.eq(layer + 1), layer_oh.eq(layer_oh << 1),
                             *fsm.slot_ctl(1, 0)]  # fmt: skip
                m.d.sync += fsm.goto("RUN", "FETCH")

    def _layer_end(self, m: Module, ctl: _Ctl, fsm: _Fsm, seq: Sequencer, wb: WriteBack,
                   snd: LogitSender, desc: data.View) -> None:
        """`layer_done`, the image window's next value (win_r) and the layer's start pulses."""
        st = fsm.st
        settle, fetch_end, layer_done = ctl.settle, ctl.fetch_end, ctl.layer_done
        in_fetch = st["FETCH"]
        # layer_done (`_controller_regs`): settle[2]'s next value is 0 at FETCH's end, settle[1]'s
        # in RUN's settle shift, else held
        settle2_next = (st["RUN"] & settle[1]) | (settle[2] & ~fetch_end)  # (fetch_end => FETCH)
        m.d.sync += ctl.units_done.eq(~seq.busy & wb.done)
        m.d.sync += layer_done.eq(ctl.units_done & settle2_next)
        # win_r's next value, from the transitions (`_fsm_states`; the state part is 0 only in OUT
        # and in a RUN of a layer without `preload`; FETCH and LOAD_IN are entered with it
        # high) and en_r's, as one AND-OR of flip-flops (timing: no state-machine priority
        # chain in front of it); and not while the write-back writes buffer 0 in the next
        # cycle (its write is registered once, `_writeback_regs`: wb.wr_en now is the
        # buffer-0 write mux's next cycle). Timing: the image window is then one flip-flop
        # (the writer's enables were a LUT of it and that write's twin, 8.65 ns, c1085d0).
        run_stays = st["RUN"] & ~layer_done
        wb_next0 = wb.wr_en & (desc.dst == 0)
        win_next = (fsm.en_next & ~wb_next0
                    & ~((in_fetch & fetch_end & ~desc.preload)
                        | (run_stays & ~desc.preload)
                        | (st["RUN"] & layer_done & fsm.stop_r & ~self.dbg_stop)
                        | (st["OUT"] & ~snd.done)))
        m.d.sync += [fsm.win_r.eq(win_next), fsm.win_w.eq(win_next)]
        # The layer's start pulses: FETCH's final cycle, i.e. fetch_end alone (it is set only
        # in FETCH and cleared in FETCH's final cycle, so it implies FETCH). Timing: the
        # start registers sit with their units, and a LUT of the controller's state in front
        # of them was 6.71 ns routed (d0a3a0e seed 3); now one net from a flip-flop. The
        # sequencer registers its K-loop restart from the same next value.
        m.d.sync += [ctl.seq_start.eq(fetch_end), *(w.eq(fetch_end) for w in ctl.wb_start)]
        m.d.comb += seq.start_next.eq(fetch_end)

    def _program_fetch(self, m: Module, ctl: _Ctl, fsm: _Fsm, desc_regs: dict[str, Signal],
                       rom_r: memory.ReadPort, outreg: bool) -> None:
        """The program memory's read address, the descriptor register's slice writes and the
        positions' rewind."""
        # The program is read through a register (rom_q, which the board moves into the block
        # RAM's output register), so the address runs one beat ahead in FETCH: beat i is
        # addressed in cycle i-1 (beat 0 all through the state before) and written to its
        # slice of `desc` in cycle i+1, as before. fetch_sel[i] (a one-hot shift register)
        # is that cycle's enable: fetch_i == i+1, with no decode in front of the slices.
        # With the hop (rom_h: a fabric register the placer can put among the descriptor's
        # fields, away from the block's slow clock-to-out) each beat lands a cycle later.
        in_fetch, addr_fetch = fsm.st["FETCH"], fsm.twins["FETCH"]
        fetch_sel, rom_q = ctl.fetch_sel, ctl.rom_q
        # fetch_sel is non-zero only inside FETCH, so the slice writes sit outside the FSM:
        # each slice's enable is its flip-flop alone, with no state decode in front of the
        # ~32 enables it drives (those registers spread over the die with their users)
        # A device whose block RAMs have no output register (the iCE40; trait
        # `bram_output_register`) reads beat i at `prog_addr` in cycle i instead, and its
        # word is in the read port's data in cycle i+1: the same slice writes, no rom_q.
        word = rom_q if outreg else rom_r.data
        if ctl.hop:
            m.d.sync += ctl.rom_h.eq(word)
            word = ctl.rom_h
        for i in range(DESC_BEATS):
            with m.If(fetch_sel[i]):
                m.d.sync += beat_writes(desc_regs, i, word)
        m.d.comb += rom_r.addr.eq(Mux(addr_fetch, ctl.prog_p1, ctl.prog_addr) if outreg
                                  else ctl.prog_addr)
        # The layer rewinds in every idle cycle (IDLE or DONE: ~busy_r), where nothing reads
        # it, so a run starts from layer 0. Timing: the accepted start (the host link's
        # `start` & weights_loaded) is not in its next value (the program address's and
        # layer's PFUMX behind it failed in routed 8x8 seeds).
        with m.If(~ctl.layer_busy):
            m.d.sync += [ctl.layer.eq(0), ctl.layer_oh.eq(1)]
        # The program address rewinds while `addr_idle`: a cycle after any state but FETCH
        # and a RUN with more layers to come, i.e. while nothing will read it before a
        # rewind has set it to 0 again (the ROM's read in the cycle before FETCH, FETCH's
        # steps). Its next value is one LUT of three flip-flops (timing: busy_r's copy,
        # whose next value was the transitions' AND-OR, was the 12x16's 8.07 ns, session 46).
        # One cycle late, it also holds in FETCH's first cycle after LOAD_IN, where the
        # address is already 0 and the step below takes priority over it.
        m.d.sync += ctl.addr_idle.eq(~in_fetch & ~(fsm.st["RUN"] & ~fsm.stop_r))
        with m.If(ctl.addr_idle):
            m.d.sync += [ctl.prog_addr.eq(0), ctl.prog_p1.eq(1)]
        with m.If(addr_fetch & ctl.fetch_more):  # FETCH's first DESC_BEATS cycles
            m.d.sync += [ctl.prog_addr.eq(ctl.prog_addr + 1), ctl.prog_p1.eq(ctl.prog_p1 + 1)]
        if outreg:
            m.d.sync += rom_q.eq(rom_r.data)
        m.d.sync += fetch_sel.eq(Cat(in_fetch & (ctl.fetch_i == ctl.hop), fetch_sel[:-1]))

    def _busy(self, m: Module, ctl: _Ctl, fsm: _Fsm, slot: ImageSlot, snd: LogitSender) -> None:
        """busy_r's next value and the `busy` output."""
        st, busy_r = fsm.st, fsm.busy_r
        # busy_r's next value, from the transitions (_fsm_states): an accepted start (IDLE or
        # DONE is ~busy_r) sets it, a transition into DONE clears it; one AND-OR of flip-flops
        # (timing: no state-machine priority chain in front of it)
        # (to_done: a kept wire, so ABC does not merge it with win_r's cone, which reads the
        # same flip-flops: that sharing made busy_r five LUT levels deep)
        to_done = Signal(attrs={"keep": 1})
        m.d.comb += to_done.eq((st["LOAD_IN"] & slot.full & (slot.bad_short | slot.bad_long))
                               | (st["RUN"] & ctl.layer_done & fsm.stop_r & self.dbg_stop)
                               | (st["OUT"] & snd.done))
        busy_next = (~busy_r & self.start & self.weights_loaded) | (busy_r & ~to_done)
        m.d.sync += [busy_r.eq(busy_next), ctl.layer_busy.eq(busy_next)]
        # busy_r is set and cleared with every transition into or out of IDLE/DONE, so it equals
        # ~(IDLE | DONE) in every cycle, from a flip-flop: it gates the weight stream's ready
        m.d.comb += self.busy.eq(busy_r)

    def _row0_read_select(self, m: Module, fsm: _Fsm, rd_next0: Signal,
                          snd: LogitSender) -> None:
        """Row 0's next read address: the debug port, the result transfer or feeder 0."""
        # Row 0's read address (copy 0, port A), registered: the debug port while idle
        # (IDLE/DONE), the result transfer while it reads (only in OUT), else feeder 0.
        # Selected by two flip-flop-driven signals, not by the controller's state decode
        # (timing); the debug and result reads take one cycle more for the register.
        with m.If(~fsm.busy_r):
            m.d.comb += rd_next0.eq(self.dbg_addr)
        with m.Elif(snd.reading):
            m.d.comb += rd_next0.eq(snd.raddr)

    def _start_refusals(self, m: Module, fsm: _Fsm, flag: Signal) -> None:
        """The flags of a start refused while busy."""
        # a start while busy is refused: before the result transfer, or with logits unread
        sending = fsm.st["OUT"]
        m.d.comb += [
            flag.start_busy.eq(self.start & self.busy & ~sending),
            flag.start_unread.eq(self.start & sending),
        ]
