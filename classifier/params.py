"""The classifier's boosting parameters: defaults, the candidates a search tries, and why each
default is what it is. Defaults chosen by measurement name their data in docs/benchmarks.md (tuning
data)."""
from __future__ import annotations

import numpy as np

DEFAULT_PARAMS = {"learning_rate": 0.05, "max_depth": 4, "min_child_weight": 1.0, "subsample": 0.8,
                  "colsample_bytree": 0.8, "reg_lambda": 1.0, "tree_method": "hist"}
SEARCH_SPACE = {"learning_rate": [0.02, 0.05, 0.1], "max_depth": [2, 3, 4, 6, 8],
                "min_child_weight": [1.0, 3.0, 10.0], "subsample": [0.6, 0.8, 1.0],
                "colsample_bytree": [0.5, 0.8, 1.0], "reg_lambda": [0.5, 1.0, 5.0]}
SMALL_DATA = 5000
# Defaults chosen by measurement; docs/benchmarks.md lists the data each was chosen on (tuning data).
# Below SMALL_DATA rows every boosting round grows a small random forest (rows and columns
# subsampled per tree) instead of one tree: with tens or hundreds of rows a single tree per round
# follows the noise of the few rows it splits; averaging several lowers that variance. The trees
# are grown by XGBoost's exact method, each reading EXACT_TREE_COLUMNS columns: hist builds every
# column's histogram for every tree whatever the column sampling, so on a few hundred rows of
# 2700-column codes it paid for all of them; the exact method scans only the sampled columns.
SMALL_DATA_PARAMS = {"num_parallel_tree": 4, "learning_rate": 0.1, "subsample": 0.6, "tree_method": "exact"}
EXACT_TREE_COLUMNS = 64
# From SMALL_DATA rows up, each round grows a forest of 4 hist trees: one tree per round left the
# scores of a model with many weak columns (the event codes) moving with the booster's row and
# column draws, and averaging 4 narrowed the paired intervals, for about 4x the trees' time.
LARGE_DATA_PARAMS = {"num_parallel_tree": 4, "subsample": 0.6, "colsample_bynode": 0.5}
# The forest of a round averages the noise of each tree's row and column draw, which more rows
# average already: a round's trees are at most ROUND_ROWS / (training rows) (4 up to 100,000 rows,
# 1 from 200,001), so the fraud benchmark's tables (at most 70,000 rows) keep 4. On a 400,000-event
# table a round of 4 trees took 4-5x the time of one for about the same test PR-AUC (docs/benchmarks.md).
ROUND_ROWS = 400_000
# A multi-class round grows one forest per class: the forests shrink so that a round grows at most
# TREES_PER_ROUND trees (4 per class up to 8 classes, 3 for 9-10, 1 from 17 classes up), and reads
# at most ROUND_CELLS rows x columns in all its trees: tens of classes on wide codes would otherwise
# take minutes of trees.
TREES_PER_ROUND = 32
ROUND_CELLS = 1 << 26
# Cross-validated choices (``cv_folds``) only below CV_ROWS rows: from there a single 20% split holds
# at least 200 rows, and k folds would cost k fits for little gain in what they decide.
CV_ROWS = 1000
# The split's name (``fit_info_["split"]``) when every class has a single row: nothing can be held out
NO_HOLDOUT = "none: every class has a single row, validated on the training rows"
# Below SMALL_DATA rows XGBoost's linear booster is a candidate too, at three L2 strengths (per row,
# as gblinear normalises it), on standardised inputs, its objective solved to convergence
# (``linear.fit_linear``: L-BFGS, written into a gblinear booster). Codes whose classes differ along
# an oblique direction are cut poorly by a few axis-aligned splits on tens of rows; a linear model is
# not.
LINEAR_LAMBDAS = (0.01, 0.1, 1.0)
# The simpler model first: on small data the best linear candidate is kept unless the best trees, or
# their blend with it, have a lower out-of-fold log-loss by more than TREES_WIN_BY standard errors
# of the paired per-row difference (``metrics.clearly_lower``): on tens of rows the lowest
# log-loss alone picked trees by chance.
TREES_WIN_BY = 1.5
# A hist tree (from SMALL_DATA rows) reads at most TREE_COLUMNS columns (``colsample_bytree``
# lowered to that share on wider inputs), as a random forest samples features: building histograms
# costs rows x columns per tree, and an entity code has thousands of columns.
TREE_COLUMNS = 256


def linear_params(reg_lambda: float) -> dict:
    """Parameters of one linear-booster candidate."""
    return {"booster": "gblinear", "updater": "coord_descent", "feature_selector": "cyclic",
            "learning_rate": 0.5, "reg_lambda": reg_lambda, "reg_alpha": 0.0}


def is_linear(params: dict) -> bool:
    return params.get("booster") == "gblinear"


def search_candidates(n: int, seed: int, small_data: bool = False) -> list[dict]:
    """The default parameters (with ``SMALL_DATA_PARAMS`` on small data, else ``LARGE_DATA_PARAMS``),
    on small data the linear candidates, then ``n - 1`` seeded draws from ``SEARCH_SPACE``: the same
    list for every model fitted with the same ``n``, ``seed`` and data size, so baselines get an
    equal tuning budget."""
    rng = np.random.default_rng(seed)
    base = DEFAULT_PARAMS | (SMALL_DATA_PARAMS if small_data else LARGE_DATA_PARAMS)
    out = [dict(base)] + ([linear_params(lam) for lam in LINEAR_LAMBDAS] if small_data else [])
    for _ in range(max(0, n - 1)):
        out.append(base | {k: v[int(rng.integers(len(v)))] for k, v in SEARCH_SPACE.items()})
    return out
