"""Comparing latent codes with raw-feature baselines: time splits (``splits``), the comparison run
(``compare``), one evaluation with bootstrap intervals for every model (``bootstrap``) and the
report directory (``report``)."""
