"""Two-party secure inference of a QModel: additive secret sharing over Z_2^k.

Stage position: after ``hwgen.golden`` (it is a second, shared-domain reference); it never
imports rtl/emit/sim. See docs/secure.md for the protocol and the threat model.
"""
