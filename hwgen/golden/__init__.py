"""hwgen.golden."""
