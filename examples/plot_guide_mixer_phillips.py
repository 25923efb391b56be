"""
Walkthrough: a regime-switching Phillips curve with MixER
=========================================================

Does the trade-off between unemployment and inflation change over time? A
single regression of US inflation on unemployment and last quarter's
inflation pools the 1960s, the stagflation of the 1970s and the quiet
decades after 1985. :class:`~mixstat.mixer.MixERRegressor` (Nzoyem, Barton &
Deakin, 2025) routes each quarter to one linear expert by K-means on *gate
features* ``Z`` (here the date), matches clusters to experts by their
errors, and refits the gate by least squares: a mixture of regressions
whose regimes are contiguous periods. The data are statsmodels'
``macrodata`` (US quarterly, 1959-2009). Experts are numbered from 0, as
``route`` returns them.
"""

import matplotlib.pyplot as plt
import numpy as np
import statsmodels.api as sm
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split

from mixstat.mixer import MixERRegressor

d = sm.datasets.macrodata.load_pandas().data
date = (d["year"] + (d["quarter"] - 1) / 4).to_numpy()
infl = d["infl"].to_numpy()
X = np.c_[d["unemp"].to_numpy()[1:], infl[:-1]]  # unemployment, lagged inflation
y = infl[1:]
Z = date[1:, None]                                  # gate feature: the date
idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.25,
                                       random_state=0)

# %%
# How many regimes? Fit three and look at ``expert_n_samples_``: an expert
# that receives a handful of quarters is fitting noise.
three = MixERRegressor(n_experts=3, random_state=0).fit(
    X[idx_train], y[idx_train], Z=Z[idx_train])
print("K = 3, quarters per expert:", three.expert_n_samples_)

# %%
# One of the three takes only a few quarters around 1984, so two regimes.
# Two regimes against one regression, scored on held-out quarters (a random
# quarter of the sample, so the regimes interpolate in time).
mixer = MixERRegressor(n_experts=2, random_state=0).fit(
    X[idx_train], y[idx_train], Z=Z[idx_train])
ols = LinearRegression().fit(X[idx_train], y[idx_train])
mse_mixer = np.mean((mixer.predict(X[idx_test], Z=Z[idx_test]) - y[idx_test]) ** 2)
mse_ols = np.mean((ols.predict(X[idx_test]) - y[idx_test]) ** 2)
print(f"held-out MSE (percentage points^2): MixER {mse_mixer:.2f}, "
      f"one regression {mse_ols:.2f}")

routes = mixer.route(X, Z=Z)
for k in range(2):
    years = date[1:][routes == k]
    print(f"expert {k}: {years.min():.0f}-{years.max():.0f}, "
          f"{(routes == k).sum()} quarters, slopes on (unemp, lagged infl) "
          f"{np.round(mixer.experts_[k].coef_, 2)}")

# %%
# The two regimes split in 1986: before it, inflation is persistent (slope
# about 0.7 on last quarter's inflation); after it, the Great Moderation,
# persistence falls to about 0.2. The unemployment slope is small in both.
# With a date as the only gate feature the regimes are periods; with more
# gate features (an oil-price index, a policy indicator) they need not be.
# The figure: inflation over time coloured by the expert each quarter is
# routed to, and each expert's fit.
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.plot(date[1:], y, color="0.7", lw=1, label="inflation")
ax.scatter(date[1:], mixer.predict(X, Z=Z), c=routes, cmap="tab10", vmin=0,
           vmax=9, s=10, label="MixER fit (colour: expert)")
ax.set_xlabel("year")
ax.set_ylabel("inflation (% a year)")
ax.legend(loc="upper right")
ax.set_title("US inflation, two MixER regimes routed by date", fontsize="medium")
fig.tight_layout()
plt.show()
