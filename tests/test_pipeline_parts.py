"""Pipeline pieces: point-in-time baseline features, time splits, and the shared evaluation."""
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from encoder import events as ev
from encoder.prepared import prepare_events
from encoder.io.errors import InputError
from encoder.preprocessing import category_strings
from pipelines.evaluation.bootstrap import evaluate_models, point_metrics, weighted_metrics
from pipelines.evaluation.splits import delayed_labels, parse_delay, time_split
from pipelines.features import History, baseline_features, fit_recipe, latest_features
from pipelines.simulate.demo import simulate_events
from pipelines.simulate.terminals import LARGE_AMOUNT, simulate_terminal_events


@pytest.fixture(scope="module")
def sim():
    return simulate_events(40, days=21, seed=3)


def _schema(df):
    return ev.infer_schema("x", list(df.columns), {c: ev.dtype_kind(df[c].dtype) for c in df}, "account", "ts", "is_fraud")


def _features(df, recipe=None):
    s = _schema(df)
    p = prepare_events(df, s, training=True)
    fs = p.frame.iloc[p.order].reset_index(drop=True)
    recipe = recipe or fit_recipe(s, fs, 8)
    f = baseline_features(recipe, fs, p.times, p.codes, p.starts)
    inverse = np.empty_like(p.order)
    inverse[p.order] = np.arange(len(p.order))
    return f.iloc[inverse].reset_index(drop=True), recipe


def test_simulator_is_seeded_and_fraud_is_rare(sim):
    assert sim.equals(simulate_events(40, days=21, seed=3))
    assert 0 < sim.is_fraud.mean() < 0.05
    assert set(sim.columns) == {"account", "ts", "amount", "merchant", "category", "channel", "country", "device", "is_fraud"}


def test_terminal_simulator_follows_its_three_scenarios():
    """The second simulator: seeded, sorted in time, and each fraud scenario as documented."""
    df = simulate_terminal_events(300, days=40, seed=2, with_scenario=True)
    assert df.equals(simulate_terminal_events(300, days=40, seed=2, with_scenario=True))
    assert not df.equals(simulate_terminal_events(300, days=40, seed=3, with_scenario=True))
    assert df.ts.is_monotonic_increasing
    assert set(df.drop(columns="scenario").columns) == {"account", "ts", "amount", "terminal", "is_fraud"}
    assert ((df.is_fraud == 1) == (df.scenario != "genuine")).all()
    assert (df.loc[df.amount > LARGE_AMOUNT, "is_fraud"] == 1).all()
    assert set(df.scenario) == {"genuine", "large", "terminal", "customer"}
    assert 0 < df.is_fraud.mean() < 0.05
    # a compromised terminal's payments are fraud for every customer who pays there on those days
    hit = df[df.scenario == "terminal"]
    assert hit.account.nunique() > hit.terminal.nunique()
    # a leaked customer's fraud is five times an ordinary amount of theirs: far above their median
    genuine_median = df[df.scenario == "genuine"].groupby("account").amount.median()
    ratio = df[df.scenario == "customer"].set_index("account").amount / genuine_median
    assert ratio.dropna().median() > 3
    with pytest.raises(ValueError, match="n_customers"):
        simulate_terminal_events(0)


def test_every_baseline_feature_is_point_in_time(sim):
    before, recipe = _features(sim)
    cut = sim.ts.quantile(0.5)
    later = sim.ts > cut
    changed = sim.copy()
    changed.loc[later, "amount"] *= 7.0
    changed.loc[later, "merchant"] = "m999"
    changed.loc[later, "country"] = "ZZ"
    after, _ = _features(changed, recipe)
    pd.testing.assert_frame_equal(before[~later.to_numpy()], after[~later.to_numpy()])
    assert not before[later.to_numpy()].equals(after[later.to_numpy()])
    # dropping all later events changes no earlier feature either
    truncated, _ = _features(sim[~later].reset_index(drop=True), recipe)
    pd.testing.assert_frame_equal(before[~later.to_numpy()].reset_index(drop=True), truncated)


def test_the_missing_flag_column_does_not_depend_on_the_table(sim):
    """A table without missing amounts still has ``raw_amount_missing`` (all 0): a classifier
    trained where amounts were missing can score it."""
    complete, _ = _features(sim)
    assert not sim.amount.isna().any() and (complete["raw_amount_missing"] == 0).all()
    holes, _ = _features(sim.assign(amount=sim.amount.where(sim.index % 5 > 0)))
    assert list(holes.columns) == list(complete.columns) and holes["raw_amount_missing"].sum() == (sim.index % 5 == 0).sum()


def test_latest_features_equal_the_batch_features_of_the_same_rows(sim):
    """The online path's NumPy features of chosen rows (each entity's k-th row, with a missing
    amount), given the counts of the rows before them, equal ``baseline_features`` on those rows:
    every feature, the whole-history ones included."""
    df = sim.copy()
    df.loc[df.index[::7], "amount"] = np.nan
    s = _schema(df)
    p = prepare_events(df, s, training=True)
    fs = p.frame.iloc[p.order].reset_index(drop=True)
    recipe = fit_recipe(s, fs.iloc[: len(fs) // 2], 8)
    batch = baseline_features(recipe, fs, p.times, p.codes, p.starts)
    columns = {c: fs[c].to_numpy(np.float64, na_value=np.nan) for c in s.numeric} | \
        {c: category_strings(fs[c]) for c in s.categorical}
    rows = np.arange(len(fs))
    for k in (0, 1, 5, 30):  # the entities' first, second, ... rows: short and full windows
        ends = rows[(rows - p.starts == k)]
        seen = {c: batch[f"agg_{c}_seen_before"].to_numpy(np.float64)[ends] for c in s.categorical}
        flags = {c: batch[f"agg_{c}_is_new"].to_numpy(np.float64).copy() for c in s.categorical}
        for c in s.categorical:
            flags[c][ends] = -99.0  # the newest rows' own flags must come from seen and before
        got = latest_features(recipe, columns, p.times, p.starts, ends, History(float(k) + 0 * ends, seen, flags))
        assert set(got) == set(batch.columns)
        for name, values in got.items():
            np.testing.assert_allclose(values.astype(np.float32), batch[name].to_numpy()[ends], rtol=1e-6, err_msg=name)


def test_split_periods_do_not_overlap_in_time(sim):
    split = time_split(sim, _schema(sim), "event", 0.6, 0.2)
    t = sim.ts.to_numpy()
    tr, va, te = (t[split.row_period == p] for p in ("train", "valid", "test"))
    assert tr.max() < va.min() and va.max() < te.min()
    assert len(tr) + len(va) + len(te) == len(sim)


def test_parse_delay_reads_durations_and_plain_numbers():
    assert parse_delay("30d") == 30 * 86400 and parse_delay("12h") == 43200 and parse_delay("90") == 90.0
    for bad in ("soon", "-3d", "nan"):
        with pytest.raises(InputError, match=f"label delay '{bad}'"):
            parse_delay(bad)


def test_delayed_labels_keep_rows_before_the_gap_and_move_validation_when_it_is_swallowed(sim):
    split = time_split(sim, _schema(sim), "event", 0.6, 0.2)
    in_fit = split.output_period != "test"
    t1, t2 = split.cuts
    kept, validation, info = delayed_labels(split, in_fit, t2, (t2 - t1) / 2, 0.6, 0.2)
    t = split.output_time[in_fit]
    assert (kept == (t <= t2 - (t2 - t1) / 2)).all() and info["rows_in_gap"] == int((~kept).sum()) > 0
    assert (validation == (split.output_period[in_fit][kept] == "valid")).all() and validation.any()
    kept, validation, info = delayed_labels(split, in_fit, t2, 2 * (t2 - t1), 0.6, 0.2)  # no validation period left
    assert info["validation"].startswith("the latest 25%") and 0 < validation.mean() < 0.5
    assert t[kept][validation].min() > t[kept][~validation].max()


def test_split_of_a_single_instant_is_refused(sim):
    flat = sim.assign(ts=pd.Timestamp("2026-01-01", tz="UTC"))
    with pytest.raises(InputError, match="is too short to split: the valid period would be empty"):
        time_split(flat, _schema(flat), "event")


def test_weighted_metrics_with_unit_weights_equal_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.05).astype(int)
    score = np.round(y * 0.3 + rng.random(3000), 2)  # rounded: many ties, as trees give
    a, b = point_metrics(y, score), weighted_metrics(y, score, np.ones(3000))
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-9), k
    w = rng.integers(0, 3, 3000)
    rep = np.repeat(np.arange(3000), w)
    assert weighted_metrics(y, score, w)["pr_auc"] == pytest.approx(skm.average_precision_score(y[rep], score[rep]))


def test_intervals_hold_point_estimates_and_pairs_are_paired():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.1).astype(int)
    groups = rng.integers(0, 200, 2000)
    good, bad = y + rng.normal(0, 0.5, 2000), y + rng.normal(0, 2.0, 2000)
    m = evaluate_models(y, {"hybrid": good, "aggregates": bad}, groups, n_boot=100)
    for name in ("hybrid", "aggregates"):
        lo, hi = m["models"][name]["pr_auc_ci"]
        assert lo <= m["models"][name]["pr_auc"] <= hi
    assert m["paired"]["hybrid_vs_aggregates"]["pr_auc"]["ci"][0] > 0


def test_hybrid_joins_the_event_codes_only_and_hybrid_full_joins_every_code():
    from pipelines.evaluation.compare import model_columns
    columns = ["account", "z_0", "z_1", "z_2", "z_3", "raw_amount", "agg_amount_mean", "recon_error"]
    plain = model_columns(columns)
    assert plain["hybrid"] == ["z_0", "z_1", "z_2", "z_3", "raw_amount", "agg_amount_mean"] and "hybrid_full" not in plain
    cols = model_columns(columns, {"z_2": "surprise:amount", "z_3": "surprise_mean:amount"})
    assert cols["hybrid"] == ["z_2", "z_3", "raw_amount", "agg_amount_mean"]
    assert cols["hybrid_recon"] == cols["hybrid"] + ["recon_error"]
    assert cols["hybrid_full"] == plain["hybrid"] and cols["latent"] == plain["latent"]
    assert model_columns(columns, ())["hybrid"] == plain["hybrid"]


def test_summary_statistics_of_an_entity_code_are_left_to_the_aggregates():
    from pipelines.evaluation.compare import model_columns
    columns = ["account", "z_0", "z_1", "z_2", "z_3", "raw_amount", "agg_amount_mean"]
    cols = model_columns(columns, (), {"z_2": "mean:amount", "z_3": "std:amount"})
    assert cols["latent"] == ["z_0", "z_1"] and cols["hybrid"] == ["z_0", "z_1", "raw_amount", "agg_amount_mean"]


def test_bar_plot_draws_a_point_outside_its_interval(tmp_path):
    from pipelines.evaluation.report import _bars
    # with few positives a bootstrap percentile interval need not hold the point estimate
    metrics = {"models": {"aggregates": {"pr_auc": 0.40, "pr_auc_ci": [0.45, 0.90]},
                          "hybrid": {"pr_auc": 0.95, "pr_auc_ci": [0.50, 0.93]}}}
    _bars(metrics, tmp_path / "bars.png")
    assert (tmp_path / "bars.png").stat().st_size > 0


def test_new_for_this_entity_is_one_definition_for_the_encoder_inputs_and_the_baselines(sim):
    """The encoder's novelty channel and ``agg_<c>_is_new`` mark the same rows: a value absent from
    its entity's earlier events, never on an entity's first event."""
    from encoder import EncoderConfig, SequenceEncoder
    df = sim.head(400)
    feats, _ = _features(df)
    enc = SequenceEncoder("account", "ts", "is_fraud", EncoderConfig.of(epochs=0, max_len=8, kernel_features=0))
    data, arrays = enc.fit(df).prepare(df)
    names = enc.preprocessor_.numeric_channels  # the numeric input channels, novelty ones included
    inverse = np.empty_like(data.order)
    inverse[data.order] = np.arange(len(data.order))
    for c in ("merchant", "country"):
        channel = arrays.num[:, names.index(f"{c}__new")][inverse]  # back to input order
        np.testing.assert_array_equal(channel, feats[f"agg_{c}_is_new"].to_numpy())
        by_hand = [float(v not in set(g.iloc[:i]) and i > 0) for _, g in df.groupby("account")[c]
                   for i, v in enumerate(g)]
        order = df.sort_values(["account", "ts"], kind="stable").index
        np.testing.assert_array_equal(np.asarray(by_hand), feats.loc[order, f"agg_{c}_is_new"].to_numpy())
