"""RTL simulation: cocotb runner and testbenches, the fast C++ harness engine."""
