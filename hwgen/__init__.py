"""hwgen."""
