"""Reading, schema inference, validation and ordering of event tables."""
import numpy as np
import pandas as pd
import pytest

from encoder import events as ev
from encoder.io.errors import InputError


def test_infer_schema_roles_and_overrides(events):
    cols, kinds = list(events.columns), {c: ev.dtype_kind(events[c].dtype) for c in events}
    s = ev.infer_schema("x", cols, kinds, "account", "ts", "label")
    assert s.numeric == ("signal", "amount") and s.categorical == ("channel",)
    s = ev.infer_schema("x", cols, kinds, "account", "ts", None, categorical=["signal"], drop=["amount"])
    assert s.numeric == ("label",) and s.categorical == ("signal", "channel")


def test_missing_id_column_names_it_and_lists_columns(events):
    cols, kinds = list(events.columns), {c: ev.dtype_kind(events[c].dtype) for c in events}
    with pytest.raises(InputError) as e:
        ev.infer_schema("f.parquet", cols, kinds, "acct", "ts")
    assert str(e.value) == ("--id column 'acct' is not in 'f.parquet' "
                            "(columns: account, ts, signal, amount, channel, label)")


def test_read_parquet_csv_and_directory(events, tmp_path):
    events.to_parquet(tmp_path / "a.parquet")
    events.to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "d").mkdir()
    events.iloc[:10].to_parquet(tmp_path / "d" / "p1.parquet")
    events.iloc[10:].to_parquet(tmp_path / "d" / "p2.parquet")
    for src in ("a.parquet", "a.csv", "d"):
        df = ev.read_events(tmp_path / src, ["account", "signal"])
        assert list(df.columns) == ["account", "signal"] and len(df) == len(events)


def test_read_errors(tmp_path):
    with pytest.raises(InputError, match=r"^file '.*nope.parquet' does not exist$"):
        ev.read_events(tmp_path / "nope.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"bad.parquet' is not a readable Parquet file"):
        ev.read_events(tmp_path / "bad.parquet")
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(InputError, match=r"empty.parquet' holds no rows$"):
        ev.read_events(tmp_path / "empty.parquet")


def test_time_values_parse_and_refuse():
    s = pd.Series(["2024-01-01T00:00:00", "2024-01-01T00:00:10"], name="ts")
    assert np.allclose(np.diff(ev.time_values(s, "f")), 10.0)
    with pytest.raises(InputError, match=r"^time column 'ts' in 'f': cannot parse 'soon' as a time$"):
        ev.time_values(pd.Series(["2024-01-01", "soon"], name="ts"), "f")
    with pytest.raises(InputError, match=r"^time column 'ts' in 'f' mixes types \(int, str\)$"):
        ev.time_values(pd.Series([1, "2024-01-01"], name="ts", dtype=object), "f")


def test_sort_is_stable_by_entity_then_time():
    codes = np.array([1, 0, 1, 0, 0])
    times = np.array([5.0, 2.0, 5.0, 1.0, 2.0])
    assert ev.sort_order(codes, times).tolist() == [3, 1, 4, 0, 2]
    # already in order (ties included): the one-pass check returns the identity, as lexsort would
    in_order = np.array([0, 0, 0, 1, 1]), np.array([1.0, 2.0, 2.0, 0.0, 3.0])
    assert ev.sort_order(*in_order).tolist() == [0, 1, 2, 3, 4]
    # one time step out of order inside an entity is caught
    assert ev.sort_order(np.array([0, 0, 1]), np.array([2.0, 1.0, 0.0])).tolist() == [1, 0, 2]
    rng = np.random.default_rng(0)
    for n_entities in (5, 70000):  # one and two 16-bit digits of entity code
        c, t = rng.integers(0, n_entities, 3000), rng.integers(0, 4, 3000).astype(float)
        assert (ev.sort_order(c, t) == np.lexsort((t, c))).all()  # any order, with time ties
        t_log = np.sort(t)  # a log in time order, entities interleaved
        assert (ev.sort_order(c, t_log) == np.lexsort((t_log, c))).all()
        assert (ev.stable_argsort_codes(c) == np.argsort(c, kind="stable")).all()
    assert ev.sort_order(np.array([0]), np.array([0.0])).tolist() == [0]
    assert ev.entity_starts(np.array([0, 0, 0, 1, 1])).tolist() == [0, 0, 0, 3, 3]


def test_a_few_iso_times_are_read_without_pandas_to_the_same_float():
    """A scoring request's times take ``_iso_seconds``; they must equal the pandas reading bit for bit."""
    from encoder.events import _iso_seconds
    cases = ["2027-01-15T08:00:00.000+00:00", "2026-03-01T12:00:00Z", "2026-03-01 12:00:00", "2026-03-01",
             "2026-03-01T12:00:00.123456-05:30", "1969-12-31T23:59:59.999999Z", "2026-03-01T12:00:00.5+02:00"]
    rng = np.random.default_rng(0)
    cases += [pd.Timestamp(int(u) * 1000, tz="UTC").isoformat() for u in rng.integers(-2 * 10 ** 15, 4 * 10 ** 15, 200)]
    by_pandas = ev.time_values(pd.to_datetime(pd.Series(cases, name="t"), format="ISO8601", utc=True), "x")
    np.testing.assert_array_equal(_iso_seconds(cases), by_pandas)
    np.testing.assert_array_equal(ev.time_values(pd.Series(cases[:50], name="t"), "x"), by_pandas[:50])
    for other in ("2026-03-01T12:00:00.1234567Z", "03/01/2026", "2026-02-30", "2026-03-01T25:00:00"):
        assert _iso_seconds([other]) is None  # left to pandas, which reads or refuses it as before
