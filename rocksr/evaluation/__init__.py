"""Evaluation: per-tile metrics and Table 1, baselines, rock statistics, the budget table and
the studies (leak, sampler, seams)."""
