"""RTL simulation: Verilator/cocotb runner, whole-network cases, cocotb testbenches."""
