"""hwgen.schedule."""
