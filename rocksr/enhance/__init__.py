"""Whole-slice and stack inference with a trained model: `rocksr enhance`."""
