"""Online scoring: each new event scored from its entity's stored state, with the batch job's scores.

An entity's state (``EntityState``, JSON) holds what scoring its next event needs:

- ``tail``: its latest raw events (at least the encoder's window plus one, every event of the
  baseline features' long time window, at most ``TAIL_CAP``), from which the batch code computes
  the window-bound inputs: scaled values, time gap, lags, window statistics, time-window sums;
- the quantities that depend on the whole history, carried as counts: events so far, how often
  each category value was seen (novelty channels, ``agg_*_seen_before``, ``is_new``, ``share``),
  and each tail event's "new for this entity" flags;
- for a causal encoder, the LSTM states and the running sum and max of its step codes: a new event
  costs one LSTM step (``SequenceEncoderNet.step``), whatever the history's length. A windowed
  encoder reads the window from the tail instead.

``OnlineScorer.score`` takes a batch of events (several entities, several events each, in time
order per entity) and scores it in waves (each entity's first event of the batch, then its second,
...). A wave is NumPy and plain lists, no DataFrame: the fitted ``Preprocessor.transform`` on the
tails, one encoder step, ``features.latest_features`` (the batch formulas, for the newest rows, given
the stored counts as a ``features.History``), ``LatentClassifier.predict_rows``; the parity test holds it to ``pipeline
score``'s scores. States are written back in one transaction when the whole batch succeeded; a
rejected batch changes nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time as wallclock
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from encoder import events as ev
from encoder.io.errors import InputError
from encoder.nn.surprise import TREND_CARRY
from encoder.preprocessing import category_strings
from encoder.sequences import EventArrays, gather_windows
from pipelines.features import History, category_history, latest_features
from pipelines.scoring.models import load_models
from pipelines.scoring.state_store import EntityState, open_store

TAIL_CAP = 4096  # most raw events kept per entity (the long time window may hold more: then it is cut)
LOCK_STRIPES = 64  # entity locks: requests for different entities score at once, one entity's in turn
RESULTS_KEPT = 64  # answers kept per entity, by event key: a retry within the latest 64 events is recognised
MAX_NUMBER = float(np.finfo(np.float32).max)  # the encoder and classifier compute in float32
MAX_CATEGORY_CHARS = 256  # a longer category value is refused: no vocabulary holds one, and it would bloat the state
TIME = "__time"  # tail column of event times in seconds


class LateEvent(InputError):
    """An event earlier than its entity's latest scored event (HTTP 409)."""


class BatchTooLarge(InputError):
    """More events in one request than ``max_batch`` (HTTP 413)."""


def _classifier_id(classifier_dir: Path) -> str:
    return json.loads((classifier_dir / "manifest.json").read_text())["model_sha256"]


class OnlineScorer:
    """Scores events one step per entity from stored states; same scores as ``pipeline score``.

    Parameters
    ----------
    encoder_dir, classifier_dir : the models (``unit="event"`` encoder; the classifier trained on its
        codes, with or without baseline features; not on reconstruction error).
    store : a state store (``state_store.open_store``) or a path / ``redis://`` URL.
    allow_late : accept an event earlier than its entity's latest, scored as if it came at that
        latest time (so its time gap is 0), instead of refusing it; such scores no longer match
        the batch job, which puts every event in time order.
    max_batch : most events in one call.
    event_id : column that identifies an event; without it, an event is identified by a digest of
        its columns. A retried event (same key, within its entity's latest ``RESULTS_KEPT``)
        gets its stored answer back and changes no state.
    locks : the ``LOCK_STRIPES`` entity locks [threading locks of this scorer's own]; scorers in
        several processes sharing one store share process-shared locks (``workers.ScoringPool``).
    """

    def __init__(self, encoder_dir, classifier_dir, store, allow_late: bool = False, ttl: float | None = None,
                 max_batch: int = 10000, event_id: str | None = None, locks=None):
        models = load_models(encoder_dir, classifier_dir)
        self.encoder, self.classifier = models.encoder, models.classifier
        enc = models.encoder
        if enc.config_.data.unit != "event":
            raise InputError(f"encoder '{encoder_dir}' codes whole entities (unit entity); serving scores events")
        if models.reconstruction_error:
            raise InputError(f"classifier '{classifier_dir}' uses the reconstruction error, which is not served; "
                             "serve the latent or hybrid model")
        self.needs_base, self.recipe = models.needs_base, models.recipe
        self.store = open_store(store, ttl) if isinstance(store, (str, Path)) else store
        self.allow_late, self.max_batch, self.event_id = allow_late, max_batch, event_id
        self.locks = list(locks) if locks is not None else [threading.Lock() for _ in range(LOCK_STRIPES)]
        self.schema = enc.schema_
        self.encoder_id, self.classifier_id = enc.encoder_id, _classifier_id(Path(classifier_dir))
        self.causal = enc.model_config_.causal
        self.max_len = enc.max_len_
        cfg = enc.config_
        self.keep_rows = self.max_len + max([1, *cfg.data.lags, *cfg.data.rolling])  # window + predecessors of its rows
        self.long_window_s = self.recipe.long_window_s if self.recipe else 0.0
        self.novelty_channels = self._novelty_channels()

    def use_threads(self, n: int) -> None:
        """Run the encoder step (torch, process-wide) and the classifier (XGBoost) on ``n`` threads."""
        torch.set_num_threads(n)
        for member in self.classifier.members_:
            member.booster.set_param({"nthread": n})

    # ------------------------------------------------------------------ input
    def _novelty_channels(self) -> list[int]:
        """Column of each categorical column's "new for this entity" channel in the model input."""
        if not self.encoder.config_.data.novelty:
            return []
        names = self.encoder.preprocessor_.numeric_channels
        return [names.index(f"{c}__new") for c in self.schema.categorical]

    def frame(self, records) -> tuple[dict, np.ndarray]:
        """Validate a JSON batch (a list of event objects) into columns (column -> list of values;
        numbers as floats, NaN for null) and float times."""
        if not isinstance(records, list) or not records:
            raise InputError("the request body must be one event object or a non-empty list of them")
        if len(records) > self.max_batch:
            raise BatchTooLarge(f"a batch holds {len(records)} events, more than the limit of {self.max_batch}")
        if not all(isinstance(r, dict) for r in records):
            raise InputError("every event must be a JSON object of column: value")
        s = self.schema
        needed = [s.id_col, s.time_col, *s.features]
        for i, r in enumerate(records):
            missing = [c for c in needed if c not in r]
            if missing:
                raise InputError(f"event {i} lacks column '{missing[0]}'")
        cols = {c: [r[c] for r in records] for c in needed}
        for c in s.numeric:
            bad = [v for v in cols[c] if v is not None and (isinstance(v, (bool, str, list, dict)))]
            if bad:
                raise InputError(f"column '{c}' must be a number or null, got {bad[0]!r}")
            try:
                cols[c] = [math.nan if v is None else float(v) for v in cols[c]]
            except OverflowError:
                raise InputError(f"column '{c}' holds a number too large for a float") from None
            huge = [v for v in cols[c] if abs(v) > MAX_NUMBER]  # NaN compares False: a null passes
            if huge:
                raise InputError(f"column '{c}' holds {huge[0]!r}, beyond the range the model computes in "
                                 f"(±{MAX_NUMBER:.1e})")
        for c in s.categorical:
            bad = [v for v in cols[c] if isinstance(v, (list, dict))]
            if bad:
                raise InputError(f"column '{c}' must be a string, number, boolean or null, got {bad[0]!r}")
            long = [v for v in cols[c] if isinstance(v, str) and len(v) > MAX_CATEGORY_CHARS]
            if long:
                raise InputError(f"column '{c}' holds a value of {len(long[0])} characters, more than "
                                 f"{MAX_CATEGORY_CHARS}")
        bad_ids = [v for v in cols[s.id_col] if v is None or isinstance(v, (list, dict, float))]
        if bad_ids:
            raise InputError(f"column '{s.id_col}' must be a string or an integer, got {bad_ids[0]!r}")
        times = ev.event_times(pd.Series(cols[s.time_col], name=s.time_col), s, "the request")
        if not np.isfinite(times).all() or (np.abs(times) > 1e15).any():
            raise InputError(f"time column '{s.time_col}' holds a time out of range")
        return cols, times

    def event_keys(self, records: list[dict]) -> list[str]:
        """Each event's key: its ``event_id`` column, or a digest of its columns (key order aside)."""
        if self.event_id is None:
            return [hashlib.sha256(json.dumps(r, sort_keys=True, default=str).encode()).hexdigest() for r in records]
        keys = []
        for i, r in enumerate(records):
            v = r.get(self.event_id)
            if v is None or isinstance(v, (list, dict, float, bool)):
                raise InputError(f"event {i} needs the event id column '{self.event_id}' as a string or an integer, "
                                 f"got {v!r}")
            keys.append(json.dumps(v))
        return keys

    # ------------------------------------------------------------------ scoring
    def score(self, records) -> list[dict]:
        """Score a batch of events; returns one result per event, in request order. An event already
        scored (its key among its entity's stored answers, or earlier in the batch) gets that answer
        again, marked ``"duplicate": true``, and changes no state."""
        cols, times = self.frame(records)
        events = self.event_keys(records)
        keys = [json.dumps(v) for v in cols[self.schema.id_col]]
        stripes = sorted({int(hashlib.blake2b(k.encode(), digest_size=4).hexdigest(), 16) % LOCK_STRIPES for k in keys})
        with contextlib.ExitStack() as held:  # the entities' locks, in one order: no deadlock
            for i in stripes:
                held.enter_context(self.locks[i])
            return self._score_locked(cols, times, events, keys)

    def _score_locked(self, cols: dict, times: np.ndarray, events: list[str], keys: list[str]) -> list[dict]:
        """``score`` once its entities are locked: read their states, score in waves, commit."""
        ids = cols[self.schema.id_col]
        states = self.store.get_many(sorted(set(keys)))
        first: dict[tuple, int] = {}  # (entity, event key) -> the batch row that scores it
        repeat = {}  # batch row -> the stored answer it repeats, or the row whose answer it repeats
        for i, (k, e) in enumerate(zip(keys, events)):
            stored = states[k].results.get(e) if k in states else None
            if stored is not None:
                repeat[i] = stored
            elif (k, e) in first:
                repeat[i] = first[(k, e)]
            else:
                first[(k, e)] = i
        last = {k: states[k].last_time if k in states else -math.inf for k in set(keys)}
        wave = np.full(len(keys), -1, dtype=np.int64)
        seen_in_batch: dict[str, int] = {}
        for i, (k, t) in enumerate(zip(keys, times)):
            if i in repeat:
                continue
            if t < last[k]:
                if not self.allow_late:
                    raise LateEvent(f"event {i} of entity {ids[i]!r} at {cols[self.schema.time_col][i]} is earlier "
                                    "than the entity's latest scored event; pass --allow-late to accept it")
                times[i] = last[k]  # a late event is scored as if it came now, right after the latest
            last[k] = max(last[k], times[i])
            wave[i] = seen_in_batch.get(k, 0)
            seen_in_batch[k] = wave[i] + 1
        results: list[dict | None] = [None] * len(keys)
        for w in range(int(wave.max()) + 1):
            rows = np.flatnonzero(wave == w)
            part = {c: [v[i] for i in rows] for c, v in cols.items()}
            for i, result in zip(rows, self._score_wave(part, times[rows], [keys[i] for i in rows], states)):
                results[i] = result
                answers = states[keys[i]].results
                answers[events[i]] = result
                while len(answers) > RESULTS_KEPT:
                    del answers[next(iter(answers))]  # the oldest answer
        for i, r in repeat.items():
            results[i] = {**(r if isinstance(r, dict) else results[r]), "duplicate": True}
        changed = {keys[i] for i in range(len(keys)) if i not in repeat}
        now = wallclock.time()
        for k in changed:
            states[k].updated = now
        if changed:
            self.store.put_many({k: states[k] for k in changed})
        return results

    def _score_wave(self, new: dict, t_new: np.ndarray, keys: list[str], states: dict) -> list[dict]:
        """One event per entity: each entity's tail and new event as NumPy columns, the model inputs
        from the fitted preprocessing, one encoder step, the newest rows' features (``latest_features``
        and the stored counts), then the classifier on a plain matrix."""
        s = self.schema
        olds = [states.get(k) or EntityState() for k in keys]
        sizes = np.array([len(st.tail.get(TIME, ())) + 1 for st in olds])
        ends = np.cumsum(sizes) - 1
        starts = np.repeat(ends - sizes + 1, sizes)  # (N,) first row of each row's entity
        times = np.fromiter(chain.from_iterable(chain(st.tail.get(TIME, ()), (t,)) for st, t in zip(olds, t_new)),
                            np.float64, len(starts))
        columns = {}
        for c in s.features:  # tails then new event, per entity: (N,) float64, or strings for categories
            flat = list(chain.from_iterable(chain(st.tail.get(c, ()), (v,)) for st, v in zip(olds, new[c])))
            columns[c] = np.array([np.nan if v is None else v for v in flat], np.float64) if c in s.numeric else \
                category_strings(flat)  # object strings, not pandas' arrow strings
        num, cat = self.encoder.preprocessor_.transform(columns, times, starts)

        values = {c: columns[c][ends] for c in s.categorical}  # the new events' values
        before = np.array([st.count for st in olds], dtype=np.float64)
        seen = {c: np.array([st.seen.get(c, {}).get(v, 0) for st, v in zip(olds, values[c])], dtype=np.float64)
                for c in s.categorical}
        is_new = {c: category_history(c, seen[c], before)[f"agg_{c}_is_new"] for c in s.categorical}
        if self.novelty_channels:  # novelty over the whole history, not the tail
            for j, c in enumerate(s.categorical):
                flags = np.concatenate([np.r_[np.asarray(st.tail_new.get(c, []), dtype=np.float32), is_new[c][e]]
                                        for e, st in enumerate(olds)])
                num[:, self.novelty_channels[j]] = flags
        with torch.inference_mode():
            if self.causal:
                z = self._step(num[ends], cat[ends], olds)
            else:
                wnum, wcat, lengths = gather_windows(EventArrays(num, cat, starts), ends, self.max_len)
                z = self.encoder.event_net()(wnum.double(), wcat, lengths).float().numpy()  # as the batch job
        named = {f"z_{k}": z[:, k] for k in range(z.shape[1])}
        if self.needs_base:
            flags = {c: np.concatenate([np.r_[np.asarray(st.tail_new.get(c, []), dtype=np.float64), 0.0] for st in olds])
                     for c in s.categorical}  # (N,): the tails' flags, then a place for the new event's
            named |= latest_features(self.recipe, columns, times, starts, ends, History(before, seen, flags))
        X = np.column_stack([named[f] for f in self.classifier.features_]).astype(np.float32)  # (M, F)
        predicted, score, decision = self.classifier.predict_rows(X)
        for e, st in enumerate(olds):
            self._advance(st, {c: new[c][e] for c in s.features}, t_new[e], values, is_new, e)
            states[keys[e]] = st
        ids, stamps = new[s.id_col], new[s.time_col]
        return [{"id": _plain(ids[e]), "time": _plain(stamps[e]), "score": float(score[e]),
                 "decision": None if decision is None else bool(decision[e]), "prediction": _plain(predicted[e]),
                 "encoder_id": self.encoder_id, "classifier_id": self.classifier_id} for e in range(len(olds))]

    def _step(self, num: np.ndarray, cat: np.ndarray, olds: list[EntityState]) -> np.ndarray:
        """One causal-encoder step for each entity's new event; the carries are updated in place."""
        net = self.encoder.event_net()  # float64, as the batch job's one pass
        f64 = torch.float64
        carry = net.empty_carry(len(olds), f64)
        for e, st in enumerate(olds):
            if st.carry is not None:
                for name in ("h", "c"):
                    carry[name][:, e] = torch.tensor(st.carry[name], dtype=f64)
                for name in ("sum", "max", "n", *TREND_CARRY):
                    if name in carry:
                        carry[name][e] = torch.tensor(st.carry[name], dtype=f64)
                carry["first"][e] = False
        code, new = net.step(torch.from_numpy(num).double(), torch.from_numpy(cat), carry)
        for e, st in enumerate(olds):
            st.carry = {"h": new["h"][:, e].tolist(), "c": new["c"][:, e].tolist(),
                        **{name: new[name][e].tolist() for name in ("sum", "max", "n", *TREND_CARRY) if name in new}}
        return code.float().numpy()

    def _advance(self, st: EntityState, event: dict, t: float, values: dict, is_new: dict, e: int) -> None:
        """Append the scored event to its entity's state and trim the tail."""
        if not st.tail:
            st.tail = {c: [] for c in (*self.schema.features, TIME)}
            st.tail_new = {c: [] for c in self.schema.categorical}
            st.seen = {c: {} for c in self.schema.categorical}
        for c in self.schema.features:
            st.tail[c].append(_plain(event[c]))
        st.tail[TIME].append(float(t))
        for c in self.schema.categorical:
            st.tail_new[c].append(int(is_new[c][e]))
            st.seen[c][values[c][e]] = st.seen[c].get(values[c][e], 0) + 1
        st.count += 1
        st.last_time = max(st.last_time, float(t))
        tail_t = np.asarray(st.tail[TIME])
        keep = max(self.keep_rows, int((tail_t >= tail_t[-1] - self.long_window_s).sum()))
        drop = max(0, len(tail_t) - min(keep, TAIL_CAP))
        if drop:
            for c in st.tail:
                del st.tail[c][:drop]
            for c in st.tail_new:
                del st.tail_new[c][:drop]

    def entity(self, entity_id) -> dict | None:
        """What is stored for an entity: events so far, latest event time, state age; None if unknown."""
        for key in _key_candidates(entity_id):
            st = self.store.get_many([key]).get(key)
            if st is not None:
                return {"id": json.loads(key), "events": st.count, "last_time": st.last_time,
                        "age_s": round(wallclock.time() - st.updated, 3)}
        return None


def _key_candidates(entity_id: str) -> list[str]:
    """Store keys an id given as text may have: the string, or the integer it spells."""
    keys = [json.dumps(entity_id)]
    try:
        keys.append(json.dumps(int(entity_id)))
    except ValueError:
        pass
    return keys


def _plain(value):
    """A JSON-ready Python value (numpy scalars unwrapped, NaN and NA as None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value

