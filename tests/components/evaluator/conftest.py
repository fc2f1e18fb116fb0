"""Shared by the evaluator's tests: a seeded generator."""
import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
