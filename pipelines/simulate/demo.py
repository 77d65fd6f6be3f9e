"""A seeded fraud-style event simulator: accounts with habits, and fraud that only context reveals.

Each account has its own typical amount, favourite merchants, home country, usual channels and
device, active hours and event rate. Honest life produces look-alikes of every fraud signal: new
merchants, phone upgrades (a new device for good), trips abroad (announced by a travel purchase
at home), occasional big-ticket purchases, and bursts of tiny transit payments for commuters.
Fraud is injected as sequences, not single rows:

- account takeover: a new device, a small probe, then large amounts at risky merchants, often
  from abroad;
- card testing: a burst of tiny web payments at new merchants within minutes, then a large one;
- slow drift: a scripted ramp over days, at a steady cadence, each amount a little larger than
  the last at merchants of a risky category; early steps look like ordinary purchases.

Amounts are judged against the account's own habits, so the same row (say 400) is normal for
one account and suspicious for another.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "MX", "BR", "IN", "NG", "RU", "CN", "PH"]
CHANNELS = ["pos", "web", "app", "atm"]
CATEGORIES = ["grocery", "fuel", "restaurant", "travel", "electronics", "fashion", "pharmacy",
              "entertainment", "utilities", "gaming", "crypto", "gift_cards"]
RISKY = ["electronics", "gaming", "crypto", "gift_cards"]
DAY = 86400.0
START = pd.Timestamp("2026-01-05", tz="UTC")


def simulate_events(n_accounts: int = 1500, days: int = 56, seed: int = 0, fraud_share: float = 0.2,
                    with_scenario: bool = False) -> pd.DataFrame:
    """Card transactions, one row per event, sorted by time.

    Columns: ``account`` (str), ``ts`` (UTC timestamp), ``amount`` (float), ``merchant``,
    ``category``, ``channel``, ``country``, ``device`` (str), ``is_fraud`` (0/1, per event).
    ``fraud_share`` of accounts get one fraud episode; a few per cent of events are fraud.
    ``with_scenario`` adds the generating ``scenario`` of each event, for analysis only (drop it
    before training: it gives the answer away).
    """
    rng = np.random.default_rng(seed)
    n_merchants = 400
    merchant_cat = rng.choice(CATEGORIES, n_merchants, p=_weights(len(CATEGORIES), rng))
    merchants = np.array([f"m{m:03d}" for m in range(n_merchants)])
    risky_merchants = np.flatnonzero(np.isin(merchant_cat, RISKY))
    frames = []
    for a in range(n_accounts):
        frames.append(_account(a, rng, days, merchants, merchant_cat, risky_merchants, fraud_share))
    df = pd.concat(frames, ignore_index=True)
    df["ts"] = START + pd.to_timedelta(np.round(df.pop("t"), 3), unit="s")
    if not with_scenario:
        df = df.drop(columns="scenario")
    return df.sort_values("ts", kind="stable").reset_index(drop=True)


def _weights(n: int, rng) -> np.ndarray:
    w = rng.gamma(1.0, 1.0, n)
    return w / w.sum()


def _account(a, rng, days, merchants, merchant_cat, risky_merchants, fraud_share) -> pd.DataFrame:
    # habits
    mu = rng.normal(3.6, 0.9)                       # log typical amount: ~35 median, wide across accounts
    sigma = rng.uniform(0.25, 0.6)
    rate = np.exp(rng.normal(0.0, 0.5))             # events per day
    n = int(np.clip(rng.poisson(rate * days), 8, 200))
    fav = rng.choice(len(merchants), int(rng.integers(4, 14)), replace=False)
    fav_p = _weights(len(fav), rng)
    home = rng.choice(COUNTRIES[:8], p=[.35, .15, .12, .1, .08, .08, .07, .05])
    chan_p = _weights(3, rng)
    device = f"d{rng.integers(0, 5000):04d}"
    hour0 = rng.uniform(8, 20)
    # irregular gaps: a gamma renewal process with a daily rhythm
    gaps = rng.gamma(0.7, DAY / rate / 0.7, n)
    t = np.cumsum(gaps) + rng.uniform(0, DAY)
    t = np.floor(t / DAY) * DAY + np.clip(rng.normal(hour0, 2.5, n), 0, 23.9) * 3600.0
    t = np.sort(t[t < days * DAY]) if (t < days * DAY).sum() >= 8 else np.sort(rng.uniform(0, days * DAY, 8))
    n = len(t)
    m = np.where(rng.random(n) < 0.25, rng.integers(0, len(merchants), n), fav[rng.choice(len(fav), n, p=fav_p)])
    amount = np.exp(rng.normal(mu, sigma, n))
    big = rng.random(n) < 0.03                      # honest big-ticket purchases
    amount[big] *= rng.uniform(3, 10, big.sum())
    devices = np.full(n, device, dtype=object)
    if rng.random() < 0.3:                          # a phone upgrade: a new device from then on
        devices[int(rng.integers(1, n)):] = f"d{rng.integers(0, 9999):04d}"
    ev = {
        "t": t, "amount": amount, "merchant": merchants[m], "category": merchant_cat[m],
        "channel": np.array(CHANNELS[:3])[rng.choice(3, n, p=chan_p)],
        "country": np.full(n, home, dtype=object), "device": devices, "is_fraud": np.zeros(n, np.int8),
        "scenario": "normal",
    }
    ev["channel"] = np.where(ev["category"] == "fuel", "pos", ev["channel"])
    df = pd.DataFrame(ev)
    extras = []
    if rng.random() < 0.15:                         # a trip: a travel purchase at home, then days abroad
        extras.append(_trip(rng, t, mu, sigma, merchants, merchant_cat, home, device, days))
    if rng.random() < 0.2:                          # a commuter: bursts of tiny transit payments
        extras.append(_commute(rng, merchants, device, home, days))
    if rng.random() < fraud_share and n >= 10:
        kind = rng.choice(["takeover", "testing", "drift"], p=[0.4, 0.35, 0.25])
        start = float(rng.uniform(t[min(5, n - 1)], t[-1]))
        extras.append(_episode(kind, start, rng, mu, sigma, merchants, merchant_cat, risky_merchants, home, device))
    df = pd.concat([df, *extras], ignore_index=True)
    df["amount"] = np.round(df["amount"], 2)
    df.insert(0, "account", f"a{a:05d}")
    return df


def _trip(rng, t, mu, sigma, merchants, merchant_cat, home, device, days) -> pd.DataFrame:
    travel = np.flatnonzero(merchant_cat == "travel")
    depart = rng.uniform(0.2, 0.9) * days * DAY
    k = int(rng.integers(3, 12))
    tt = np.r_[depart - rng.uniform(2, 20) * DAY, depart + np.sort(rng.uniform(0, rng.uniform(3, 10) * DAY, k))]
    m = np.r_[rng.choice(travel) if len(travel) else 0, rng.integers(0, len(merchants), k)]
    country = rng.choice([c for c in COUNTRIES if c != home])
    return pd.DataFrame({
        "t": tt, "amount": np.r_[np.exp(mu) * rng.uniform(5, 15), np.exp(rng.normal(mu, sigma, k)) * rng.uniform(1, 2.5, k)],
        "merchant": merchants[m], "category": merchant_cat[m], "channel": ["web"] + ["pos"] * k,
        "country": [home] + [country] * k, "device": device, "is_fraud": np.zeros(k + 1, np.int8),
        "scenario": "trip"})


def _commute(rng, merchants, device, home, days) -> pd.DataFrame:
    n_days = int(rng.integers(5, 20))
    starts = np.sort(rng.uniform(0, days * DAY, n_days))
    per = rng.integers(2, 5, n_days)
    tt = np.concatenate([s + np.cumsum(rng.exponential(600, p)) for s, p in zip(starts, per)])
    transit = merchants[rng.integers(0, len(merchants), 2)]
    return pd.DataFrame({"t": tt, "amount": rng.uniform(1.0, 3.5, len(tt)), "merchant": rng.choice(transit, len(tt)),
                         "category": "transport", "channel": "app", "country": home, "device": device,
                         "is_fraud": np.zeros(len(tt), np.int8), "scenario": "commute"})


def _episode(kind, start, rng, mu, sigma, merchants, merchant_cat, risky_merchants, home, device) -> pd.DataFrame:
    typical = np.exp(mu)
    if kind == "takeover":
        k = int(rng.integers(2, 6))
        t = start + np.r_[0.0, np.cumsum(rng.exponential(3 * 3600, k))]
        abroad = rng.random() < 0.3
        country = rng.choice([c for c in COUNTRIES[8:] if c != home]) if abroad else home
        amount = np.r_[rng.uniform(1, 10), typical * rng.uniform(1.5, 3.5, k)]
        m = np.r_[rng.integers(0, len(merchants)), rng.choice(risky_merchants, k)]
        channel, device = "web", f"d{rng.integers(0, 9999):04d}"
        countries = np.full(k + 1, country)
    elif kind == "testing":
        k = int(rng.integers(3, 8))
        t = start + np.cumsum(rng.exponential(300, k + 1))
        amount = np.r_[rng.uniform(0.5, 3.0, k), typical * rng.uniform(2, 6)]
        m = rng.choice(len(merchants), k + 1)
        countries = np.full(k + 1, home)
        channel = "web"
    else:  # a scripted ramp: steady cadence, each step a little larger, none alarming on its own
        k = int(rng.integers(8, 15))
        t = start + np.cumsum(rng.uniform(0.3, 0.5) * DAY * rng.uniform(0.95, 1.05, k))
        amount = typical * np.geomspace(1.0, rng.uniform(2.0, 2.8), k) * rng.uniform(0.95, 1.05, k)
        m = rng.choice(risky_merchants, k)
        channel, countries = "app", np.full(k, home)
    n = len(t)
    return pd.DataFrame({
        "t": t, "amount": np.round(amount, 2), "merchant": merchants[m], "category": merchant_cat[m],
        "channel": channel, "country": countries,
        "device": device, "is_fraud": np.ones(n, np.int8), "scenario": kind})
