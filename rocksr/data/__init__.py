"""rocksr.data."""
