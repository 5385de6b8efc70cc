"""hwgen.frontend."""
