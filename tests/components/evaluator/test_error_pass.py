"""The evaluator's error pass: in this process (local runs) == the Beam pipeline."""
import pickle

import numpy as np
import pandas as pd
import pytest

from components.evaluator import error_pass
from tests.helpers.savedmodels import make_rows, make_saved_model

KEYS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("error_pass")
    models = {"candidate": make_saved_model(str(root / "m1"), KEYS, seed=1),
              "baseline": make_saved_model(str(root / "m2"), KEYS, seed=2)}
    sets = {}
    for name, (n, seed) in {"eval": (700, 3), "holdout": (300, 4)}.items():
        x, label = make_rows(n, KEYS, seed=seed)
        df = pd.DataFrame(x, columns=KEYS)
        df.loc[df.index[::50], "b"] = np.nan  # an imputed cell on the way
        df["label"] = label
        split = root / name
        split.mkdir()
        df.to_parquet(split / "data.parquet", row_group_size=128)
        sets[name] = str(split)
    return sets, models


def _dump(summary, path):
    with open(path, "wb") as f:
        pickle.dump(summary, f)


def _beam(sets, models, batch_size, max_samples, tmp):
    import apache_beam as beam

    with beam.Pipeline() as p:
        for name, uri in sets.items():
            _ = (p | f"S_{name}" >> error_pass.SummarizeErrors(
                     uri, models, "label", KEYS + ["label"], batch_size=batch_size,
                     max_samples=max_samples)
                   | f"K_{name}" >> beam.Map(_dump, str(tmp / f"{name}.pkl")))
    out = {}
    for name in sets:
        with open(tmp / f"{name}.pkl", "rb") as f:
            out[name] = pickle.load(f)
    return out


def test_in_process_summaries_are_the_beam_pipelines(setup, tmp_path):
    sets, models = setup
    here = error_pass.summarize_in_process(sets, models, "label", KEYS + ["label"],
                                           batch_size=128, max_samples=10_000)
    beam_out = _beam(sets, models, batch_size=128, max_samples=10_000, tmp=tmp_path)
    assert set(here) == set(beam_out) == set(sets)
    for split in sets:
        assert set(here[split]) == set(models)
        for m in models:
            a, b = here[split][m], beam_out[split][m]
            assert a.count == b.count == (700 if split == "eval" else 300)
            np.testing.assert_allclose(a.feature_error_sum, b.feature_error_sum, rtol=1e-9)
            for g in (error_pass.NORMAL, error_pass.ANOMALY):
                assert a.groups[g].count == b.groups[g].count > 0
                np.testing.assert_allclose(np.sort(a.groups[g].sample()),
                                           np.sort(b.groups[g].sample()), rtol=1e-9)
    # the two models' errors differ: each was really scored
    e = here["eval"]
    assert not np.allclose(np.sort(e["candidate"].groups["normal"].sample()),
                           np.sort(e["baseline"].groups["normal"].sample()))
