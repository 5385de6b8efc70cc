"""Model transfer: a stream of beats fills the program and the weight memories.

The transfer (built by hwgen.emit.images.weight_beats) is one header word (HEADER_LAYOUT of
descriptor.py), then each region in order: the descriptor (program) memory, the conv weight
memory, the direct weight memory, the requant parameter memory. Every word is sent as
ceil(width/32) little-endian beats. Each beat is `BEAT_LAYOUT` = {data: 32 bits, last}: `last`
marks the final beat. The header gives each region's word count, so a design sized for the
largest model loads any smaller one. Without a header (`header=None`, regions given as (width,
depth)) every region is exactly its memory's depth: the fixed-length loader the formal and unit
checks exercise.

* A *beat region* (``beat_regions``) is stored as the beats themselves: its memory is 32 bits
  wide and each of its words takes ceil(width/32) consecutive addresses (the header still
  counts words). The program's descriptors are kept that way: a narrow block RAM instead of a
  memory, an assembly register and a read register as wide as a descriptor (iCE40 has no LUT
  RAM, so those were flip-flops).
* A beat taken is held in an input stage and acted on in the next cycle (timing: the
  stream's `valid` drives the stage only). Still a beat a cycle, except that no beat is taken
  in the cycle that acts on a header beat or a beat with `last` (either may stop the loader),
  so what is taken is exactly what the loader without a stage would take. Every "arrives"
  below is that acting cycle; the fault pulses come in it.
* `restart` rewinds to the header and drops `loaded` (and a staged beat). A design reset
  rewinds too, after acting on a staged beat (whose word is written, and which may set
  `loaded`: those are reset-less).
* `loaded` goes high in the cycle after the final expected beat arrives with `last` (so a
  write stage's delayed write, even the last region's, is made no later than that cycle);
  from the arrival on no beat is taken until `restart`. It is a reset-less register, as is
  the header: the memories keep their contents through a design reset, so a loaded model
  stays usable after one.
* The header is checked in the three cycles after its last beat arrives (three stall
  cycles: the field compares start from registers, each field's verdict is registered, then
  their AND, then the loader acts on it): a wrong magic,
  or a region count of 0 or larger than the memory's depth, pulses `err_header`; nothing
  is written and the beats that follow are discarded up to and including the next `last`.
* A wrong length is reported, never absorbed. `last` before the final expected beat pulses
  `err_short`; the final expected beat without `last` pulses `err_long` and the following
  beats are discarded up to and including the next `last`. After any fault `loaded` stays low
  and the loader is rewound, ready for a fresh transfer (no `restart` needed).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.rtl.attrs import UNSHARED
from hwgen.rtl.carry import carry_any
from hwgen.rtl.traits import trait

__all__ = ["ACT_LATENCY", "BEAT_LAYOUT", "HEADER_CHECK_CYCLES", "LOADED_LATENCY", "LoaderModel",
           "WeightLoader", "beats_per_word"]  # fmt: skip

BEAT_LAYOUT = data.StructLayout({"data": unsigned(32), "last": 1})
# acc slots per copy of the staged beat's data and per group of the beat registers' steps
# (with `copy_trees`). 4, not 8 (session 55): a copy's bit fed eight slots' flip-flops spread
# by the memories they fill (`b_data_5` -> an acc slot, 7.24 ns on the 12x16 of 5da058b)
SLOT_GROUP = 4
# with `copy_trees`, each acc slot's 32 bits in this many parts, each steered by its own copy of
# the one-hot beat (timing: one copy's bit enabled a slot half's 16 flip-flops, spread by the
# word registers they feed, 7.26 ns of pure route on the 12x16 of 5da058b seed 1)
BEAT_PARTS = 4
HEADER_CHECK_CYCLES = 4  # stall cycles after the header's last beat (checking, testing,
#                           weighing, judging)
# cycles from taking a beat to acting on it (the input stage): a fault pulses ACT_LATENCY
# cycles after the clock edge that took the beat
ACT_LATENCY = 1
# `loaded` rises LOADED_LATENCY cycles after the edge that took the final beat: one cycle
# after the beat is acted on, the cycle the last region's write stage writes in
LOADED_LATENCY = ACT_LATENCY + 1


def _copy_name(name: str, k: int) -> str:
    """Copy k of a register: the first keeps the name, the others take a suffix."""
    return f"{name}_{k}" if k else name


def beats_per_word(width: int) -> int:
    return -(-width // 32)


@dataclass(frozen=True)
class _Regs:
    """The transfer's registers (built by `WeightLoader._transfer_regs`)."""

    st: Signal  # the state, one-hot: bit 0 the header, bit n+1 region n
    addr: Signal  # the word's address in its region
    acc: Signal  # the word's beats
    beat_oh: Signal  # the word's beat, one-hot
    beat_w: Signal  # its copy by `wend` (or beat_oh itself; `wend` reads only this one)
    beat_parts: list[Signal]  # the copies by each part of every slot (the first: beat_oh)
    commit: list[list[Signal]]  # each memory's write enable, its copies
    commit_addr: list[list[Signal]]  # each memory's write address, its copies
    done: Signal  # the final beat was acted on (`loaded` follows it a cycle later)
    done_o: Signal  # its copy for the stream's `ready` (or `done` itself)
    hdr: data.View  # the loaded model's header
    discard: Signal  # dropping the tail of a refused transfer up to its `last`

    @property
    def in_last(self) -> Value:
        """In the last region."""
        return self.st[-1]


@dataclass(frozen=True)
class _Check:
    """The header check's flags (`WeightLoader._control_regs`)."""

    checking: Signal
    testing: Signal
    weighing: Signal
    judging: Signal
    stall: Signal
    hdr_last: Signal  # the header's last beat carried `last`
    go: Signal  # the judging cycle of a good header that does not end the transfer


@dataclass(frozen=True)
class _Pos:
    """The region position besides addr (`WeightLoader._position_regs`)."""

    left2: Signal  # (words left in the region after this one) - 2
    len_m3: list[Signal]  # each region's length - 3
    lz: list[Signal]  # each region's length == 1
    q_len: list[Signal]  # the following regions' len_m3, a queue
    q_lz: list[Signal]  # the following regions' lz, a queue
    wend: Signal  # this beat completes a word
    lzero: Signal  # no word left in the region after this one


@dataclass(frozen=True)
class _Stage:
    """The input stage: the beat taken in the last cycle (`WeightLoader._input_stage`)."""

    bv: Signal  # a beat is staged
    bv_pos: Signal  # bv's copy for the region position
    bv_com: Signal  # bv's copy for the write enables
    b_data: list[Signal]  # the beat's data, a copy per group of SLOT_GROUP acc slots
    b_last: Signal
    blocked: Signal  # `ready`'s flip-flop (see `WeightLoader._check_steps`)
    blocked_o: Signal  # its copy for the stream's `ready` (or `blocked` itself)
    accept: Value  # a beat is taken in this cycle

    @property
    def take(self) -> Signal:
        """The beat acted on: the staged one (never while loaded or stalled, see `ready`)."""
        # In a restart cycle it is dropped: the restart's rewind comes last and wins, the
        # write enables and fault pulses are gated with ~restart, so the registers' enables
        # need no restart term (timing)
        return self.bv

    @property
    def is_last(self) -> Signal:
        """The staged beat's `last`."""
        return self.b_last

    def data_for(self, slot: int) -> Signal:
        """The staged beat's data for acc's slot `slot`: its group's copy."""
        return self.b_data[min(slot // SLOT_GROUP, len(self.b_data) - 1)]


@dataclass(frozen=True)
class _Verdict:
    """The header check's tests and registered verdicts (`WeightLoader._header_regs`)."""

    new_hdr: data.View  # the header in acc
    oks: list[Value]  # each field's test (of the fields registered in `checking`: fields_r)
    fields_r: bool  # the fields registered in `checking` (magic_r, words_r), tested after
    ok_f: Signal  # the tests, registered (in `checking` from acc, or `testing`: fields_r)
    magic_r: Signal | None  # the magic, registered in `checking` (with fields_r)
    ok_r: Signal  # their AND, registered
    words_m3: list[Signal]  # each region's word count - 3
    words_one: list[Signal]  # each region's word count == 1
    words: list[Value]  # each region's word count from the header in acc
    words_r: list[Signal]  # the counts, registered
    words_p: list[tuple[Signal, Signal]]  # with fields_r: each count - 3 in two parts (testing)


@dataclass(frozen=True)
class _Beat:
    """The staged beat's flags (`WeightLoader._beat_flags`)."""

    live: Signal  # ~stall & ~discard
    beat: Value  # a beat acted on outside a discard
    at_final: Signal  # the final expected beat of the transfer
    at_hdr_end: Signal  # the header's last beat


class WeightLoader(wiring.Component):
    def __init__(
        self,
        *,
        regions: list[tuple[str, int, int]] | list[tuple[int, int]],
        header: data.StructLayout | None = None,
        magic: int = 0,
        beat_regions: tuple[int, ...] = (),
        addr_copies: dict[int, int] | None = None,
        write_stage: tuple[int, ...] = (),
        narrow_stage: tuple[int, ...] = (),
    ) -> None:
        """header: layout of the first word (with a `magic` field); regions: (header field
        giving the word count, word width in bits, memory depth) of each memory, in load order;
        without a header, (word width, depth): every region is as long as its memory.
        beat_regions: indices of regions stored one 32-bit beat per address (see above).
        addr_copies: region index -> copies of its write address and write enable registers
        (UNSHARED, equal values): its `addr{n}` and `we{n}` ports are then arrays, one copy
        per group of block RAMs.
        write_stage: regions whose writes pass one more register stage (`_write_stage`): they
        land a cycle later, from a word register of their own (still no later than the cycle
        `loaded` rises in).
        narrow_stage: those of them whose word register holds only the word's first beat (the
        only part of acc a later beat can change before the delayed write reads it)."""
        self.addr_copies = [(addr_copies or {}).get(n, 1) for n in range(len(regions))]
        for name, given in (("write_stage", write_stage), ("narrow_stage", narrow_stage)):
            if any(not 0 <= n < len(regions) for n in given):
                raise ValueError(f"{name} {given}: regions 0..{len(regions) - 1} only")
        if not set(narrow_stage) <= set(write_stage):
            raise ValueError(f"narrow_stage {narrow_stage}: not all in write_stage {write_stage}")
        self.write_stage = tuple(sorted(set(write_stage)))
        self.narrow_stage = tuple(sorted(set(narrow_stage)))
        self.header_layout = header
        self.magic = magic
        if header is None:
            regions = [(None, w, d) for w, d in regions]
        self.regions = regions
        # beats per stored word of each region, and each memory's (width, depth)
        self.split = [beats_per_word(w) if n in beat_regions else 1
                      for n, (_, w, _) in enumerate(regions)]  # fmt: skip
        self.mem_shape = [(32, d * k) if n in beat_regions else (w, d)
                          for n, ((_, w, d), k) in enumerate(zip(regions, self.split,
                                                                 strict=True))]  # fmt: skip
        ports: dict = {
            "i_stream": In(stream.Signature(BEAT_LAYOUT)),
            "restart": In(1),
            "loaded": Out(1),
            "loaded_next": Out(1),  # the value `loaded` takes at the next clock edge
            "err_short": Out(1),
            "err_long": Out(1),
            "err_header": Out(1),
        }
        if header is not None:
            ports["header"] = Out(header)
        for n, (w, dpt) in enumerate(self.mem_shape):
            k = self.addr_copies[n]
            ports[f"we{n}"] = Out(1) if k == 1 else Out(1).array(k)
            ports[f"addr{n}"] = Out(range(max(dpt, 2))) if k == 1 else \
                Out(range(max(dpt, 2))).array(k)
            ports[f"data{n}"] = Out(unsigned(w))
        super().__init__(ports)

    @property
    def _has_hdr(self) -> bool:
        """Whether the transfer starts with a header word."""
        return self.header_layout is not None

    @property
    def _first(self) -> int:
        """The state a transfer starts in (0: the header, n + 1: region n)."""
        return 0 if self._has_hdr else 1

    @property
    def _bpw(self) -> list[int]:
        """Beats per word of each state: the header's, then each region's."""
        bpw = [beats_per_word(self.header_layout.size) if self._has_hdr else 1]
        bpw += [beats_per_word(w) for w, _ in self.mem_shape]
        return bpw

    def elaborate(self, platform) -> Module:
        """The loader, piece by piece (the order of the pieces fixes the netlist)."""
        m = Module()
        copies = trait(platform, "copy_trees")
        groups = -(-max(self._bpw) // SLOT_GROUP) if copies else 1  # of acc's slots
        r = self._transfer_regs(copies)
        chk, pos = self._control_regs(m, r.addr)
        rewind = self._rewind(r, chk, pos)
        stg = self._input_stage(m, groups, r, copies)
        self._outputs(m, r, stg)
        hv = self._header_regs(m, r, trait(platform, "carry_chains"),
                               trait(platform, "path_registers"))
        bt = self._beat_flags(m, r, chk, pos, stg, hv)
        self._commits(m, r, pos, stg, bt)
        self._loaded(m, r, pos, stg, bt)
        m.d.sync += chk.go.eq(0)
        self._assemble(m, r, stg)

        # `take` implies ~restart and ~stall (see `ready`), so a beat never meets the header
        # check's states, and the restart's rewind comes last (it wins): no state's branch
        # sits behind the others' conditions (timing). The check's registers (ok_f, words_m3,
        # hdr, ...) may then be written in a restart cycle; nothing reads them before the next
        # header's check rewrites them (`hdr` is the loaded model's only while `loaded`).
        self._beat_steps(m, r, chk, pos, stg, groups)
        self._position_steps(m, r, pos, stg)
        with m.If(stg.take & r.discard & stg.is_last):  # (a discard's end)
            m.d.sync += r.discard.eq(0)
        with m.If(bt.beat):
            self._on_beat(m, r, chk, pos, stg, bt, rewind)
        self._check_steps(m, r, chk, stg, hv, bt)
        self._judge(m, r, chk, hv, rewind)
        self._faults(m, chk, stg, hv, bt)
        self._on_go(m, r, chk, pos, hv)
        with m.If(self.restart):
            # (the write enables are gated with ~restart in `_commits`: nothing is written)
            m.d.sync += [*rewind, r.discard.eq(0)]
        return m

    def _transfer_regs(self, copies: bool) -> _Regs:
        """The state, the word's assembly and write registers, `loaded`, `hdr`, `discard`."""
        nreg = len(self.regions)
        has_hdr = self._has_hdr
        bpw = self._bpw
        # the state, one-hot (timing: no decode in front of the per-state enables): bit 0 the
        # header, bit n+1 region n
        st = Signal(nreg + 1, init=1 << self._first)
        # (with a header `go` loads it before a region reads it: reset-less, so its reset pin
        # is `go` alone, not a design-reset-or-go LUT; timing)
        addr = Signal(range(max(d for _, d in self.mem_shape) + 1), reset_less=has_hdr)
        acc = Signal(max(bpw) * 32, reset_less=True)  # every word's beats fill it first
        # the word's beat, one-hot (acc's slot enables are a flip-flop ANDed with the beat's
        # valid; the word end is one of its bits)
        # with `copy_trees`, a copy for `wend`'s select (timing: beat_oh's bits sit by acc's
        # slots across the die, 12x16 seed 2: beat_oh[46] -> wend, 6.58 ns of 7.83 routed),
        # up to the last bit `wend` reads (bpw - 2). Both UNSHARED: yosys merges a marked
        # register into an unmarked one of the same next value (tests/test_nomerge.py; the
        # 12x16 of 4e43b88 had one register again, the same path at 95.41 MHz)
        two = copies and max(bpw) >= 2
        # (with the copies, beat_oh and its part copies are reset-less: a design reset rewinds
        # them a cycle late, through their groups' rewind registers, `_beat_steps`)
        beat_oh = Signal(max(bpw), init=1, attrs=UNSHARED if two else {}, reset_less=two)
        beat_w = Signal(max(bpw) - 1, init=1, name="beat_w", attrs=UNSHARED) if two else beat_oh
        # and a copy for each further part of every slot (BEAT_PARTS; timing: one bit enabled
        # a slot's 32 flip-flops, spread by the write stage's word across the die, 2.1 to 8.27
        # ns on one net of the 12x16 of d4883f5 seed 2)
        beat_parts = [beat_oh] + [
            Signal(max(bpw), init=1, name=f"beat_p{j}", attrs=UNSHARED, reset_less=True)
            for j in range(1, BEAT_PARTS if two else 1)]
        # one write enable flip-flop per memory (timing: no region decode in front of the
        # block RAMs' write enables); the address register beside them
        # (reset-less: a word whose last beat is acted on in a design reset's cycle is still
        # written, as `loaded`, reset-less too, may rise in that cycle)
        # (and `addr_copies` copies of a memory's, all UNSHARED: the 12x16's one direct-weight
        # enable reached 43 DP16KD across the die, 9.20 ns routed on 4e43b88 seed 2)
        # (with a write stage the copies are the stage's: one register here)
        k1 = [1 if n in self.write_stage else k for n, k in enumerate(self.addr_copies)]
        commit = [[Signal(name=_copy_name(f"commit{n}", k), reset_less=True,
                          attrs=UNSHARED if k1[n] > 1 else {})
                   for k in range(k1[n])]
                  for n in range(nreg)]  # fmt: skip
        # one copy of the write address register per memory (timing: each drives its own
        # block RAMs' address pins, not every memory's; kept apart on the board, UNSHARED)
        # (and `addr_copies` copies of a memory's: one per group of its block RAMs)
        commit_addr = [[Signal(range(max(d, 2)), name=_copy_name(f"commit_addr{n}", k),
                               attrs=UNSHARED, reset_less=True)
                        for k in range(k1[n])]
                       for n, (_, d) in enumerate(self.mem_shape)]  # fmt: skip
        done = Signal(reset_less=True, attrs=UNSHARED if copies else {})  # survives a design
        # reset, like the memories; with `copy_trees` a copy for the stream's `ready` (see
        # `_outputs`)
        done_o = (Signal(reset_less=True, name="done_o", attrs=UNSHARED) if copies
                  else done)
        layout = self.header_layout or data.StructLayout({"magic": 1})
        hdr = Signal(layout, reset_less=True)  # the loaded model's, likewise
        discard = Signal()  # dropping the tail of a refused transfer up to its `last`
        return _Regs(st, addr, acc, beat_oh, beat_w, beat_parts, commit, commit_addr, done, done_o,
                     hdr, discard)

    def _control_regs(self, m: Module, addr: Signal) -> tuple[_Check, _Pos]:
        """The header check's flags, the region position (`_position_regs`) and `go`."""
        # The header is checked in the four cycles after its last beat (`checking`,
        # `testing`, `weighing`, `judging`, no beat taken): the compares start from
        # registers, not from the payload, and each field's verdict is registered before
        # their AND.
        checking = Signal()
        testing = Signal()  # the cycle after `checking` (the tests of registered fields)
        weighing = Signal()  # the cycle after `testing`: the fields' verdicts are ANDed
        judging = Signal()  # the cycle after `weighing`: the verdict, registered, is applied
        stall = Signal()  # checking | testing | weighing | judging, one flip-flop for `ready`
        hdr_last = Signal()  # the header's last beat carried `last`
        pos = self._position_regs(m, addr)
        go = Signal()  # the judging cycle of a good header that does not end the transfer
        return _Check(checking, testing, weighing, judging, stall, hdr_last, go), pos

    def _position_regs(self, m: Module, addr: Signal) -> _Pos:
        """The words left in the region, the following regions' start values, wend, lzero."""
        nreg = len(self.regions)
        has_hdr = self._has_hdr
        # left2 = (words left in the region after this one) - 2, counted down (timing): the
        # next `lzero` (left == 1 before a step) is its sign bit, no compare. Each region
        # starts at len_m3 = length - 3 (left = length - 1), lzero = lz (length == 1); both
        # are registers (set from the header) or constants.
        aw = len(addr) + 2
        left2 = Signal(signed(aw), init=(0 if has_hdr else self.regions[0][2] - 1) - 2)
        len_m3 = [Signal(signed(aw), name=f"len_m3_{n}", reset_less=has_hdr)
                  for n in range(nreg)]  # fmt: skip
        lz = [Signal(name=f"lz_{n}", reset_less=has_hdr) for n in range(nreg)]
        if not has_hdr:
            for n, (_, d) in enumerate(self.mem_shape):
                m.d.comb += [len_m3[n].eq(d - 3), lz[n].eq(d == 1)]
        # The following regions' start values, in order: a queue that shifts at each region
        # end, so left2/lzero load from one register, not through a mux over the regions
        # selected by `state` (timing: that mux was in front of the loader's deepest paths).
        q_len = [Signal(signed(aw), name=f"q_len{i}", reset_less=has_hdr,
                        init=0 if has_hdr else self.mem_shape[i + 1][1] - 3)
                 for i in range(nreg - 1)]  # fmt: skip
        q_lz = [Signal(name=f"q_lz{i}", reset_less=has_hdr,
                       init=0 if has_hdr else self.mem_shape[i + 1][1] == 1)
                for i in range(nreg - 1)]  # fmt: skip
        # wend: this beat completes a word (beat == bpw[state] - 1); lzero: left == 0. Both
        # kept as flags, set with beat / state / left: the per-beat decisions start from them.
        wend = Signal(init=self._bpw[self._first] == 1)
        lzero = Signal(init=has_hdr or self.regions[0][2] == 1)
        return _Pos(left2, len_m3, lz, q_len, q_lz, wend, lzero)

    def _rewind(self, r: _Regs, chk: _Check, pos: _Pos) -> list:
        """The statements that rewind the loader to a transfer's start."""
        first = self._first
        # (checking and stall have equations of their own, in `_check_steps`)
        rewind = [r.st.eq(1 << first), chk.testing.eq(0), chk.weighing.eq(0),
                  chk.judging.eq(0), chk.go.eq(0),
                  pos.wend.eq(self._bpw[first] == 1)]  # fmt: skip
        if not self._has_hdr:
            # With a header the region position (addr, left2, lzero, the queue) is not read
            # in the header state (nor in its check) and is set by `go` (a good header's
            # verdict): a rewind leaves it alone (timing: no fault / restart term in those
            # registers' enables).
            rewind += [r.addr.eq(0), pos.left2.eq(pos.len_m3[0]), pos.lzero.eq(pos.lz[0]),
                       *(q.eq(v) for q, v in zip(pos.q_len, pos.len_m3[1:], strict=True)),
                       *(q.eq(v) for q, v in zip(pos.q_lz, pos.lz[1:], strict=True))]  # fmt: skip
        return rewind

    def _input_stage(self, m: Module, n_data: int, r: _Regs, copies: bool) -> _Stage:
        """The input stage: the beat taken, held in flip-flops for the next cycle (its data
        in ``n_data`` copies)."""
        # The input stage (timing): a beat taken is held in flip-flops and acted on in the
        # next cycle, so every decision of the loader starts from the stage's flip-flops, never
        # from the stream's `valid` (which came from a register slice across the die through
        # the controller's busy gate, one LUT shared by ~100 enables: 7.46 ns routed on the
        # 8x8). `valid` now reaches only the stage. A staged beat is always acted on in the next
        # cycle, so the stage is one entry and still a beat a cycle: the cycle that acts on a
        # beat that may stop the loader takes none (a beat with `last` ends the
        # transfer or a discard, a header beat may start the header check), so `ready` stays
        # exact. `bv` (a beat is staged) has copies of its own for the position and the
        # write enables (UNSHARED: each drives its group's enables, not all of them; `bv`
        # too, else yosys merges it into a marked copy, tests/test_nomerge.py).
        bv = Signal(attrs=UNSHARED)
        bv_pos = Signal(attrs=UNSHARED)
        bv_com = Signal(attrs=UNSHARED)
        # the data in copies, one per group of acc's slots, all UNSHARED (timing: one register
        # fed every slot of a 48-beat word across the die, 9.41 ns routed on the 12x16 of
        # 4e43b88 seed 2; a copy can sit between the stream's slice and its slots)
        b_data = [Signal(32, name=_copy_name("b_data", k), reset_less=True,
                         attrs=UNSHARED if n_data > 1 else {})
                  for k in range(n_data)]  # fmt: skip
        b_last = Signal(reset_less=True)
        # == stall | (a staged beat that may stop the loader), one flip-flop for `ready`
        blocked = Signal(attrs=UNSHARED if copies else {})
        blocked_o = Signal(name="blocked_o", attrs=UNSHARED) if copies else blocked
        # `ready` as the loader reads it, from `done` and `blocked`; the stream's own from
        # their copies (`_outputs`)
        accept = self.i_stream.valid & ~r.done & ~self.restart & ~blocked
        m.d.sync += [bv.eq(accept), bv_pos.eq(accept), bv_com.eq(accept),
                     *(d.eq(self.i_stream.payload.data) for d in b_data),
                     b_last.eq(self.i_stream.payload.last)]  # fmt: skip
        return _Stage(bv, bv_pos, bv_com, b_data, b_last, blocked, blocked_o, accept)

    def _outputs(self, m: Module, r: _Regs, stg: _Stage) -> None:
        """The stream's `ready` and the memories' write ports."""
        # no beat is taken in a restart cycle (it would be acted on in the next cycle, after
        # the rewind, as the new transfer's, while beat_oh rewinds a cycle late:
        # `_beat_steps`), while the header is checked, nor in a cycle that acts on a beat that
        # may stop. From copies of `done` and `blocked` that drive nothing else (timing: the
        # placer keeps the originals by the loader's logic, and `restart` came from the host
        # across the die to their LUT, then back to the core-side weight slice's enables,
        # 8.27-9.24 ns routed on the 12x16 seeds 3, 5 and 6 of 05d735f; the copies can sit
        # by the slice)
        m.d.comb += self.i_stream.ready.eq(~r.done_o & ~self.restart & ~stg.blocked_o)
        for n, (w, _) in enumerate(self.mem_shape):
            we, addr, word = r.commit[n], r.commit_addr[n], r.acc[:w]
            if n in self.write_stage:
                we, addr, word = self._write_stage(m, n, we[0], addr[0], word)
            m.d.comb += [
                *self._copy_port(f"we{n}", we),
                *self._copy_port(f"addr{n}", addr),
                getattr(self, f"data{n}").eq(word),
            ]

    def _write_stage(self, m: Module, n: int, we: Signal, addr: Signal, word: Value
                     ) -> tuple[list[Signal], list[Signal], Value]:
        """Region n's write one cycle later: its enable and address copies (UNSHARED, one
        per group of block RAMs) from one register each, its word from a register of its own.

        Why (timing): the enable's copies sat behind one LUT of the staged beat's flags, and
        acc's slots by the block RAMs they fed, so a one-hot bit, the staged data and that
        LUT crossed the die to them (the 12x16's direct weights, 43 parts: the LUT to their
        enables 8.94 ns, beat_oh to the slots' enables 8.04 ns routed on ce17011 seed 2). Now
        each crossing starts at a flip-flop and ends at one (D = Q), and acc's slots need
        not sit by this region's block RAMs. Exact: the word register takes acc in every
        cycle, so in the cycle after the commit it holds the word (the next word's first
        beat overwrites slot 0 only at the commit cycle's edge); the copies are reset-less
        like the commit (a word acted on in a design reset's cycle is still written). The
        delayed write is made in the cycle after the word's last beat was acted on, at the
        latest the cycle `loaded` rises in (LOADED_LATENCY), as the other regions' writes.
        A narrow stage (`narrow_stage`) registers slot 0 only and takes the rest from acc:
        slot k > 0 takes a beat no earlier than two edges after the commit's (beat_oh steps
        one cycle after a beat is acted on), so it still holds the word when it is written
        (timing: the parameter word, 72 bits a lane, needs no 1,152-bit register for the
        enable's stage)."""
        k = self.addr_copies[n]
        attrs = UNSHARED if k > 1 else {}
        we_d = [Signal(name=_copy_name(f"we{n}_d", i), reset_less=True, attrs=attrs)
                for i in range(k)]
        addr_d = [Signal.like(addr, name=_copy_name(f"addr{n}_d", i), attrs=UNSHARED)
                  for i in range(k)]
        kept = min(32, len(word)) if n in self.narrow_stage else len(word)
        head_d = Signal(kept, name=f"data{n}_d", reset_less=True)
        m.d.sync += [*(c.eq(we) for c in we_d), *(c.eq(addr) for c in addr_d),
                     head_d.eq(word[:kept])]  # fmt: skip
        return we_d, addr_d, Cat(head_d, word[kept:])

    def _copy_port(self, name: str, copies: list[Signal]) -> list:
        """A memory's write enable or address port from its register copies."""
        port = getattr(self, name)
        if len(copies) == 1:
            return [port.eq(copies[0])]
        return [port[k].eq(c) for k, c in enumerate(copies)]

    def _header_regs(self, m: Module, r: _Regs, chain: bool, fields_r: bool) -> _Verdict:
        """The header check's tests and its registered verdicts."""
        has_hdr = self._has_hdr
        nreg = len(self.regions)
        if has_hdr:
            m.d.comb += self.header.eq(r.hdr)
        layout = r.hdr.shape()
        new_hdr = layout(r.acc[: layout.size])
        # The header is judged in four cycles. With ``fields_r`` (trait `path_registers`):
        # `checking` registers the magic and each region's field (words_r), `testing` each
        # test of those flip-flops (ok_f), `weighing` their AND and the counts minus 3
        # (timing: acc's header slots sit by the memories they fill, across the die; the
        # tests from them, registered in `checking`, were 8.46 ns on the 12x16 of c1085d0
        # seed 1; tests and AND in `weighing`, `go` D 7.95 ns on cee1cc6 seed 1). Without:
        # `checking` registers each test of the header in acc (ok_f), `weighing` their AND
        # (`testing` waits). `judging` acts on the verdict.
        aw = len(r.addr) + 2
        ok_r = Signal()
        words_m3 = [Signal(signed(aw), name=f"words_m3_{n}") for n in range(nreg)]
        words_one = [Signal(name=f"words_one_{n}") for n in range(nreg)]
        # each region's word count (without `path_registers`), and its header field,
        # registered in `checking` (read in `weighing`)
        words = [_times(new_hdr[f], k) for (f, _, _), k in zip(self.regions, self.split,
                                                                strict=True)] if has_hdr else []
        words_r = [Signal(len(new_hdr[f]), name=f"words_r{n}", reset_less=True)
                   for n, (f, _, _) in enumerate(self.regions)] if has_hdr else []
        magic_r = Signal.like(new_hdr.magic, name="magic_r", reset_less=True) if fields_r \
            else None
        magic = magic_r if fields_r else new_hdr.magic
        fields = (words_r if fields_r else [new_hdr[f] for f, _, _ in self.regions]) \
            if has_hdr else []
        # each region's two tests as verdicts of their own (timing: the != 0 tree and the
        # <= carry chain ANDed before ok_f was 7.18 ns routed on s16 seed 1)
        oks = [magic == self.magic]
        for f, (_, _, dpt) in zip(fields, self.regions if has_hdr else [], strict=True):
            oks += [carry_any(f, chain), f <= dpt]
        ok_f = Signal(len(oks))
        words_p = [(Signal(signed(aw), name=f"words_p0_{n}", reset_less=True),
                    Signal(signed(aw), name=f"words_p1_{n}", reset_less=True))
                   for n in range(nreg)] if fields_r and has_hdr else []
        return _Verdict(new_hdr, oks, fields_r, ok_f, magic_r, ok_r, words_m3, words_one,
                        words, words_r, words_p)

    def _beat_flags(self, m: Module, r: _Regs, chk: _Check, pos: _Pos, stg: _Stage,
                    hv: _Verdict) -> _Beat:
        """`live` and the flags of the staged beat that every decision reads."""
        # live == ~stall & ~discard in every cycle, one flip-flop set from their next values
        # (timing: a beat acted on outside a discard, `beat` below, is then one LUT of
        # flip-flops, not five inputs in front of every decision).
        # (`loaded`, reset-less, stays out of it: live's design reset is then its init.)
        # Its next value: a restart clears both; while live, the final expected beat
        # without `last` starts a discard and the header's last beat the header check;
        # a header check ends live unless its verdict starts a discard (a refused header
        # not ending on `last`); a discard ends on a beat with `last`. (A discard and the
        # header check never meet: a header's end is taken outside a discard and only the
        # check's verdict starts one.)
        live = Signal(init=1)
        offered = stg.bv  # (== take)
        beat = offered & live  # == take & ~discard
        is_last = stg.is_last
        m.d.sync += live.eq(
            self.restart
            | (live & ~(offered & pos.wend & ((r.in_last & pos.lzero & ~is_last) | r.st[0])))
            | (chk.stall & chk.judging & (hv.ok_r | chk.hdr_last))
            | (r.discard & offered & is_last))
        # this beat, if taken, is the final expected one of the transfer / the header's last:
        # both from flip-flops only, so `take` selects at the end of each decision (timing)
        at_final = Signal()
        at_hdr_end = Signal()
        m.d.comb += [at_final.eq(~r.discard & r.in_last & pos.wend & pos.lzero),
                     at_hdr_end.eq(r.st[0] & pos.wend)]  # fmt: skip
        return _Beat(live, beat, at_final, at_hdr_end)

    def _commits(self, m: Module, r: _Regs, pos: _Pos, stg: _Stage, bt: _Beat) -> None:
        """Each memory's write enable."""
        # a word's write enable: its last beat taken in region n outside a discard, not in a
        # restart cycle. One AND of flip-flops (bv_com: its own copy), written as such (no
        # `If` chain, so yosys finds no synchronous reset in it: timing, the restart/design
        # reset LUT drove its LSR pin)
        for n, copies in enumerate(r.commit):
            m.d.sync += [c.eq(stg.bv_com & bt.live & r.st[n + 1] & pos.wend & ~self.restart)
                         for c in copies]

    def _loaded(self, m: Module, r: _Regs, pos: _Pos, stg: _Stage, bt: _Beat) -> None:
        """`done`; `loaded`, a cycle after it, and its next value, `loaded_next`."""
        # (as the branches of `_on_beat` and the restart would set it: the final beat with
        # `last` sets it, a restart clears)
        # Two LUT levels over kept wires (timing: ABC chained it behind `beat`'s LUTs, the
        # controller's busy gate on `valid` -> three LUTs -> `loaded`, 7.67 ns routed on the
        # 8x8, before the input stage).
        fin_here = Signal(attrs={"keep": 1})  # the next beat taken would be the final one
        fin_in = Signal(attrs={"keep": 1})  # a staged beat with `last`, no restart
        m.d.comb += [fin_here.eq(bt.live & r.in_last & pos.wend & pos.lzero),
                     fin_in.eq(stg.bv & stg.is_last & ~self.restart)]  # fmt: skip
        # (written as its next value, not through the branches of `_on_beat`: an AND-OR of
        # flip-flops with no restart LUT on its LSR pin; timing)
        done_next = (~self.restart & r.done) | (fin_in & fin_here & ~r.done)
        m.d.sync += [d.eq(done_next) for d in _distinct(r.done, r.done_o)]
        # `loaded` follows `done` a cycle later (LOADED_LATENCY), so every write stage's
        # delayed write, the last region's too, is made by the cycle it rises in; a restart
        # drops both at one edge (no beat is taken from `done` on: `ready`)
        loaded = Signal(reset_less=True)  # survives a design reset, like `done`
        m.d.comb += [self.loaded_next.eq(~self.restart & r.done), self.loaded.eq(loaded)]
        m.d.sync += loaded.eq(self.loaded_next)

    def _assemble(self, m: Module, r: _Regs, stg: _Stage) -> None:
        """acc's slots take the staged payload."""
        # acc's slot k takes the staged payload in every cycle its beat_oh bit is set, staged
        # or not (timing: each slot's 32 enables are one flip-flop, where a LUT of the stream's
        # valid, the controller's busy gate and `stall` failed at 150 MHz in most routed 8x8
        # seeds). A slot then holds what it took in the last cycle its bit was set, which is
        # the edge its beat was taken at (beat_oh steps only on a taken beat). A word is
        # committed from acc in the cycle after its last beat was taken, and a discard or
        # rewind is followed by a word's first beat. beat_oh is 0 from the header's end to the
        # cycle after judging, so the header stays in acc until `go` (or the check) reads it.
        bits = 32 // len(r.beat_parts)
        for k in range(max(self._bpw)):
            data = stg.data_for(k)
            for j, part in enumerate(r.beat_parts):
                with m.If(part[k]):
                    m.d.sync += r.acc[32 * k + bits * j : 32 * k + bits * (j + 1)].eq(
                        data[bits * j : bits * (j + 1)])

    def _beat_steps(self, m: Module, r: _Regs, chk: _Check, pos: _Pos, stg: _Stage,
                    groups: int) -> None:
        """The word's beat (beat_oh, and beat_w alike) steps on a beat taken."""
        # A shift register that wraps by itself: bit k takes bit k - 1, except at the first
        # bit past a word's end (k == bpw of the state: blocked by that state's bit), and
        # bit 0 takes `wend` (a word's end; none at the header's end, whose check keeps the
        # header in acc). So a word's end needs no reset: no broadcast LUT in front of every
        # bit's set/reset pin (timing: the 12x16 of 4e43b88, restart_r's LUT to beat_oh's 95
        # reset pins across the die, 9.71 ns). In a discard the beat runs off or wraps (no
        # word is written). The rare rewinds (a restart, the judging cycle, a `last` beat)
        # come one cycle late from a register, copied per group of bits (UNSHARED) with the
        # group's copy of the beat's valid: exact, as no beat is taken in those cycles nor in
        # the next (`ready`), and the beat only steers acc's slots, which a word's beats
        # overwrite before its commit reads them. (A header ending with `last` is refused,
        # never kept: its slot 0 may change from the judging cycle on, after the check read it.)
        # With a copy for `wend` (beat_w) the slot-steering registers take a design reset the
        # same way, a cycle late: a reset sets their rewind registers (init 1). Their own
        # reset was a LUT of the unit's reset and the group's rewind in front of each group's
        # set/reset pins, and the reset flip-flop crossed the die to them (session 54: 8.07
        # ns, the 12x16 of b78cb87 seed 1's worst path). Exact too: in the cycle after a
        # reset no beat is staged (the staging registers reset), and only beat_w, reset as
        # before, reaches `wend` (sim/test_loader.py's resets fail with rewinds left at 0).
        bpw = self._bpw
        hdr_st = r.st[0] if self._has_hdr else 0  # (the header state, never set without one)
        rewind_next = self.restart | chk.judging | (stg.bv & stg.is_last)
        first = pos.wend & ~(hdr_st & ~r.discard)  # (the header state's word end: none)

        def step(reg: Signal, k: int) -> Value:
            if k == 0:
                return first
            ends = [r.st[n] for n in range(len(bpw)) if bpw[n] == k and (n or self._has_hdr)]
            return reg[k - 1] & ~Cat(*ends).any() if ends else reg[k - 1]

        # (registers, their bits lo..hi, name tag): each group of beat_oh's bits with the
        # same bits of every part copy, under one rewind and one valid copy (timing: a pair
        # per part and group, 48 + 48 flip-flops fed by two cones, spread those cones' nets
        # over the die: 8.63 ns routed on the 12x16 of 087232c seed 2); then beat_w
        width = len(r.beat_oh)
        bounds = ([(g * SLOT_GROUP, min(width, (g + 1) * SLOT_GROUP), f"{g}")
                   for g in range(groups)] if groups > 1 else [(0, width, "")])
        spans = [(r.beat_parts, lo, hi, tag) for lo, hi, tag in bounds]
        if r.beat_w is not r.beat_oh:
            spans.append(([r.beat_w], 0, len(r.beat_w), "_w"))
        for regs, lo, hi, tag in spans:
            late = regs[0] is not r.beat_w  # (reset-less: a reset sets `rew` instead)
            rew = Signal(name=f"beat_rewind{tag}", attrs=UNSHARED if len(spans) > 1 else {},
                         init=int(late))
            ce = Signal(name=f"beat_valid{tag}", attrs=UNSHARED if len(spans) > 1 else {})
            m.d.sync += [rew.eq(rewind_next), ce.eq(stg.accept)]  # (ce: bv's copy)
            with m.If(rew):
                m.d.sync += [reg[lo:hi].eq(int(lo == 0)) for reg in regs]  # (the first beat)
            with m.Elif(ce):
                m.d.sync += [reg[lo:hi].eq(Cat(step(reg, k) for k in range(lo, hi)))
                             for reg in regs]  # fmt: skip

    def _position_steps(self, m: Module, r: _Regs, pos: _Pos, stg: _Stage) -> None:
        """The write address copies follow addr; with a header, the region position steps."""
        # the write address follows `addr` one cycle late, in every cycle (timing: no enable
        # nor reset on its copies, whose ~50 flip-flops spread over the die with their
        # memories); it is read only beside a write enable, which is set at the edge where
        # it takes the word's address (addr steps at that edge, commit_addr keeps the old)
        m.d.sync += [ca.eq(r.addr) for copies in r.commit_addr for ca in copies]
        if self._has_hdr:
            # With a header the region position steps at every word end staged, in any state,
            # in a discard, in the header check and while loaded too (timing: its enables are
            # bv_pos & wend [& lzero] | go, no state decode, discard, fault, loaded or
            # stall term, in front of ~50 enables). Outside a region that is harmless: `go`
            # sets it before a region's first word, and in a region (no stall, no discard, not
            # loaded: the final beat rewinds) a word end staged is a word end acted on.
            with m.If(stg.bv_pos & pos.wend):
                with m.If(pos.lzero):
                    _step_position(m, r, pos, True)
                with m.Else():
                    _step_position(m, r, pos, False)

    def _on_beat(self, m: Module, r: _Regs, chk: _Check, pos: _Pos, stg: _Stage, bt: _Beat,
                 rewind: list) -> None:
        """A beat taken outside a discard: assemble, commit, step the region."""
        # (one `If` per one-hot state bit, not an If/Elif chain: they are exclusive)
        with m.If(r.st[0]):  # (never set without a header)
            with m.If(pos.wend):
                # (and checking, stall: `_check_steps`; `go` sets addr)
                m.d.sync += chk.hdr_last.eq(stg.is_last)
            with m.Else():
                _step_beat(m, r, pos, self._bpw[0])
        for n in range(len(self.regions)):
            with m.If(r.st[n + 1]):
                self._region_beat(m, r, pos, n)
        with m.If(bt.at_final):
            m.d.sync += rewind
            # (with `last`: loaded, set in `_loaded`; err_long in `_faults`)
            with m.If(~stg.is_last):
                m.d.sync += r.discard.eq(1)
        # (a header's last beat with `last` is judged in the judging cycle)
        with m.Elif(stg.is_last & ~bt.at_hdr_end):  # (err_short: `_faults`)
            m.d.sync += rewind

    def _region_beat(self, m: Module, r: _Regs, pos: _Pos, n: int) -> None:
        """A beat of region n: the word's end commits it and steps the address."""
        nreg = len(self.regions)
        bpw = self._bpw
        with m.If(pos.wend):  # (commit[n] is set in `_commits`)
            with m.If(pos.lzero):  # the region's last word
                # (the last region's end is the transfer's end: `_on_beat`'s rewind sets st)
                if n != nreg - 1:
                    m.d.sync += [r.st.eq(1 << (n + 2)), pos.wend.eq(bpw[n + 2] == 1)]
                    if not self._has_hdr:
                        _step_position(m, r, pos, True)
                elif not self._has_hdr:
                    m.d.sync += r.addr.eq(0)
            with m.Else():
                m.d.sync += pos.wend.eq(bpw[n + 1] == 1)
                if not self._has_hdr:
                    _step_position(m, r, pos, False)
        with m.Else():
            _step_beat(m, r, pos, bpw[n + 1])

    def _check_steps(self, m: Module, r: _Regs, chk: _Check, stg: _Stage, hv: _Verdict,
                     bt: _Beat) -> None:
        """The header check's first three cycles, started by the header's end."""
        # The header's end (its last beat taken outside a discard) starts the check: checking
        # for one cycle, stall until judging's end. Written as their next values, one AND-OR
        # of flip-flops each (timing: no branch chain in front of `ready`'s flip-flop). A
        # fault's rewind never meets the header's end (only a restart does) and a beat is
        # never taken while stalled, so these are the branches' values.
        hdr_end = bt.beat & bt.at_hdr_end
        stall_next = ~self.restart & ((chk.stall & ~chk.judging) | hdr_end)
        accept = stg.accept
        blocked_next = stall_next | (accept & (self.i_stream.payload.last | r.st[0]))
        m.d.sync += [chk.checking.eq(~self.restart & hdr_end), chk.stall.eq(stall_next),
                     *(b.eq(blocked_next) for b in _distinct(stg.blocked, stg.blocked_o))]
        with m.If(chk.checking):
            m.d.sync += chk.testing.eq(1)
            if not hv.fields_r:
                m.d.sync += hv.ok_f.eq(Cat(*hv.oks))
            else:
                m.d.sync += hv.magic_r.eq(hv.new_hdr.magic)
                if self._has_hdr:  # (checking is never set without a header)
                    fields = [hv.new_hdr[f] for f, _, _ in self.regions]
                    m.d.sync += [wr.eq(f) for wr, f in zip(hv.words_r, fields, strict=True)]
        with m.If(chk.testing):
            m.d.sync += [chk.testing.eq(0), chk.weighing.eq(1)]
            if hv.fields_r:
                m.d.sync += hv.ok_f.eq(Cat(*hv.oks))
                if self._has_hdr:  # (testing is never set without a header)
                    for (p0, p1), v, k in zip(hv.words_p, hv.words_r, self.split, strict=True):
                        lo, hi = _times_parts(v, k, 3)
                        m.d.sync += [p0.eq(lo), p1.eq(hi)]
        verdict = hv.ok_f.all()
        with m.If(chk.weighing):
            m.d.sync += [chk.weighing.eq(0), chk.judging.eq(1), hv.ok_r.eq(verdict),
                         chk.go.eq(verdict & ~chk.hdr_last)]
            if self._has_hdr:
                self._weigh_counts(m, hv)

    def _weigh_counts(self, m: Module, hv: _Verdict) -> None:
        """Each region's word count minus 3 and "is one", in `weighing`."""
        # From the header fields registered in `checking` (timing: acc's header slots sit
        # by the memories they fill, across the die, and the route from them into the
        # program's count, 21 x n_layers, was 8.27 ns on the 12x16 of 9ea76c6 seed 2): here
        # the count's shifts and adds as a tree with the minus 3 from flip-flops of their own
        # (in series and from acc they were 6.88 ns routed on the 8x8), in two cycles:
        # `testing` registers count - 3 as two parts, `weighing` adds them (timing: the
        # program's 21 x field - 3 in one cycle, three carry chains in series, was the
        # critical path of the 4x4, 8x8 and 12x8 builds of session 45, 7.17-7.33 ns, and
        # 7.66-7.91 ns on the 12x16). Without `path_registers`, from acc's header, which
        # stays until `go`.
        for n, k in enumerate(self.split):
            if hv.fields_r:
                p0, p1 = hv.words_p[n]
                m3, one = p0 + p1, hv.words_r[n] == 1
            else:
                m3, one = hv.words[n] - 3, hv.words[n] == 1
            # (a count k * field with k > 1 is never 1)
            m.d.sync += [hv.words_m3[n].eq(m3), hv.words_one[n].eq(one if k == 1 else 0)]

    def _judge(self, m: Module, r: _Regs, chk: _Check, hv: _Verdict, rewind: list) -> None:
        """The judging cycle: a refused header, or one that ends the transfer, rewinds."""
        with m.If(chk.judging):
            m.d.sync += chk.judging.eq(0)  # (the beat's rewind: `_beat_steps`)
            with m.If(hv.ok_r & chk.hdr_last):  # a transfer that ends with its header (err_short)
                m.d.sync += rewind
            with m.Elif(~hv.ok_r):  # (err_header)
                m.d.sync += [*rewind, r.discard.eq(~chk.hdr_last)]

    def _faults(self, m: Module, chk: _Check, stg: _Stage, hv: _Verdict, bt: _Beat) -> None:
        """The fault pulses."""
        # The fault pulses, as the branches of `_on_beat` and `_judge` raise them, written out
        # as AND-ORs (no `If` chain: a register of them then has no synchronous reset LUT;
        # timing). A beat and the judging cycle never meet (judging is in the header check's
        # stall).
        beat, is_last, at_final = bt.beat, stg.is_last, bt.at_final
        m.d.comb += [
            self.err_long.eq(~self.restart & beat & at_final & ~is_last),
            self.err_short.eq(~self.restart & ((beat & ~at_final & is_last & ~bt.at_hdr_end)
                                               | (chk.judging & hv.ok_r & chk.hdr_last))),
            self.err_header.eq(~self.restart & chk.judging & ~hv.ok_r),
        ]

    def _on_go(self, m: Module, r: _Regs, chk: _Check, pos: _Pos, hv: _Verdict) -> None:
        """A good header's verdict: the header is kept and the first region starts."""
        # go == judging & ok_r & ~hdr_last, one flip-flop (timing: it enables the region
        # position's registers)
        with m.If(chk.go):
            m.d.sync += [r.hdr.eq(hv.new_hdr), r.st.eq(0b10), pos.wend.eq(self._bpw[1] == 1),
                         r.addr.eq(0)]  # fmt: skip
            if self._has_hdr:  # (judging is never set without a header)
                m.d.sync += [pos.left2.eq(hv.words_m3[0]), pos.lzero.eq(hv.words_one[0])]
                m.d.sync += [lm.eq(wm) for lm, wm in zip(pos.len_m3, hv.words_m3, strict=True)]
                m.d.sync += [a.eq(b) for a, b in zip(pos.lz, hv.words_one, strict=True)]
                m.d.sync += [q.eq(w) for q, w in zip(pos.q_len, hv.words_m3[1:], strict=True)]
                m.d.sync += [q.eq(w) for q, w in zip(pos.q_lz, hv.words_one[1:], strict=True)]


def _distinct(reg: Signal, copy: Signal) -> list[Signal]:
    """A register and its copy, or the register alone where there is no copy."""
    return [reg] if copy is reg else [reg, copy]


def _step_beat(m: Module, r: _Regs, pos: _Pos, n_bpw: int) -> None:
    """A beat that is not the word's last: wend for the next."""
    # (called only when the beat is not the word's last: n_bpw >= 2)
    m.d.sync += pos.wend.eq(r.beat_w[n_bpw - 2])


def _step_position(m: Module, r: _Regs, pos: _Pos, region_end: bool) -> None:
    """The region position's step at a word's end: the next region's (from the queue) or word."""
    if region_end:
        m.d.sync += r.addr.eq(0)
        if pos.q_len:  # (none with one region: its end is the transfer's, `go` sets it)
            m.d.sync += [pos.left2.eq(pos.q_len[0]), pos.lzero.eq(pos.q_lz[0])]
        m.d.sync += [a.eq(b) for a, b in zip(pos.q_len, pos.q_len[1:], strict=False)]
        m.d.sync += [a.eq(b) for a, b in zip(pos.q_lz, pos.q_lz[1:], strict=False)]
    else:
        m.d.sync += [r.addr.eq(r.addr + 1), pos.left2.eq(pos.left2 - 1)]
        # left >= 1 here, so left2 >= -1: left == 1 iff left2 < 0
        m.d.sync += pos.lzero.eq(pos.left2[-1])


def _times_parts(v, k: int, c: int = 0) -> tuple:
    """``v * k - c`` as two values to add, each one carry chain deep from ``v``: ``v`` (if
    ``k`` is odd) minus ``c``, and the other shifted terms (``_times`` of ``k`` without its
    bit 0: for the program's 21 beats a word, v * 4 + v * 16, one add)."""
    low = (v if k & 1 else 0) - c
    return low, (_times(v, k & ~1) if k & ~1 else 0)


def _times(v, k: int, c: int = 0):
    """``v * k - c`` for constants ``k`` >= 1, ``c``: shifts and adds (no multiplier cell
    for yosys to map onto a DSP block), the shifted terms and ``- c`` summed as a tree
    (fewer adders in series than a chain, and than ``- c`` after it)."""
    parts = [v << i for i in range(k.bit_length()) if k >> i & 1]
    if c:
        parts[0] = parts[0] - c
    while len(parts) > 1:
        parts = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)] + (
            parts[len(parts) & ~1 :])
    return parts[0]


class LoaderModel:
    """Golden model of the WeightLoader, one clock cycle at a time (`cycle`): which beats are
    taken (`ready`), what each memory holds, `loaded`, the loaded header, and the fault pulsed
    in each cycle. A beat taken is acted on in the next cycle (the input stage), `loaded`
    rises in the cycle after the final one's; with a header, its check takes
    `HEADER_CHECK_CYCLES` more. Arguments as WeightLoader's."""

    def __init__(
        self,
        regions: list[tuple[str, int, int]] | list[tuple[int, int]],
        header: data.StructLayout | None = None,
        magic: int = 0,
        beat_regions: tuple[int, ...] = (),
    ) -> None:
        if header is None:
            regions = [(None, w, d) for w, d in regions]
        self.fields = [f for f, _, _ in regions]
        self.depths = [d for _, _, d in regions]
        # stored words per header count, and each stored word's width (as WeightLoader)
        self.split = [beats_per_word(w) if n in beat_regions else 1
                      for n, (_, w, _) in enumerate(regions)]  # fmt: skip
        self.widths = [32 if n in beat_regions else w for n, (_, w, _) in enumerate(regions)]
        self.header_layout = header
        self.magic = magic
        self.mems: list[dict[int, int]] = [{} for _ in regions]
        self.done = False  # the final beat was acted on
        self.loaded = False  # `done` a cycle later
        self.header = 0  # the last good header's word (the loaded model's while `loaded`)
        self.lengths = list(self.depths)  # stored words of each region (the header's counts)
        self.restart()

    def restart(self) -> None:
        self.reset()
        self.done = self.loaded = False

    def reset(self) -> None:
        """A design reset: the transfer position rewinds, `loaded` (reset-less) stays."""
        self._rewind()
        self.discard = False
        # clock edges until the header check's verdict applies: ready is low while > 0, the
        # verdict pulses while == 1 (the judging cycle)
        self.check = 0
        self.stage: tuple[int, int] | None = None  # the beat taken in the last cycle
        self.hold = False  # it may stop the loader: no beat taken while it is acted on

    def _rewind(self) -> None:
        self.region = -1 if self.header_layout is not None else 0  # -1: the header
        self.addr = 0
        self.words: list[int] = []

    @property
    def ready(self) -> bool:
        return not self.done and self.check == 0 and not self.hold

    def cycle(self, beat: tuple[int, int] | None = None, *, restart: bool = False,
              reset: bool = False) -> str | None:
        """One clock cycle: `beat` (data, last) taken in it (`ready` must be high), a
        `restart` or a design `reset` in it. Returns the fault pulsed in the cycle: the
        staged beat's ("short" / "long") or the header check's (`verdict`); a restart drops
        both, a reset comes after them."""
        assert beat is None or (self.ready and not restart)
        # (a header beat or `last` may stop the loader: from the state before this cycle)
        hold = beat is not None and (bool(beat[1]) or self.region < 0)
        staged, self.stage = self.stage, None
        fault = None
        loaded = self.done and not restart  # (`loaded` takes `done` at this cycle's edge)
        if restart:
            self.restart()
        else:
            fault = self._act(*staged) if staged is not None else self.verdict
            if reset:
                self.reset()
        self._tick()
        self.loaded = loaded
        if not (restart or reset):
            self.stage, self.hold = beat, hold
        return fault

    def _act(self, data: int, last: bool) -> str | None:
        """The staged beat, acted on; returns "short" / "long" when it raises that fault."""
        if self.discard:
            self.discard = not last
            return None
        self.words.append(data)
        width = self.header_layout.size if self.region < 0 else self.widths[self.region]
        if len(self.words) < beats_per_word(width):
            if last:
                self._rewind()
                return "short"
            return None
        word = sum(b << (32 * i) for i, b in enumerate(self.words)) & ((1 << width) - 1)
        self.words = []
        if self.region < 0:
            # the header's last beat: checked in the following cycles (this cycle's edge,
            # then the check's cycles)
            self.pending, self.hdr_last = word, last
            self.check = HEADER_CHECK_CYCLES + 1
            return None
        return self._store(word, last)

    def _store(self, word: int, last: bool) -> str | None:
        """A region's word: written, then the transfer's end or a fault if there is one."""
        self.mems[self.region][self.addr] = word
        self.addr += 1
        if self.addr == self.lengths[self.region]:
            self.addr = 0
            self.region += 1
        if self.region == len(self.depths):
            self._rewind()
            if last:
                self.done = True
                return None
            self.discard = True
            return "long"
        if last:
            self._rewind()
            return "short"
        return None

    def _fields(self, word: int) -> dict[str, int]:
        assert self.header_layout is not None
        return {name: word >> f.offset & ((1 << f.width) - 1) for name, f in self.header_layout}

    def _header_ok(self, word: int) -> bool:
        got = self._fields(word)
        return got["magic"] == self.magic and all(
            0 < got[f] <= d for f, d in zip(self.fields, self.depths, strict=True))

    @property
    def verdict(self) -> str | None:
        """The fault the header check pulses in this cycle: "header" (wrong magic, a count of
        0 or past its memory's depth) or "short" (a good header with `last`)."""
        if self.check != 1:
            return None
        if not self._header_ok(self.pending):
            return "header"
        return "short" if self.hdr_last else None

    def _tick(self) -> None:
        """A clock edge: the header check advances; at its end the verdict applies."""
        if self.check == 0:
            return
        self.check -= 1
        if self.check:
            return
        if not self._header_ok(self.pending):
            self._rewind()
            self.discard = not self.hdr_last
        elif self.hdr_last:
            self._rewind()
        else:  # a good header: its counts give the regions' lengths
            fields = self._fields(self.pending)
            self.header = self.pending
            self.lengths = [fields[f] * k for f, k in zip(self.fields, self.split, strict=True)]
            self.region = 0
