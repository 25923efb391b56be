"""Shared input checks of mixstat._validation."""

import numpy as np
import pytest

from mixstat._validation import (
    check_finite,
    check_n_components,
    check_probability,
    check_random_state,
    check_sample_weight,
)


def test_check_finite():
    a = np.array([[1.0, np.nan], [np.inf, -np.inf]])
    with pytest.raises(ValueError, match=r"Input y contains NaN or infinity \(1 NaN, 2 inf"):
        check_finite(a, name="y")
    ok = np.arange(3.0)
    assert check_finite(ok) is ok
    check_finite(np.arange(3))  # integers are always finite


def test_check_n_components():
    check_n_components(5, 5)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        check_n_components(2, 3)
    for bad in (0, -1, 2.5, "3"):
        with pytest.raises(ValueError, match="integer >= 1"):
            check_n_components(10, bad)


def test_check_sample_weight():
    X = np.zeros((4, 2))
    np.testing.assert_array_equal(check_sample_weight(None, X), np.ones(4))
    np.testing.assert_array_equal(check_sample_weight(2.0, X), np.full(4, 2.0))
    with pytest.raises(ValueError):
        check_sample_weight([1.0, -1.0, 1.0, 1.0], X)
    with pytest.raises(ValueError):
        check_sample_weight([1.0, 1.0], X)
    with pytest.raises(ValueError, match="NaN|infinity|finite"):
        check_sample_weight([1.0, np.nan, 1.0, 1.0], X)
    with pytest.raises(ValueError, match="zero"):
        check_sample_weight(np.zeros(4), X)


def test_check_probability():
    np.testing.assert_array_equal(check_probability([0.0, 0.5, 1.0]), [0.0, 0.5, 1.0])
    with pytest.warns(UserWarning, match="2 values outside"):
        out = check_probability([-0.1, 0.5, 1.2])
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="must lie in"):
        check_probability([1.2], clip=False)
    with pytest.raises(ValueError, match="NaN"):
        check_probability([np.nan])


def test_check_random_state_reexported():
    assert check_random_state(0).randint(100) == np.random.RandomState(0).randint(100)
