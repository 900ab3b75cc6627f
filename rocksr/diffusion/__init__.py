"""rocksr.diffusion."""
