"""components.explain.top_features: which features made a row's error."""
import numpy as np
import pytest

from components.model.explain import top_feature_indices, top_features

NAMES = [f"f{i}" for i in range(8)]


def test_example_from_the_issue():
    fe = np.full((1, 8), 0.18 / 5)  # the five other features share 0.18
    fe[0, [3, 7, 0]] = [0.52, 0.21, 0.09]
    assert top_features(fe, NAMES) == ["f3:0.52;f7:0.21;f0:0.09"]


def test_shares_are_of_the_row_total_and_order_is_by_contribution():
    rng = np.random.default_rng(0)
    fe = rng.random((50, 8)) ** 3
    out = top_features(fe, NAMES, k=3, decimals=6)
    for row, text in zip(fe, out):
        parts = [p.split(":") for p in text.split(";")]
        assert len(parts) == 3
        expected = np.argsort(-row)[:3]
        assert [name for name, _ in parts] == [NAMES[j] for j in expected]
        shares = [float(s) for _, s in parts]
        np.testing.assert_allclose(shares, row[expected] / row.sum(), atol=1e-6)
        assert shares == sorted(shares, reverse=True)


def test_one_dominant_feature_has_share_near_one():
    fe = np.full((2, 4), 0.01)
    fe[0, 2] = 100.0
    fe[1, 0] = 100.0
    out = top_features(fe, ["a", "b", "c", "d"], k=1)
    assert out == ["c:1.00", "a:1.00"]


def test_ties_keep_feature_order_and_k_larger_than_d_lists_all():
    fe = np.array([[1.0, 1.0, 1.0]])
    assert top_features(fe, ["x", "y", "z"], k=5) == ["x:0.33;y:0.33;z:0.33"]
    np.testing.assert_array_equal(top_feature_indices(fe, 2), [[0, 1]])


def test_zero_or_nonfinite_rows_have_no_explanation():
    fe = np.array([[0.0, 0.0], [np.nan, 1.0], [np.inf, 1.0], [1.0, 3.0]])
    assert top_features(fe, ["a", "b"], k=2) == ["", "", "", "b:0.75;a:0.25"]


def test_empty_input_gives_empty_list():
    assert top_features(np.zeros((0, 3)), ["a", "b", "c"]) == []


@pytest.mark.parametrize("fe, names, k, message", [
    (np.zeros(3), ["a", "b", "c"], 3, "2-D"),
    (np.zeros((2, 3)), ["a", "b"], 3, "2 feature names for 3"),
    (np.zeros((2, 3)), ["a", "b", "c"], 0, "positive integer"),
    (np.zeros((2, 3)), ["a", "b", "c"], 1.5, "positive integer"),
    (-np.ones((2, 3)), ["a", "b", "c"], 1, "non-negative"),
])
def test_bad_input_is_named(fe, names, k, message):
    with pytest.raises(ValueError, match=message):
        top_features(fe, names, k)


def test_matches_the_saved_model_feature_errors_layout():
    """Rows' mean of feature_errors is reconstruction_error; shares use the same rows."""
    rng = np.random.default_rng(1)
    x, recon = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    sq = (x - recon) ** 2
    out = top_features(sq, [f"c{i}" for i in range(5)], k=5, decimals=8)
    for row, text in zip(sq, out):
        assert sum(float(p.split(":")[1]) for p in text.split(";")) == pytest.approx(1, abs=1e-6)
