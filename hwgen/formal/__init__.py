"""hwgen.formal: bounded model checking of hardware units with the pip-only SymbiYosys flow.

``runner.prove(harness, name, depth, workdir)`` runs one BMC job (YoWASP yosys/sby + Yices 2);
``requant_check`` states the requant lane against an independent combinational spec;
``stream_check`` states the WeightLoader's stream handshake (no beat lost, duplicated or
reordered under backpressure) with a counting, tagged-value scoreboard.
"""

from .runner import FormalResult, FormalToolError, prove, tools

__all__ = ["FormalResult", "FormalToolError", "prove", "tools"]
