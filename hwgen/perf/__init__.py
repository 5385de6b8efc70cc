"""hwgen.perf."""
