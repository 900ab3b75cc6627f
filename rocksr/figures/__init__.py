"""Figures, one module per figure family. Rendered off-screen (Agg), also on a head node."""

import matplotlib

matplotlib.use("Agg")
