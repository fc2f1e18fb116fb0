"""Generates data/transactions.csv: a card-transactions table shaped like a fraud team's.

A generated example (not real data), for trying a mixed table end to end:

    transaction_id     unique strings            -> passthrough (identifier)
    timestamp          ISO 8601                  -> passthrough (date/time)
    customer_id        ~400 distinct strings     -> passthrough (too many categories)
    merchant_category  8 strings                 -> categorical
    country            7 strings                 -> categorical
    amount             euros, ~10% empty cells   -> numeric (imputed, with an indicator)
    hour, n_items      integers                  -> numeric
    is_fraud           1 = anomaly               -> the label

Normal rows follow each merchant category's habits (amount, items, hour of
day, how often abroad); the anomalies (~2.5%) are unusual combinations of
those: a grocery bill of an electronics shop, twenty televisions in one go, a
3 a.m. fuel stop abroad for 900 euros, a restaurant bill of a few thousand.
Each value on its own is common; the combination is not.

    .venv/bin/python data/make_transactions.py [--rows 6000] [--seed 7] [--out data/transactions.csv]
"""
import argparse
import csv
import datetime

import numpy as np

# category: (amount mean, amount sd, items low, items high, hour low, hour high, abroad share)
CATEGORIES = {
    "grocery": (45, 15, 4, 20, 8, 21, 0.03),
    "electronics": (780, 240, 1, 2, 10, 20, 0.05),
    "travel": (620, 200, 1, 2, 0, 23, 0.6),
    "restaurant": (55, 20, 1, 6, 11, 23, 0.1),
    "fuel": (55, 12, 1, 1, 6, 22, 0.08),
    "fashion": (120, 45, 1, 4, 10, 20, 0.05),
    "pharmacy": (25, 10, 1, 5, 8, 20, 0.02),
    "entertainment": (45, 15, 1, 4, 14, 23, 0.07),
}
HOME, ABROAD = "DE", ["FR", "NL", "AT", "ES", "IT", "PL"]
START = datetime.datetime(2024, 3, 1)


def _normal(rng, category):
    mean, sd, lo, hi, h_lo, h_hi, abroad = CATEGORIES[category]
    amount = max(1.0, rng.normal(mean, sd))
    items = int(rng.integers(lo, hi + 1))
    hour = int(rng.integers(h_lo, h_hi + 1))
    country = rng.choice(ABROAD) if rng.random() < abroad else HOME
    return amount, items, hour, country


def _anomaly(rng):
    kind = rng.integers(4)
    if kind == 0:   # a grocery bill of an electronics shop
        return "grocery", rng.normal(900, 150), int(rng.integers(1, 3)), int(rng.integers(9, 20)), HOME
    if kind == 1:   # twenty televisions at once
        return "electronics", rng.normal(9000, 2000), int(rng.integers(15, 30)), \
            int(rng.integers(10, 20)), HOME
    if kind == 2:   # a 3 a.m. fuel stop abroad for 900 euros
        return "fuel", rng.normal(900, 150), 1, int(rng.integers(1, 5)), rng.choice(ABROAD)
    return "restaurant", rng.normal(2600, 600), int(rng.integers(1, 4)), \
        int(rng.integers(12, 23)), HOME


def generate(rows: int, seed: int, anomaly_share: float = 0.025, empty_share: float = 0.1):
    rng = np.random.default_rng(seed)
    customers = [f"C{i:05d}" for i in rng.choice(90_000, size=400, replace=False)]
    names = list(CATEGORIES)
    weights = np.array([0.3, 0.05, 0.04, 0.2, 0.15, 0.1, 0.08, 0.08])
    out = []
    for i in range(rows):
        fraud = rng.random() < anomaly_share
        if fraud:
            category, amount, items, hour, country = _anomaly(rng)
        else:
            category = names[int(rng.choice(len(names), p=weights))]
            amount, items, hour, country = _normal(rng, category)
        when = START + datetime.timedelta(days=int(rng.integers(0, 60)), hours=hour,
                                          minutes=int(rng.integers(0, 60)),
                                          seconds=int(rng.integers(0, 60)))
        amount_text = f"{max(amount, 1.0):.2f}" if rng.random() >= empty_share else ""
        out.append([f"tx-{seed}-{i:07d}", when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    customers[int(rng.integers(len(customers)))], category, country,
                    amount_text, hour, items, int(fraud)])
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=6000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="data/transactions.csv")
    a = p.parse_args()
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["transaction_id", "timestamp", "customer_id", "merchant_category",
                    "country", "amount", "hour", "n_items", "is_fraud"])
        w.writerows(generate(a.rows, a.seed))


if __name__ == "__main__":
    main()
