"""rocksr.stages."""
