"""Platform traits: the few sizes a small device picks differently, asked from the platform in
``elaborate`` (the pattern of the multiplier seam and of Amaranth's ``get_ff_sync``).

A platform (or a simulation stand-in, so that Verilator runs the design the board gets) may
define any of these attributes; without them every unit keeps its default:

* ``requant_mult_latency``: register edges of the requant lanes' 32x32 product
  (default :data:`hwgen.rtl.requant.REQUANT_MULT_LATENCY`, six, sized for ECP5 at 150 MHz;
  the large device seven: a register on the operands by the lane's DSPs). Every stage
  costs the product's width plus the side data in flip-flops, which a device with 5,280
  logic cells and a 12 MHz clock cannot spare.
* ``requant_fold``: stages B, C1, C2, D and E1 of the requant lane (rounding high half,
  rounding shift, round-up add, clamp compares) without their registers, one long path
  (default False).
* ``param_read_latency``: 1 takes the requant parameters straight from the block RAM's
  registered output; the default 2 adds a register after it (hwgen.rtl.writeback).
* ``perf_counter_width``: bits of each cycle counter (default 32). A narrower counter
  saturates at its maximum instead of wrapping, so a reading is never silently small.
* ``bram_budget``: the device's block RAMs (DP16KD). A plan whose memories need more
  (`hwgen.schedule.capacity.MemoryPlan.block_ram`) puts the requant parameters in LUT RAM
  (default None: no device, block RAM).
* ``delay_ram_from``: fixed delays of data words (the write-back's deskew, the conv weight
  lanes' column skew, the requant lanes' side data) of this many cycles or more wait in LUT
  RAM (:class:`hwgen.rtl.delay.DelayLine`; default :data:`hwgen.rtl.delay.DELAY_RAM_FROM`, 4;
  0: flip-flop chains only, for a device without LUT RAM, whose memories yosys would build
  from flip-flops and multiplexers).
* ``local_resets``: each unit takes the design reset through a register of its own, a
  cycle later (hwgen.rtl.resets; default False).
* ``param_hop``: requant parameters in block RAM pass one more register on their way to the
  lanes (the block's output register, then one the placer can put by the lanes; a cycle
  later; default False). Not for parameters in LUT RAM, which sit by their lanes already.
* ``program_hop``: the program memory's read word passes one more register on its way to
  the descriptor register, whose fields sit by the units that read them across the die
  (one FETCH cycle more per layer, :func:`hwgen.rtl.top.fetch_cycles`; default True, so the
  generic simulation and the sweep's cycle runs count the board's cycles; False on the
  small device, ~32 logic cells).
* ``program_lut_ram``: the program memory (4 layers x 21 beats x 32 bits for mnist_cnn) in
  LUT RAM rather than a block RAM (default False). The same synchronous read port and
  cycles; the read address is the program address's register itself (no prefetch through a
  block RAM output register, which LUT RAM has not). On the ECP5-85F the block RAMs are
  nearly all taken (200 / 208 at 12x16) and the program's got a site at the die's edge:
  FETCH's address select and the program address's steps crossed the die to it (8.06 /
  8.23 ns, the 12x16 of 3fdf715 at 125 MHz); in LUT RAM it sits by the controller and the
  descriptor.
* ``stream_slices``: the register slices on the host link's streams
  (:class:`hwgen.rtl.regslice.RegSlice`) are registers (default True); False makes each a
  plain wire (no die to cross at a slow clock; ~190 logic cells on the iCE40).
* ``image_slice``: the Accelerator's image input passes a register slice of its own, whose
  ``valid`` has a copy for the image writer's position steps (hwgen.rtl.top ``_transfers``;
  default False: a wire, no cycle more). A host link then puts no second slice of its own at
  the core's side (hwgen.hostlink.top). True on the large device: the steps' LUT sits by the
  writer's ~70 position registers, not by the slice across the die.
* ``carry_chains``: wide zero / all-ones tests as the carry out of an add
  (:mod:`hwgen.rtl.carry`; default True); False: plain reductions (an iCE40 carry bit takes a
  logic cell, a LUT tree a third of that; ~155 logic cells on digits_tiny 1x1).
* ``path_registers``: registers that only shorten a path, holding a value that is also
  stable at its source (default True); False reads the source (no cycle changes): the
  loader's registered header word counts; the sequencer's tile-length loads ``tl_first`` /
  ``tl_p``, from its per-layer registers as ``cur_k_m1`` loads (~40 logic cells on
  digits_tiny 1x1); row 0's feeder copies of the descriptor's src, in_h, in_w and stride,
  the descriptor's own flip-flops (~11).
* ``bram_output_register``: the board moves a block RAM's read register into the block
  (the ECP5's DP16KD output register; default True): the program memory is read through one
  (``rom_q``). False (the iCE40's SB_RAM40 has none): read a cycle later without it, the
  same cycles; and a banked weight memory (:class:`hwgen.rtl.bankmem.BankedMemory`) whose
  banks' words are more bits than its read address registers the address once more and
  selects from the blocks' own read data, the same read latency (the 1x1's conv weights,
  4 banks x 8 bits for 12 address bits: ~29 logic cells).
* ``copy_trees``: an activation buffer's write (enable, port A's select, address, data) is
  registered once by its sources, then once per buffer copy (D = Q, UNSHARED, reset-less: a
  reset of their own is one shared LUT in front of every copy), a cycle later (default
  True: a copy's registers sit by it, no next-value logic in front of the long route to
  it); False: one stage, per-copy select and address registers fed from the mux
  (fewer flip-flops; the iCE40 has one copy at 1x1 and no die to cross at 12 MHz). Also
  the weight loader's copy of its word-beat register that its word-end select reads
  (hwgen.rtl.loader; True: the slot-steering copies then take a reset a cycle late through
  their rewind registers) or none.
* ``perf_read_registers``: the cycle counters are read through two register stages (a 4:1
  mux per group of four, then the group; default True, PERF_READ_LATENCY). False: one
  combinational mux, so ``perf_data`` is valid from the cycle ``perf_sel`` is and still
  after PERF_READ_LATENCY cycles; a stopped counter (the host's and testbenches' reads,
  after a run) reads the same, a running one up to that many cycles newer (~16 logic
  cells).
* ``unshared_copies``: the board flow keeps each ``UNSHARED`` register copy apart (default
  True, hwgen.rtl.attrs); False lets yosys merge equal copies.

:class:`SmallDevice` is the set the iCEBreaker (iCE40UP5K) uses; :class:`SmallDeviceSim` is its
stand-in for simulation (no other platform resource). :class:`LargeDevice` is the set of the
ULX3S (ECP5-85F) and of its simulation stand-in (hwgen.rtl.ecp5_dsp.Ecp5DspSim).
"""

from __future__ import annotations

from types import SimpleNamespace

__all__ = ["DEFAULTS", "NAMES", "LargeDevice", "SmallDevice", "SmallDeviceSim", "trait",
           "traits_of"]


# The value of each switch and size above on a platform that does not define it (the large
# device's, mostly); the latencies whose default is a unit's own constant are passed instead.
DEFAULTS: dict[str, object] = {
    "requant_fold": False,
    "perf_counter_width": 32,
    "bram_budget": None,
    "local_resets": False,
    "param_hop": False,
    "program_hop": True,
    "program_lut_ram": False,
    "stream_slices": True,
    "image_slice": False,
    "carry_chains": True,
    "path_registers": True,
    "bram_output_register": True,
    "copy_trees": True,
    "perf_read_registers": True,
    "unshared_copies": True,
}
# every trait a platform may define: the switches above and the latencies and sizes whose
# default is a unit's own constant
NAMES: tuple[str, ...] = (*DEFAULTS, "requant_mult_latency", "param_read_latency",
                          "delay_ram_from")
_TABLE = object()


def trait(platform, name: str, default: object = _TABLE):
    """``platform.<name>`` if the platform defines it, else ``default`` (given, or from
    :data:`DEFAULTS`)."""
    value = getattr(platform, name, None)
    if value is not None:
        return value
    return DEFAULTS[name] if default is _TABLE else default


def traits_of(platform) -> SimpleNamespace:
    """The traits ``platform`` defines, without its hooks (multipliers, accumulators) or
    resources: the board's design with the generic ``*``, which has the same latency and is
    bit-identical (hwgen.rtl.mult), for a cycle count of the board's design in the fast
    harness (``hwgen sweep``'s cycle tasks)."""
    return SimpleNamespace(**{k: getattr(platform, k) for k in NAMES
                              if getattr(platform, k, None) is not None})


class SmallDevice:
    """Traits for a small FPGA (iCE40UP5K) at a slow clock: a requant lane with two
    registers besides the product's one, parameters straight from the block RAM, 24-bit
    cycle counters."""

    requant_mult_latency = 1
    requant_fold = True
    param_read_latency = 1
    perf_counter_width = 18  # 262,143 cycles: 21.8 ms at 12 MHz (digits_tiny: 17,296)
    delay_ram_from = 0  # no LUT RAM on the iCE40
    stream_slices = False
    unshared_copies = False
    carry_chains = False
    path_registers = False
    bram_output_register = False
    program_hop = False
    copy_trees = False
    perf_read_registers = False


class SmallDeviceSim(SmallDevice):
    """A stand-in platform for simulation: only the traits (no resources, no multiplier hook)."""


class LargeDevice:
    """Traits for a large FPGA (ECP5-85F): the design reset reaches each unit through a
    register of its own, and block-RAM parameters through a second register (a net across
    the die would otherwise sit on the critical path: the parameter block's output to a far
    requant lane's first carry chain was the routed 12x8's worst path, session 29)."""

    local_resets = True
    param_hop = True
    image_slice = True
    program_lut_ram = True
    # the requant lanes' product one edge past REQUANT_MULT_LATENCY (6; hwgen.rtl.requant
    # imports this module): a register on the operands by the lane's four DSPs
    # (hwgen.rtl.ecp5_dsp), one write-back cycle more per layer
    requant_mult_latency = 7
