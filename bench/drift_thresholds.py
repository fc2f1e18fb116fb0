"""Where the drift thresholds come from: resample noise vs real shifts.

For data/cardio.csv and the synthetic data of the tests, measures the drift
distances of `components.data_gate.drift.compare` (the DataGate's and
`anomaly-pipeline drift`'s) between
- two disjoint random samples of the same data (must pass), and
- a sample and another one with one feature shifted by 0.25 / 0.5 / 1
  standard deviations or scaled by 1.5, or with 30% anomalies (must fail).

    .venv/bin/python bench/drift_thresholds.py            (~1 min on 2 cores)

Prints one line per case with the largest distance; compare with
DriftSettings's js_threshold / linf_threshold (0.1 / 0.1).
"""
import os
import sys

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def main() -> None:
    import logging

    logging.disable(logging.WARNING)
    import tensorflow_data_validation as tfdv

    from components.data_gate import drift
    from components.data_gate.settings import DriftSettings

    JS, LINF = DriftSettings().js_threshold, DriftSettings().linf_threshold
    from test_e2e import make_data

    def stats(df):
        return tfdv.generate_statistics_from_dataframe(df.reset_index(drop=True))

    def measure(base, cur):
        schema = drift.relax_schema(tfdv.infer_schema(base), "label")
        return {m.feature: m.value
                for m in drift.drift_measurements(drift.compare(cur, base, schema, "label", JS, LINF))}

    def worst(d):
        name, value = max(((k, v) for k, v in d.items() if k != "label"), key=lambda kv: kv[1])
        return f"max JS {value:.3f} ({name}), label L-inf {d.get('label', float('nan')):.3f}"

    card = pd.read_csv(os.path.join(ROOT, "data", "cardio.csv"))
    rng = np.random.default_rng(0)
    for n in (250, 500, 900):
        for rep in range(6):
            idx = rng.permutation(len(card))
            print(f"cardio resample n={n} #{rep}: "
                  f"{worst(measure(stats(card.iloc[idx[:n]]), stats(card.iloc[idx[-n:]])))}")
        base = stats(card.iloc[idx[:n]])
        for col in ("f3", "f5", "f10", "f14"):
            row = []
            for shift in (0.25, 0.5, 1.0):
                cur = card.iloc[idx[-n:]].copy()
                cur[col] += shift * card[col].std()
                row.append(f"+{shift} sd {measure(base, stats(cur))[col]:.3f}")
            cur = card.iloc[idx[-n:]].copy()
            cur[col] *= 1.5
            row.append(f"x1.5 {measure(base, stats(cur))[col]:.3f}")
            print(f"cardio shift n={n} {col}: JS " + ", ".join(row))
    for n in (250, 500, 1000):
        for seed in range(4):
            a = make_data(n_normal=n, n_outliers=n // 20, seed=10 + seed)
            b = make_data(n_normal=n, n_outliers=n // 20, seed=20 + seed)
            print(f"synthetic resample n={n} #{seed}: {worst(measure(stats(a), stats(b)))}")
        row = []
        for shift in (0.25, 0.5, 1.0):
            b = make_data(n_normal=n, n_outliers=n // 20, seed=30)
            b["x3"] += shift * a["x3"].std()
            row.append(f"+{shift} sd {measure(stats(a), stats(b))['x3']:.3f}")
        b = make_data(n_normal=n, n_outliers=n // 3, seed=31)
        print(f"synthetic shift n={n} x3: JS " + ", ".join(row)
              + f"; 30% anomalies: label L-inf {measure(stats(a), stats(b))['label']:.3f}")


if __name__ == "__main__":
    main()
