"""hwgen.rtl."""
