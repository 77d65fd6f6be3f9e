"""A second fraud simulator, built unlike the demo's: customers, terminals on a map, and three
fraud scenarios, after the transaction generator of the Fraud Detection Handbook (Le Borgne,
Siblini, Lebichot and Bontempi, "Reproducible Machine Learning for Credit Card Fraud Detection -
Practical Handbook", 2022, chapter 3.2).

It exists to check that defaults tuned on ``pipelines.simulate.demo`` generalise (``scripts/benchmark_fraud.py
--simulator terminals``). Every customer and terminal has a place on a 100 x 100 map; a customer pays
at terminals within ``radius`` of home, ``Poisson(rate)`` times a day around midday, amounts drawn
from the customer's own normal law. Fraud:

- large amounts: any amount above 220 is fraud (a rule a single row reveals);
- compromised terminals: each day a few terminals are compromised and every payment there in the
  next 28 days is fraud (a terminal-level signal, invisible in one customer's past);
- compromised customers: each day a few customers' credentials leak, and over the next 14 days a
  third of their payments are fraud at five times their amount (revealed against the customer's
  own habits).

There is no order pattern (no bursts, ramps or new devices): what the demo's codes learnt to see
is absent, so this set checks that the codes do not cost accuracy where they have little to add.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

DAY = 86400.0
START = pd.Timestamp("2026-01-05", tz="UTC")
LARGE_AMOUNT = 220.0
TERMINAL_DAYS, CUSTOMER_DAYS = 28, 14


def simulate_terminal_events(n_customers: int = 1500, days: int = 56, seed: int = 0, n_terminals: int | None = None,
                             radius: float = 5.0, with_scenario: bool = False) -> pd.DataFrame:
    """Card payments, one row per event, sorted by time.

    Columns: ``account`` (str), ``ts`` (UTC timestamp), ``amount`` (float), ``terminal`` (str),
    ``is_fraud`` (0/1). ``n_terminals`` defaults to twice ``n_customers`` (the handbook's ratio);
    each day compromises 2 terminals per 10,000 and 3 customers per 5,000, as the handbook does,
    drawn binomially so small maps get some. ``with_scenario`` adds the generating ``scenario``
    (``genuine``, ``large``, ``terminal``, ``customer``), for analysis only.
    """
    if n_customers < 1 or days < 1:
        raise ValueError(f"n_customers and days must be positive, got {n_customers} and {days}")
    rng = np.random.default_rng(seed)
    n_terminals = n_terminals or 2 * n_customers
    home = rng.uniform(0, 100, (n_customers, 2))  # (C, 2)
    mean_amount = rng.uniform(5, 100, n_customers)
    std_amount = mean_amount / 2
    rate = rng.uniform(0, 4, n_customers)  # payments a day
    place = rng.uniform(0, 100, (n_terminals, 2))  # (M, 2)

    rows = []  # (customer, terminal, seconds, amount) per customer, concatenated below
    for c in range(n_customers):
        near = np.flatnonzero(((place - home[c]) ** 2).sum(1) < radius ** 2)
        if not len(near):
            continue
        per_day = rng.poisson(rate[c], days)  # (days,)
        n = int(per_day.sum())
        if not n:
            continue
        day = np.repeat(np.arange(days), per_day)  # (n,)
        second = rng.normal(DAY / 2, 20000, n)
        keep = (second > 0) & (second < DAY)
        amount = rng.normal(mean_amount[c], std_amount[c], n)
        low = amount < 0
        amount[low] = rng.uniform(0, 2 * mean_amount[c], int(low.sum()))
        rows.append(pd.DataFrame({"customer": c, "terminal": rng.choice(near, n), "t": day * DAY + second,
                                  "amount": np.round(amount, 2)})[keep])
    df = pd.concat(rows, ignore_index=True).sort_values("t", kind="stable", ignore_index=True)
    day = (df["t"].to_numpy() // DAY).astype(np.int64)

    scenario = np.where(df["amount"].to_numpy() > LARGE_AMOUNT, "large", "genuine").astype(object)
    bad_until = np.full(n_terminals, -1)  # last day each terminal stays compromised
    leak_until = np.full(n_customers, -1)
    terminal, customer = df["terminal"].to_numpy(), df["customer"].to_numpy()
    for d in range(days):
        hit = rng.choice(n_terminals, rng.binomial(n_terminals, 2 / 10_000), replace=False)
        bad_until[hit] = np.maximum(bad_until[hit], d + TERMINAL_DAYS - 1)
        today = day == d
        at_bad = today & (bad_until[terminal] >= d)
        scenario[at_bad] = "terminal"
        leaked = rng.choice(n_customers, rng.binomial(n_customers, 3 / 5_000), replace=False)
        leak_until[leaked] = np.maximum(leak_until[leaked], d + CUSTOMER_DAYS - 1)
        victim = today & (leak_until[customer] >= d) & (rng.random(len(df)) < 1 / 3)
        df.loc[victim, "amount"] = np.round(df.loc[victim, "amount"] * 5, 2)
        scenario[victim] = "customer"

    out = pd.DataFrame({"account": [f"c{c:05d}" for c in customer],
                        "ts": START + pd.to_timedelta(np.round(df["t"].to_numpy(), 3), unit="s"),
                        "amount": df["amount"].to_numpy(),
                        "terminal": [f"t{m:05d}" for m in terminal],
                        "is_fraud": (scenario != "genuine").astype(np.int64)})
    if with_scenario:
        out["scenario"] = scenario
    return out
