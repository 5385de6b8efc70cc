"""cocotb test bodies (not collected by pytest; run inside the simulator)."""
