"""
Gaussian mixture of experts: standard errors, summary and the number of experts
===============================================================================

Fit an unpenalised two-expert MoE, print its statsmodels-style summary
(observed-information standard errors; gate contrasts against the last expert),
refit a Lasso fit on its selected support, and choose the number of experts
by BIC, ICL and McLachlan's bootstrap likelihood-ratio test.
"""

import matplotlib.pyplot as plt

from mixstat.datasets import make_moe_regression
from mixstat.moe import GaussianMoERegressor, select_n_components

X, y = make_moe_regression(300, n_components=2, n_features=3, random_state=0)

# unpenalised fit: Wald inference from the observed information
mle = GaussianMoERegressor(2, alpha=0.0, alpha_gate=0.0, random_state=0).fit(X, y)
print(mle.summary(X, y))

# a Lasso fit has no intervals; its unpenalised refit on the support does
lasso = GaussianMoERegressor(2, alpha=0.05, alpha_gate=0.02, random_state=0).fit(X, y)
print(lasso.refit(X, y).summary(X, y, method="sandwich"))

# number of experts
sel = select_n_components(X, y, (1, 2, 3), method="bootstrap_lrt", n_bootstrap=19,
                          random_state=0, n_init=2)
print(sel.summary())

fig, ax = plt.subplots(figsize=(5, 3.5))
ks = sel.table["n_components"]
ax.plot(ks, sel.table["bic"], "o-", label="BIC")
ax.plot(ks, sel.table["icl"], "s--", label="ICL")
ax.axvline(sel.n_components, color="grey", lw=0.8, label=f"bootstrap LRT: K={sel.n_components}")
ax.set_xticks(ks)
ax.set_xlabel("number of experts K")
ax.set_ylabel("criterion (lower is better)")
ax.legend()
fig.tight_layout()
plt.show()
