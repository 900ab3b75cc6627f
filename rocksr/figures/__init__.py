"""rocksr.figures."""
