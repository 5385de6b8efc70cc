"""Frozen configuration dataclasses shared by every stage (the one module all may import)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_ARRAY_DIM", "ArrayConfig", "QuantConfig"]

# The one limit on an array side: the CLI, the schedule and the hardware all use this.
MAX_ARRAY_DIM = 32


@dataclass(frozen=True)
class ArrayConfig:
    """Systolic array geometry and the MAC's arithmetic parameters.

    The accumulator width and operand widths are parameters, not constants, so that the
    same mesh can later run additive secret shares mod 2**acc_width.
    """

    rows: int = 8
    cols: int = 8
    a_width: int = 8
    w_width: int = 8
    acc_width: int = 32
    # MULT18X18D with input, pipeline and output registers, then one fabric register: the
    # block's clock-to-out and route into the fabric took 5.2-5.9 ns on the routed 8x8, so
    # nothing may follow it in the same cycle (the accumulate starts at that register)
    mult_latency: int = 4
    # "int": signed a×w products into a wider accumulator (the int8 plaintext design);
    # "ring": additive secret shares, a = w = acc = k bits, everything mod 2**k
    # (hwgen.rtl.arith.Arithmetic.from_config turns these fields into the PE's arithmetic).
    arithmetic: str = "int"
    # conv remainder tiles (hwgen.schedule.lower._remainder): fewer cycles, a larger
    # direct-weight memory (`hwgen ... --no-remainder-tiles` turns them off)
    remainder_tiles: bool = True
    # their two-stream form (hwgen.schedule.lower._remainder_stream): two K parts in conv
    # mode, rows part-major, part 1's weights from a second read of the conv-weight memory
    # injected at row R/2; no direct words (no block RAM), R even, K split 2 only
    remainder_stream: bool = False

    def __post_init__(self) -> None:
        for name in ("rows", "cols"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_ARRAY_DIM:
                raise ValueError(
                    f"Array {name} must be an integer in 1..{MAX_ARRAY_DIM}, not {v!r}"
                )
        if self.mult_latency < 1:
            raise ValueError(f"Multiplier latency must be >= 1, not {self.mult_latency!r}")
        if self.arithmetic not in ("int", "ring"):
            raise ValueError(f"Array arithmetic must be 'int' or 'ring', not {self.arithmetic!r}")
        if self.arithmetic == "ring":
            if not self.a_width == self.w_width == self.acc_width:
                raise ValueError("Ring arithmetic needs a_width = w_width = acc_width (k)")
        elif self.acc_width < self.a_width + self.w_width:
            raise ValueError(
                f"Accumulator width {self.acc_width} is narrower than a product "
                f"({self.a_width}+{self.w_width} bits)"
            )

    @property
    def schedule(self) -> bool | str:
        """The remainder-tile switch as one value: False, True (direct) or "stream"."""
        return "stream" if self.remainder_tiles and self.remainder_stream else self.remainder_tiles

    def with_schedule(self, schedule: bool | str) -> ArrayConfig:
        """This array with the remainder-tile switch ``schedule`` (see ``schedule``)."""
        from dataclasses import replace

        if schedule not in (False, True, "stream"):
            raise ValueError(f"remainder schedule must be False, True or 'stream', "
                             f"not {schedule!r}")
        return replace(self, remainder_tiles=bool(schedule), remainder_stream=schedule == "stream")

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @classmethod
    def parse(cls, text: str, **kw: int) -> ArrayConfig:
        """Parse "RxC" (e.g. "8x8", "4x16")."""
        try:
            r, c = (int(t) for t in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"Array size must look like RxC (e.g. 8x8), not {text!r}") from None
        return cls(rows=r, cols=c, **kw)

    @classmethod
    def shares(cls, k: int, rows: int = 8, cols: int = 8, mult_latency: int = 3) -> ArrayConfig:
        """The share-mode array: ring elements of k bits, arithmetic mod 2**k."""
        return cls(rows, cols, k, k, k, mult_latency, "ring")

    def __str__(self) -> str:
        return f"{self.rows}x{self.cols}"


@dataclass(frozen=True)
class QuantConfig:
    """Post-training quantization settings."""

    calib_images: int = 500
    act_bits: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    seed: int = 0
