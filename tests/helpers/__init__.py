"""Plain helpers the tests import (conftest.py exposes them as fixtures too)."""
import subprocess
import sys

import numpy as np
import pandas as pd

FEATURES = [f"x{i}" for i in range(8)]


def make_data(n_normal=600, n_outliers=20, seed=7):
    """600 normal rows near a 3-dimensional subspace of 8 features, 20 outliers
    that break those correlations, a 0/1 `label`; raw, unscaled values."""
    # The structure of normal data is fixed; `seed` draws new rows from it.
    mix = np.random.default_rng(0).normal(size=(3, len(FEATURES)))
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n_normal, 3)) @ mix + 0.05 * rng.normal(size=(n_normal, 8))
    normal = normal * 10 + 50  # raw, unscaled values: the model must standardize
    center, scale = 50 + np.zeros(8), 10 * np.sqrt((mix ** 2).sum(axis=0))
    outliers = center + rng.uniform(-3, 3, size=(n_outliers, 8)) * scale
    x = np.vstack([normal, outliers])
    labels = np.r_[np.zeros(n_normal, int), np.ones(n_outliers, int)]
    df = pd.DataFrame(x, columns=FEATURES)
    df["label"] = labels
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def cli_subprocess(*args, check=True, timeout=900, env=None, **kwargs):
    """`python -m pipeline.cli ARGS...`; with `check`, a non-zero exit fails with its stderr."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=timeout, env=env, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stderr[-4000:]}")
    return proc


def run_json(*args, **kwargs):
    """`cli_subprocess(*args)` (checked) and its last stdout line as JSON: the summary."""
    import json

    return json.loads(cli_subprocess(*args, **kwargs).stdout.strip().splitlines()[-1])


def one_error_line(err: str) -> str:
    """The single `error:` line of `err`; fails on none, several, or a traceback."""
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def tied_scores(rng: np.random.Generator, n: int):
    """Random labelled errors with many ties; positives score higher on average."""
    labels = rng.random(n) < 0.3
    errors = np.round(rng.normal(size=n) + 0.8 * labels, 1)
    return errors, labels.astype(int)
