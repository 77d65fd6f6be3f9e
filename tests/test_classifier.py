"""LatentClassifier and threshold policies: it learns, policies meet targets, save/load, guards, errors."""
import json

import numpy as np
import pandas as pd
import pytest

from classifier import LatentClassifier, choose_threshold, parse_policy
from classifier.blend import predict_members
from classifier.data import FeatureTable
from encoder.io.errors import ArtifactError, InputError


def toy(n=400, classes=2, seed=0, pos_rate=None):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"z_{i}" for i in range(4)])
    if classes == 2:
        cut = np.quantile(X.z_0, 1 - (pos_rate or 0.5))
        y = (X.z_0 > cut).astype(int)
    else:
        y = pd.Series(np.array(["a", "b", "c"])[np.digitize(X.z_1, [-0.5, 0.5])])
    return X, y


@pytest.mark.parametrize("classes", [2, 3])
def test_it_learns_separable_toy(classes):
    X, y = toy(classes=classes)
    clf = LatentClassifier(seed=0, max_rounds=200).fit(X, y)  # separable: log-loss falls for ever
    Xt, yt = toy(classes=classes, seed=1)
    assert (clf.predict(Xt) == yt.to_numpy()).mean() > 0.9
    if classes == 3:
        assert clf.classes_ == ["a", "b", "c"]


@pytest.mark.parametrize("policy, check", [
    ("precision:0.8", lambda y, d: y[d].mean() >= 0.8),
    ("recall:0.7", lambda y, d: y[d].sum() / y.sum() >= 0.7),
    ("fpr:0.05", lambda y, d: (d & ~y).sum() / (~y).sum() <= 0.05),
    ("budget:0.1", lambda y, d: d.mean() >= 0.1),
])
def test_policies_meet_their_targets_on_the_data_they_chose_on(policy, check):
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.2
    score = np.clip(y * 0.3 + rng.random(2000) * 0.8, 0, 1)
    thr = choose_threshold(y, score, parse_policy(policy))
    assert check(y, score >= thr)


@pytest.mark.parametrize("policy", ["max_f1", "precision:0.8", "recall:0.7", "fpr:0.05", "budget:0.1"])
def test_threshold_lies_midway_to_the_next_lower_score(policy):
    rng = np.random.default_rng(2)
    y = rng.random(300) < 0.3
    score = np.round(y * 0.3 + rng.random(300) * 0.8, 3)  # ties, as scores have
    thr = choose_threshold(y, score, parse_policy(policy))
    alerted, rest = score[score >= thr], score[score < thr]
    assert len(alerted) and len(rest)
    assert thr == pytest.approx((alerted.min() + rest.max()) / 2)


def test_separated_scores_get_the_threshold_in_the_gap():
    y = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    score = np.array([0.02, 0.10, 0.20, 0.60, 0.86, 0.95])
    assert choose_threshold(y, score, parse_policy("max_f1")) == pytest.approx(0.40)
    assert choose_threshold(y[3:], score[3:], parse_policy("max_f1")) == pytest.approx(0.60)  # nothing lower


def test_max_f1_is_the_best_f1():
    rng = np.random.default_rng(1)
    y = rng.random(500) < 0.3
    score = y * 0.4 + rng.random(500)
    thr = choose_threshold(y, score, parse_policy("max_f1"))

    def f1(t):
        d = score >= t
        tp = (d & y).sum()
        return 2 * tp / (d.sum() + y.sum())
    assert f1(thr) >= max(f1(t) for t in np.unique(score)) - 1e-12


def test_unknown_policy_names_it():
    with pytest.raises(InputError) as e:
        parse_policy("top10")
    assert str(e.value) == "unknown threshold policy 'top10'; expected max_f1, precision:P, recall:R, fpr:F or budget:K"


def test_imbalanced_binary_records_weight_and_threshold():
    X, y = toy(n=1000, pos_rate=0.05)
    clf = LatentClassifier(threshold_policy="recall:0.9").fit(X, y)
    assert clf.fit_info_["scale_pos_weight"] > 1 and 0 < clf.threshold_ < 1
    assert clf.validation_["recall"] >= 0.9


def test_binary_prediction_is_the_likelier_class_and_the_decision_follows_the_policy():
    X, y = toy(n=400, seed=3)
    X["z_0"] += np.random.default_rng(4).normal(scale=1.0, size=len(X))  # overlapping classes
    clf = LatentClassifier(threshold_policy="recall:0.99", seed=0).fit(X, y)
    assert clf.threshold_ < 0.3  # a policy for the positives' sake: far below 0.5
    t = FeatureTable(X.assign(k=range(len(X))), ["k"], list(X.columns))
    p = clf.predict_frame(t)
    assert (p["decision"] == (p["score"] >= clf.threshold_)).all()
    assert (p["prediction"] == (p["score"] >= 0.5).astype(int)).all()
    assert (p["decision"] & (p["prediction"] == 0)).sum() > 20  # alerted, yet likelier negative
    assert (clf.predict(X) == p["prediction"].to_numpy()).all()


def test_small_data_decides_on_out_of_fold_predictions():
    X, y = toy(n=120)
    clf = LatentClassifier(seed=0).fit(X, y)
    assert clf.fit_info_["split"] == "5-fold stratified" and clf.fit_info_["refit"]
    assert clf.fit_info_["n_validation"] == len(y)  # every row held out exactly once
    one = LatentClassifier(seed=0, cv_folds=1).fit(X, y)
    assert one.fit_info_["split"] == "stratified" and one.fit_info_["n_validation"] == 24
    times = np.arange(len(y))  # rows in time order are never shuffled into folds
    assert LatentClassifier(seed=0).fit(X, y, times=times).fit_info_["split"] == "time"


def test_early_stopping_does_not_stall_when_the_ranking_is_already_perfect(monkeypatch):
    # 50 well separated rows: every held-out fold is ranked perfectly after one round, so a
    # ranking metric (AUC, PR-AUC) cannot improve and would stop there with scores near 0.5.
    import classifier.params
    monkeypatch.setattr(classifier.params, "LINEAR_LAMBDAS", ())  # trees only: their early stopping is tested
    X, y = toy(n=50)
    X["z_0"] += np.where(y == 1, 2.0, -2.0)
    clf = LatentClassifier(seed=0).fit(X, y)
    assert clf.rounds_ > 20
    proba = clf.predict_proba(X)[:, 1]
    assert proba[y.to_numpy() == 1].min() > 0.7 and proba[y.to_numpy() == 0].max() < 0.3


def test_save_load_predicts_the_same(tmp_path):
    X, y = toy()
    clf = LatentClassifier().fit(X, y, encoder_id="abc")
    clf.save(tmp_path / "c")
    again = LatentClassifier.load(tmp_path / "c")
    t = FeatureTable(X.assign(k=range(len(X))), ["k"], list(X.columns), encoder_id="abc")
    pd.testing.assert_frame_equal(clf.predict_frame(t), again.predict_frame(t))
    m = json.loads((tmp_path / "c/manifest.json").read_text())
    assert m["encoder_id"] == "abc" and m["features"] == list(X.columns) and m["classes"] == [0, 1]


def test_encoder_guard_names_both_ids():
    X, y = toy()
    clf = LatentClassifier().fit(X, y, encoder_id="a" * 64)
    with pytest.raises(ArtifactError) as e:
        clf.check_encoder(FeatureTable(X, [], list(X.columns), encoder_id="b" * 64, source="z.parquet"), "clf")
    assert str(e.value) == f"latents 'z.parquet' come from encoder {'b' * 12}, but classifier 'clf' was trained on encoder {'a' * 12}"


def test_corrupted_model_is_refused(tmp_path):
    X, y = toy()
    LatentClassifier().fit(X, y).save(tmp_path / "c")
    (tmp_path / "c/model.ubj").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        LatentClassifier.load(tmp_path / "c")


def test_feature_mismatch_and_nan_are_named():
    X, y = toy()
    clf = LatentClassifier().fit(X, y)
    with pytest.raises(InputError) as e:
        clf.predict(X.drop(columns="z_3").assign(extra=1.0))
    assert str(e.value) == "features of '<DataFrame>' differ from training: missing ['z_3'], extra ['extra']"
    with pytest.raises(InputError) as e:
        clf.predict(X.assign(z_2=np.nan))
    assert str(e.value) == f"feature column 'z_2' in '<DataFrame>' has {len(X)} NaN or infinite values"


def test_labels_written_as_text_are_evaluated_as_the_numbers_they_were_trained_as():
    X, y = toy()  # classes 0 and 1, as a CSV reads them
    clf = LatentClassifier().fit(X, y)
    as_numbers = clf.evaluate(X, y)
    assert clf.evaluate(X, y.astype(str)) == as_numbers  # the same labels, as a Parquet file may hold them
    with pytest.raises(InputError) as e:
        clf.evaluate(X, y.astype(str).replace("1", "yes"))
    assert str(e.value) == "labels ['yes'] were not seen in training (classes: ['0', '1'])"


def test_explanations_name_the_driving_feature():
    X, y = toy()
    clf = LatentClassifier().fit(X, y)
    out = clf.predict_frame(FeatureTable(X, [], list(X.columns)), explain=2)
    assert (out["explain_1"] == "z_0").mean() > 0.9 and "contribution_2" in out


def oblique(n, seed, classes=2):
    """Classes cut along the sum of 8 features: hard for a few axis-aligned splits, easy for a line."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 8)) * np.arange(1, 9) + 5, columns=[f"z_{i}" for i in range(8)])
    total = ((X - 5) / np.arange(1, 9)).sum(axis=1)  # (n,) ~ N(0, 8)
    return X, pd.Series(np.digitize(total, [0.0] if classes == 2 else [-1.5, 1.5]))


@pytest.mark.parametrize("classes", [2, 3])
def test_small_data_picks_the_linear_booster_for_an_oblique_boundary(tmp_path, classes):
    X, y = oblique(60, seed=0, classes=classes)
    Xt, yt = oblique(500, seed=1, classes=classes)
    clf = LatentClassifier(seed=0).fit(X, y)
    assert clf.params_["booster"] == "gblinear" and len(clf.members_) == 1
    assert clf.members_[0].scaling["mean"][7] == pytest.approx(X.z_7.mean())
    assert (clf.predict(Xt) == yt.to_numpy()).mean() > 0.85
    clf.save(tmp_path / "c")
    again = LatentClassifier.load(tmp_path / "c")
    np.testing.assert_array_equal(clf.predict_proba(Xt), again.predict_proba(Xt))
    out = again.predict_frame(FeatureTable(Xt, [], list(Xt.columns)), explain=1)
    assert out["explain_1"].isin(Xt.columns).all()


def oblique_and_step(n, seed):
    """A line through six features plus a fold in a seventh (|z_7|): trees cut the fold, a linear
    model the line; neither alone gets both on tens of rows."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 8)), columns=[f"z_{i}" for i in range(8)])
    m = X.iloc[:, :6].sum(axis=1) / np.sqrt(6) + np.abs(X.z_7) - 0.8 + rng.normal(size=n) * 0.3
    return X, pd.Series((m > 0).astype(int))


@pytest.mark.parametrize("seed", [0, 1])
def test_small_data_blends_trees_and_a_line_where_both_are_needed(tmp_path, seed):
    X, y = oblique_and_step(80, seed)
    Xt, yt = oblique_and_step(2000, 100 + seed)
    clf = LatentClassifier(seed=0).fit(X, y)
    assert clf.fit_info_["blend"] and clf.params_["blend"] == "mean margin"
    assert ["booster" in m.params for m in clf.members_] == [False, True]  # trees, then the linear booster
    alone = [(predict_members([m], Xt.to_numpy(np.float32), clf.features_, 2)[:, 1] >= 0.5) == yt for m in clf.members_]
    blended = (clf.predict(Xt) == yt.to_numpy()).mean()
    assert blended > max(a.mean() for a in alone)  # better than either member on 2000 new rows
    clf.save(tmp_path / "c")
    assert {p.name for p in (tmp_path / "c").iterdir()} == {"manifest.json", "model.ubj", "model_1.ubj"}
    m = json.loads((tmp_path / "c/manifest.json").read_text())
    assert m["model_sha256"] not in [e["sha256"] for e in m["models"]]  # names both members
    again = LatentClassifier.load(tmp_path / "c")
    np.testing.assert_allclose(again.predict_proba(Xt), clf.predict_proba(Xt), rtol=1e-6)
    out = again.predict_frame(FeatureTable(Xt, [], list(Xt.columns)), explain=1)
    assert out["explain_1"].isin(Xt.columns).all()
    (tmp_path / "c/model_1.ubj").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        LatentClassifier.load(tmp_path / "c")


def test_a_format_2_directory_of_one_model_still_loads(tmp_path):
    X, y = oblique(60, seed=0)
    clf = LatentClassifier(seed=0).fit(X, y)
    clf.save(tmp_path / "c")
    m = json.loads((tmp_path / "c/manifest.json").read_text())
    (only,) = m.pop("models")  # format 2 described its one model at the top level
    m |= {"format_version": 2, "input_scaling": only["input_scaling"]}
    (tmp_path / "c/manifest.json").write_text(json.dumps(m))
    again = LatentClassifier.load(tmp_path / "c")
    assert again.members_[0].scaling == clf.members_[0].scaling
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_large_data_and_separable_toys_keep_the_trees():
    X, y = toy()  # one feature decides: a single split beats a line through the standardised cloud
    assert "booster" not in LatentClassifier(seed=0).fit(X, y).params_
    X, y = toy(n=6000)
    clf = LatentClassifier(seed=0).fit(X, y)
    assert not clf.fit_info_["small_data"] and clf.members_[0].scaling is None


def test_large_data_grows_a_forest_of_four_trees_per_round(tmp_path):
    X, y = toy(n=6000)
    clf = LatentClassifier(seed=0).fit(X, y)
    assert (clf.params_["num_parallel_tree"], clf.params_["subsample"], clf.params_["colsample_bynode"]) == (4, 0.6, 0.5)
    booster = clf.members_[0].booster
    trees = json.loads(booster.save_config())["learner"]["gradient_booster"]["gbtree_model_param"]["num_trees"]
    assert int(trees) == 4 * booster.num_boosted_rounds()
    again = LatentClassifier.load(clf.save(tmp_path / "clf"))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_a_model_fitted_without_refit_keeps_its_early_stopped_rounds_only(tmp_path):
    """Early stopping trains ``early_stopping`` rounds past the best; the kept booster holds the best
    rounds, so its scores on the validation rows are the held-out scores its metrics came from."""
    rng = np.random.default_rng(0)
    n = 8000
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"z_{i}" for i in range(5)])
    y = ((X.z_0 + 2 * rng.normal(size=n)) > 2).astype(int)  # noisy: validation log-loss turns up
    validation = np.arange(n) >= 6000
    clf = LatentClassifier(seed=0, early_stopping=20).fit(X, y, validation=validation)
    assert not clf.fit_info_["refit"] and clf.rounds_ < 2000
    assert clf.members_[0].booster.num_boosted_rounds() == clf.rounds_
    again = LatentClassifier.load(clf.save(tmp_path / "clf"))
    proba = again.predict_proba(X[validation])[:, 1]
    brier = np.mean((proba - y[validation].to_numpy()) ** 2)
    assert brier == pytest.approx(clf.validation_["brier"], rel=1e-5)


def test_many_classes_or_wide_rows_grow_fewer_trees_a_round_and_large_data_one_split():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(20), 10)  # 200 rows, 20 classes
    X = pd.DataFrame(rng.normal(size=(200, 3)) + y[:, None] * 0.5, columns=["z_0", "z_1", "z_2"])
    clf = LatentClassifier(seed=0, max_rounds=20, early_stopping=5).fit(X, y)
    trees = [m.params for m in clf.members_ if "booster" not in m.params]  # alone or blended
    assert all(p["num_parallel_tree"] == 1 for p in trees)  # 32 // 20 trees per class and round
    assert LatentClassifier(seed=0).booster_params({"num_parallel_tree": 16}, 20, None)["num_parallel_tree"] == 1
    assert LatentClassifier(seed=0).booster_params({"num_parallel_tree": 16}, 3, None)["num_parallel_tree"] == 10
    assert LatentClassifier(seed=0).booster_params({"num_parallel_tree": 16}, 2, None)["num_parallel_tree"] == 16
    # a round reads at most ROUND_CELLS rows x columns: thousands of rows of wide codes, one tree a class
    wide = LatentClassifier(seed=0).booster_params({"num_parallel_tree": 4}, 7, None, n_features=2572, n_rows=7140)
    assert wide["num_parallel_tree"] == 1
    assert LatentClassifier(seed=0).booster_params({"num_parallel_tree": 4}, 7, None, 2572, 1800)["num_parallel_tree"] == 2
    assert LatentClassifier(seed=0).booster_params({"num_parallel_tree": 4}, 9, None, 2572, 216)["num_parallel_tree"] == 3
    # binary rounds are not held to ROUND_CELLS; every round draws at most ROUND_ROWS training rows
    # in all its trees (rows unknown, as the Dask trainer asks: no bound)
    trees = lambda rows: LatentClassifier(seed=0).booster_params({"num_parallel_tree": 4}, 2, None, 2572, rows)["num_parallel_tree"]  # noqa: E731
    assert [trees(n) for n in (0, 5000, 100_000, 100_001, 150_000, 200_000, 200_001, 10 ** 6)] == [4, 4, 4, 3, 2, 2, 1, 1]
    assert clf.fit_info_["split"] == "5-fold stratified"
    X, y = toy(n=1200)  # a 20% split holds 240 rows: no folds
    clf = LatentClassifier(seed=0).fit(X, y)
    assert clf.fit_info_["split"] == "stratified" and clf.fit_info_["small_data"] and clf.fit_info_["refit"]


@pytest.mark.parametrize("counts, split", [
    ((10, 10, 10, 10, 10, 1, 3), "stratified; 1 single-row classes trained on only"),
    ((2,) * 30, "random, each class kept in training"),  # 12 held-out rows cannot hold 30 classes
    ((1,) * 12, "none: every class has a single row, validated on the training rows"),
])
def test_classes_with_one_or_few_rows_still_train(counts, split):
    y = np.repeat(np.arange(len(counts)), counts)
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(len(y), 3)) + y[:, None], columns=["z_0", "z_1", "z_2"])
    for seed in range(3):
        clf = LatentClassifier(seed=seed, max_rounds=30, early_stopping=5).fit(X, y)
        assert clf.fit_info_["split"] == split and len(clf.classes_) == len(counts)
        assert clf.fit_info_["n_train"] + (0 if counts[0] == 1 else clf.fit_info_["n_validation"]) == len(y)
        assert clf.predict_proba(X).shape == (len(y), len(counts))


def test_select_keeps_the_informative_features_chosen_on_training_rows_only(tmp_path):
    """3 informative columns among 20 noise ones: select=3 keeps them; the choice is made on the
    training part (the validation rows can be scrambled without changing it) and survives save/load."""
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame(rng.normal(size=(n, 23)), columns=[f"f{i}" for i in range(23)])
    y = ((X.f3 + X.f7 - X.f11 + rng.normal(0, 0.5, n)) > 0).astype(int)
    validation = np.arange(n) >= 480
    clf = LatentClassifier(seed=0, select=3).fit(X, y, validation=validation)
    assert clf.features_ == ["f3", "f7", "f11"]
    assert clf.selection_["k"] == 3 and clf.selection_["candidates"] == list(X.columns)
    assert sum(clf.selection_["inner_rows"]) == 480  # the training part only
    scrambled = X.copy()
    scrambled.loc[validation, :] = rng.normal(size=(n - 480, 23))
    assert LatentClassifier(seed=0, select=3).fit(scrambled, y, validation=validation).selection_ == clf.selection_
    proba = clf.predict_proba(X)  # a frame with the left-out columns is accepted
    clf.save(tmp_path / "c")
    back = LatentClassifier.load(tmp_path / "c")
    assert back.selection_ == clf.selection_ and np.allclose(back.predict_proba(X), proba)
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["selection"]["kept"] == ["f3", "f7", "f11"]
    with pytest.raises(InputError, match="missing \\['f7'\\]"):
        clf.predict_proba(X.drop(columns="f7"))
    assert LatentClassifier(seed=0, select=23).fit(X, y, validation=validation).selection_ is None  # nothing to drop
    with pytest.raises(InputError, match="select must be a positive number of features, got 0"):
        LatentClassifier(select=0).fit(X, y)


def stacking_toy(n, seed):
    """Binary labels from ``a_0`` (the base column) and ``z_0`` (a column the base does not see)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a_0", "a_1", "z_0"])
    y = ((X.a_0 + X.z_0 + 0.5 * rng.normal(size=n)) > 1.0).astype(int)
    return X, y


@pytest.mark.parametrize("n", [300, 6000])  # refitted (small data), and kept from the split
def test_a_stacked_model_adds_what_the_other_columns_say_to_its_base(n, tmp_path):
    X, y = stacking_toy(n, 0)
    validation = np.arange(n) >= int(0.75 * n)
    base = LatentClassifier(seed=0).fit(X[["a_0", "a_1"]], y, validation=validation)
    clf = LatentClassifier(seed=0, base_features=["a_0", "a_1"]).fit(X, y, validation=validation)
    stacked = clf.fit_info_["stacked"]
    assert stacked["stage_1_rounds"] > 0 and clf.fit_info_["refit"] == (n < 5000)
    assert stacked["validation_logloss"]["stacked"] < stacked["validation_logloss"]["base"]
    assert [(m.columns, m.stage) for m in clf.members_][-1] == (None, 1)
    assert all(m.columns == ["a_0", "a_1"] for m in clf.members_[:-1])
    Xt, yt = stacking_toy(1500, 1)
    np.testing.assert_allclose(predict_members(clf.members_[:-1], Xt.to_numpy(np.float32), clf.features_, 2),
                               base.predict_proba(Xt[["a_0", "a_1"]]), rtol=1e-5, atol=1e-6)  # stage 0 is the base model
    acc = lambda model, cols: ((model.predict_proba(Xt[cols])[:, 1] >= 0.5) == yt).mean()  # noqa: E731
    assert acc(clf, list(X.columns)) > acc(base, ["a_0", "a_1"]) + 0.05
    again = LatentClassifier.load(clf.save(tmp_path / "clf"))
    np.testing.assert_array_equal(again.predict_proba(Xt), clf.predict_proba(Xt))
    entries = json.loads((tmp_path / "clf" / "manifest.json").read_text())["models"]
    assert [e["stage"] for e in entries][-1] == 1 and entries[0]["columns"] == ["a_0", "a_1"]
    out = again.predict_frame(FeatureTable(Xt.assign(key=np.arange(len(Xt))), ["key"], list(X.columns)), explain=3)
    share = out.explain_1.value_counts(normalize=True)
    assert share.get("z_0", 0) > 0.3 and share.get("a_1", 0) < 0.1  # the stage-1 column explains, the noise hardly
    margin = np.log(out.score / (1 - out.score))
    # the three features' contributions plus the bias give the margin; the bias is shared, so the
    # contributions alone differ from the margin by one constant
    parts = out[["contribution_1", "contribution_2", "contribution_3"]].sum(1)
    assert np.ptp(margin - parts) < 1e-3


@pytest.mark.parametrize("n", [300, 6000])
def test_a_stacked_model_takes_its_base_already_fitted_on_the_same_rows_and_comes_out_the_same(n):
    X, y = stacking_toy(n, 0)
    validation = np.arange(n) >= int(0.75 * n)
    base = LatentClassifier(seed=0).fit(X[["a_0", "a_1"]], y, validation=validation)
    fresh = LatentClassifier(seed=0, base_features=["a_0", "a_1"]).fit(X, y, validation=validation)
    reused = LatentClassifier(seed=0, base_features=["a_0", "a_1"]).fit(X, y, validation=validation, base_model=base)
    assert reused.members_[0].booster is base.members_[0].booster  # taken, not fitted again
    Xt, _ = stacking_toy(1500, 1)
    np.testing.assert_array_equal(reused.predict_proba(Xt), fresh.predict_proba(Xt))
    assert reused.fit_info_ == fresh.fit_info_ and reused.threshold_ == fresh.threshold_
    # a base of other rows, other columns or other parameters is not taken
    for other in (LatentClassifier(seed=0).fit(X[["a_0", "a_1"]][:-7], y[:-7], validation=validation[:-7]),
                  LatentClassifier(seed=0).fit(X[["a_1", "a_0"]], y, validation=validation),
                  LatentClassifier(seed=1).fit(X[["a_0", "a_1"]], y, validation=validation)):
        clf = LatentClassifier(seed=0, base_features=["a_0", "a_1"]).fit(X, y, validation=validation, base_model=other)
        assert clf.members_[0].booster is not other.members_[0].booster
        np.testing.assert_array_equal(clf.predict_proba(Xt), fresh.predict_proba(Xt))


def test_a_stacked_model_whose_other_columns_say_nothing_is_its_base():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(6000, 3)), columns=["a_0", "a_1", "noise"])
    y = (rng.random(len(X)) < 0.3).astype(int)  # labels unrelated to every column: the trees find nothing to add
    validation = np.arange(len(X)) >= 4500
    clf = LatentClassifier(seed=0, base_features=["a_0", "a_1"]).fit(X, y, validation=validation)
    base = LatentClassifier(seed=0).fit(X[["a_0", "a_1"]], y, validation=validation)
    assert clf.fit_info_["stacked"]["stage_1_rounds"] == 0 and [m.stage for m in clf.members_] == [0]
    np.testing.assert_array_equal(clf.predict_proba(X), base.predict_proba(X[["a_0", "a_1"]]))


@pytest.mark.parametrize("base, message", [
    (["a_0", "nope"], "unknown: ['nope']"), (["a_0", "a_1", "z_0"], "every column"), ([], "distinct columns")])
def test_bad_base_features_are_refused(base, message):
    X, y = stacking_toy(300, 0)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        LatentClassifier(seed=0, base_features=base).fit(X, y)
    with pytest.raises(InputError, match="cannot be combined"):
        LatentClassifier(seed=0, base_features=["a_0"], select=2).fit(X, y)


def test_a_tree_reads_at_most_tree_columns_of_wide_inputs():
    from classifier.params import EXACT_TREE_COLUMNS, TREE_COLUMNS, linear_params, search_candidates
    clf = LatentClassifier(seed=0)
    for small_data, columns in ((True, EXACT_TREE_COLUMNS), (False, TREE_COLUMNS)):  # exact trees, hist trees
        trees = search_candidates(1, 0, small_data=small_data)[0]
        assert (trees["tree_method"] == "exact") == small_data
        narrow = int(columns / trees["colsample_bytree"])
        assert clf.booster_params(trees, 2, None, narrow)["colsample_bytree"] == trees["colsample_bytree"]  # narrow: as given
        wide = clf.booster_params(trees, 3, None, 4 * columns)
        assert wide["colsample_bytree"] * 4 * columns == pytest.approx(columns)
    assert "colsample_bytree" not in clf.booster_params(linear_params(0.1), 2, None, 4 * TREE_COLUMNS)
