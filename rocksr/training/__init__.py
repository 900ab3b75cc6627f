"""rocksr.training."""
