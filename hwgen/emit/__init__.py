"""hwgen.emit."""
