"""
Walkthrough: a mixture of experts on Engel's food-expenditure data
==================================================================

The analysis a statistician would run on their own data with
:class:`~mixstat.moe.GaussianMoERegressor`: fit with the defaults, read the
summary, choose the number of experts, check the restarts, then try the
constant gate (a mixture of regressions) and the R-style formula. The data
are statsmodels' ``engel`` (235 Belgian working-class households, 1857: food
expenditure against income), which nobody generated for this library. A
second part fits the cross-validated estimator on scikit-learn's diabetes
data. Experts and gates are numbered from 0, as in ``coef_`` and
``gate_coef_``. Needs statsmodels (``pip install 'mixstat[stats]'``) and, for
the formula, formulaic (``'mixstat[formula]'``).
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import statsmodels.api as sm
from sklearn.datasets import load_diabetes

from mixstat.moe import (
    GaussianMoERegressor,
    GaussianMoERegressorCV,
    select_n_components,
)
from mixstat.plotting import plot_moe_fit

engel = sm.datasets.engel.load_pandas().data
X, y = engel[["income"]], engel["foodexp"]

# %%
# 1. The default fit
# ------------------
# Units do not matter (``standardize=True``: the penalty acts on standardised
# slopes, ``coef_`` is reported in the data's units); four restarts of three
# kinds (``init='auto'``). The default penalties are small (``alpha =
# alpha_gate = 0.01``); for a table of standard errors fit without them
# (``alpha=0, alpha_gate=0``): a penalised fit's ``summary()`` lists the
# non-zero estimates only, with a note saying why.
moe = GaussianMoERegressor(n_components=2, alpha=0, alpha_gate=0,
                           random_state=0).fit(X, y)
print(moe.summary(X, y))

# %%
# How to read it: one table per expert (``expert 0``, ``expert 1``:
# intercept, slope on income, variance ``sigma2`` in squared units of
# ``foodexp``) and one per gate contrast: the gates are reported in the
# reference form :math:`v_k = w_k - w_{K-1}`, so ``gate 0 vs 1`` is the
# log-odds of expert 0 against expert 1 as a function of income. The
# log-likelihood is on the scale of ``y`` (here Belgian francs), so it can
# be compared with any other model of the same ``y``.
#
# Here the note at the bottom matters: the gate separates the sample (a
# steep gate in income: poor households to expert 0, rich ones to expert 1),
# the observed information is singular and the table lists estimates only.
# That is a finding about the data, not a failure:
# ``inference(X, y, method='bootstrap')`` gives percentile intervals instead
# (slower: every replicate is a refit).
print("expert slopes (coef_, K x p):", np.round(moe.coef_, 3))
print("intercepts:", np.round(moe.intercept_, 1))
print("log-likelihood:", round(moe.log_likelihood(X, y), 2))

# %%
# Maximum likelihood or the Lasso? The default fit (``alpha = alpha_gate =
# 0.01``, on the standardised slopes) is what you want when there are many
# candidate features and you want the irrelevant ones at exactly zero; with
# one feature the penalty only shrinks, so the two fits nearly agree, and
# only the unpenalised one has a likelihood theory (standard errors, LRT).
# To get intervals after a Lasso selection, ``refit`` the selected support
# (the intervals are then conditional on the selection).
lasso = GaussianMoERegressor(n_components=2, random_state=0).fit(X, y)
print("default (Lasso) slopes:", np.round(lasso.coef_.ravel(), 3),
      " log-likelihood:", round(lasso.log_likelihood(X, y), 2))

# %%
# 2. How many experts?
# --------------------
# ``select_n_components`` fits each candidate and tabulates log-likelihood,
# df, BIC and ICL (``method='heldout'`` and ``'bootstrap_lrt'`` are the
# slower alternatives). Extra keyword arguments go to every fit.
sel = select_n_components(X, y, (1, 2, 3), method="bic", alpha=0, alpha_gate=0,
                          random_state=0)
print(sel.summary())
print("K chosen by BIC:", sel.n_components)

# %%
# 3. Do the restarts agree?
# -------------------------
# ``restart_objectives_`` holds the final objective of every restart. When
# only one restart reaches the best value and the next is more than 1 nat
# lower, ``fit`` warns that the optimum may be local: raise ``n_init`` (and
# look at the table again) until the best value is reached more than once.
# (They are per-sample penalised log-likelihoods: -5.83 x 235 = -1370.) The
# warning printed above came from the K = 3 candidate of
# ``select_n_components``; with ``n_init=8`` it goes away.
print("restart objectives:", np.round(moe.restart_objectives_, 3))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    GaussianMoERegressor(n_components=3, alpha=0, alpha_gate=0, n_init=8,
                         random_state=0).fit(X, y)
print("warnings with K=3, n_init=8:", [str(w.message)[:70] for w in caught] or "none")

# %%
# 4. Mixture of regressions, and the formula interface
# ----------------------------------------------------
# ``gate='constant'`` replaces the softmax gates by mixing proportions: the
# model of mixtools' ``regmixEM`` and of flexmix without a concomitant model.
# The formula ``foodexp ~ income | 1`` says the same in R's notation
# (experts on ``income``, a constant gate).
mix = GaussianMoERegressor(n_components=2, gate="constant", alpha=0,
                           alpha_gate=0, random_state=0).fit(X, y)
print("constant gate, log-likelihood:", round(mix.log_likelihood(X, y), 2))
print(mix.summary(X, y))
form = GaussianMoERegressor.from_formula("foodexp ~ income | 1", engel,
                                         alpha=0, alpha_gate=0, random_state=0)
print("formula fit, expert slopes:", np.round(form.coef_.ravel(), 3))

# %%
# R's flexmix and mixtools on the same model (``benchmarks/results/moe_realdata.md``,
# measured 2026-12-04, ``benchmarks/bench_moe_realdata.py``): log-likelihood
# -1378.54 (mixstat, reached from 10 of 10 seeds), -1378.55 (flexmix,
# best of 5 starts), -1379.158 (``regmixEM``); BIC picks K = 3 in both
# mixstat and flexmix.
#
# 5. Cross-validated penalties on diabetes
# ----------------------------------------
# :class:`~mixstat.moe.GaussianMoERegressorCV` chooses the number of experts
# and the Lasso penalty along a path (relaxed fits, extended BIC by default,
# ``cv=5`` for held-out likelihood). Here on scikit-learn's diabetes data in
# its original units, with three features.
diabetes = load_diabetes(as_frame=True, scaled=False)
Xd = diabetes.data[["bmi", "bp", "s5"]]
yd = diabetes.target.rename("progression")
cv = GaussianMoERegressorCV(n_components=(1, 2), n_alphas=8, random_state=0).fit(Xd, yd)
print("chosen K:", cv.n_components_, " alpha:", round(float(cv.alpha_), 4))
print("expert slopes on (bmi, bp, s5):\n", np.round(cv.coef_, 3))

# %%
# The figure: points coloured by their posterior expert, each expert's line
# and the mixture mean. On the left the Engel fit; on the right the partial
# effect of bmi in the diabetes fit (the other features at their means).
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
plot_moe_fit(moe, X, y, ax=ax1)
ax1.set_title("Engel, K = 2 (unpenalised)", fontsize="medium")
plot_moe_fit(cv, Xd, yd, feature="bmi", ax=ax2)
ax2.set_title("diabetes, GaussianMoERegressorCV", fontsize="medium")
fig.tight_layout()
plt.show()
