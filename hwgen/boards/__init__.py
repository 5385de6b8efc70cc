"""FPGA board builds: platforms, board tops, the yosys/nextpnr/ecppack flow and its report."""
