"""rocksr.evaluation."""
