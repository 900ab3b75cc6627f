"""rocksr: reproducible micro-CT -> SEM super-resolution (conditional DDPM vs. pix2pix cGAN)."""

__version__ = "0.1.0"
