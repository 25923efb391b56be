"""Inference that degrades gracefully (issue 22, item 5): summary() always
prints, variance intervals on the log scale, p-values never printed as 0,
0-based numbering, DataFrame column names in every table and in moe_path."""

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("statsmodels")

from mixstat.moe import GaussianMoERegressor, moe_path  # noqa: E402
from mixstat.utils import format_pvalue  # noqa: E402


def _stackloss():
    import statsmodels.api as sm

    d = sm.datasets.stackloss.load_pandas().data
    return d[["AIRFLOW", "WATERTEMP", "ACIDCONC"]], d["STACKLOSS"]


def test_stackloss_summary_prints_estimates_and_why_no_se():
    """statsmodels' stackloss (n=21), K=2 unpenalised: the gates separate the
    sample and the observed information is singular; summary() prints the
    estimates (named by the columns) and a note instead of raising."""
    X, y = _stackloss()
    # this start (the previous default) ends where the gates separate the sample
    m = GaussianMoERegressor(2, alpha=0, alpha_gate=0, random_state=0, init="residuals",
                             n_init=3, standardize=False).fit(X, y)
    with pytest.raises(np.linalg.LinAlgError):
        m.inference(X, y)  # inference() itself still raises: no numbers to give
    s = m.summary(X, y)
    text = s.as_text()
    assert "std err" not in text
    assert any("no standard errors" in n and "not positive definite" in n for n in s.notes)
    for name in ("AIRFLOW", "WATERTEMP", "ACIDCONC"):
        assert name in text
    assert "expert 0" in text and "expert 1" in text and "gate 0 vs 1" in text
    assert "expert 2" not in text  # 0-based, as coef_
    frames = s.to_frames()
    np.testing.assert_allclose(float(frames["expert 0"].loc["AIRFLOW", "coef"]),
                               m.coef_[0, 0])
    assert "<table" in s.as_html()


def test_stackloss_one_expert_has_standard_errors_and_log_variance_interval():
    X, y = _stackloss()
    m = GaussianMoERegressor(1, alpha=0, alpha_gate=0, random_state=0).fit(X, y)
    inf = m.inference(X, y)
    assert [t for _, t in inf.names] == ["intercept", "AIRFLOW", "WATERTEMP", "ACIDCONC",
                                         "sigma^2"]
    # OLS: the slopes' Wald SEs are sqrt(diag(sigma^2_ML (X'X)^-1))
    Z = np.column_stack([np.ones(len(y)), np.asarray(X)])
    s2 = m.noise_variance_[0]
    se_ols = np.sqrt(np.diag(s2 * np.linalg.inv(Z.T @ Z)))
    np.testing.assert_allclose(inf.se[:4], se_ols, rtol=1e-4)
    assert "std err" in m.summary(X, y).as_text()


def test_variance_interval_on_log_scale():
    """A small sample: the symmetric Wald interval of sigma^2 would go below 0
    (se/sigma^2 = sqrt(2/n) = 0.58 at n=6); the log-scale one is positive and
    symmetric around log sigma^2 with half-width z * se / sigma^2."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 1))
    y = 1.0 + 2.0 * X[:, 0] + rng.normal(size=6)
    m = GaussianMoERegressor(1, alpha=0, alpha_gate=0, random_state=0).fit(X, y)
    inf = m.inference(X, y, level=0.95)
    i = [t for _, t in inf.names].index("sigma^2")
    v, se = inf.params[i], inf.se[i]
    q = stats.norm.ppf(0.975)
    assert v - q * se < 0  # the symmetric interval would be negative
    assert inf.ci_low[i] > 0
    np.testing.assert_allclose(np.log(inf.ci_high[i] / v), q * se / v, rtol=1e-12)
    np.testing.assert_allclose(np.log(v / inf.ci_low[i]), q * se / v, rtol=1e-12)
    # the slopes keep their symmetric Wald intervals
    np.testing.assert_allclose(inf.ci_high[1] - inf.params[1], q * inf.se[1], rtol=1e-12)


def test_pvalue_never_printed_as_zero():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 1))
    y = 3.0 + 10.0 * X[:, 0] + 0.5 * rng.normal(size=400)
    m = GaussianMoERegressor(1, alpha=0, alpha_gate=0, random_state=0).fit(X, y)
    inf = m.inference(X, y)
    assert inf.pvalue[1] == 0.0  # the normal tail underflows
    s = m.summary(X, y)
    rows = s.tables[0]
    col = rows[2].index("P>|z|")
    text = s.as_text()
    assert "<1e-16" in text
    line = [ln for ln in text.splitlines() if ln.startswith("x0")][0]
    assert "<1e-16" in line
    assert rows[3][1, col] == 0.0  # the stored value is the number


@pytest.mark.parametrize("p, want", [(0.0, "<1e-16"), (1e-300, "<1e-16"), (2e-17, "<1e-16"),
                                     (1.404e-16, "1.404e-16"), (3.68e-9, "3.680e-09"),
                                     (0.0012, "0.0012"), (0.27939, "0.2794"), (1.0, "1.0000"),
                                     (np.nan, "nan")])
def test_format_pvalue(p, want):
    assert format_pvalue(p) == want


def test_dataframe_names_in_penalised_summary_and_path():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(150, 3)), columns=["dose", "age", "noise"])
    y = np.where(rng.random(150) < 0.5, 2 * X["dose"], -2 * X["age"]) \
        + 0.3 * rng.normal(size=150)
    m = GaussianMoERegressor(2, alpha=0.01, random_state=0).fit(X, y)
    text = m.summary().as_text()
    assert "dose" in text and "x0" not in text and "x1" not in text
    path = moe_path(X, y, n_components=2, n_alphas=3, n_init=1, return_models=True)
    assert list(path.feature_names) == ["dose", "age", "noise"]
    assert list(path.models[-1].feature_names_in_) == ["dose", "age", "noise"]
    assert moe_path(X.to_numpy(), y, n_components=2, n_alphas=2, n_init=1).feature_names is None
    ref = m.refit(X, y)
    assert "dose" in ref.summary(X, y).as_text()
