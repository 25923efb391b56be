"""
The figure of a mixture of experts: data, expert lines and the mixture mean
===========================================================================

Fit a two-expert Gaussian mixture of experts and draw what every user draws
first with :func:`mixstat.plotting.plot_moe_fit`: the data coloured by each
point's posterior probability of belonging to each expert, every expert's
fitted line and the mixture mean :math:`E[y \\mid x] = \\sum_k g_k(x)\\mu_k(x)`.

Left: Engel's food-expenditure data (statsmodels' ``engel``: 235 Belgian
working-class households, 1857), food expenditure against income, one
feature, so the lines are the experts themselves. Right: scikit-learn's
diabetes data in its original units (``scaled=False``), disease progression
against body-mass index in a model with three features (bmi, blood pressure,
s5); the lines are partial effects, the other two features held at their
means, while the points are the raw responses. The axis labels are the
DataFrame's column names and the Series' name. The example needs statsmodels
for the Engel data.
"""

import matplotlib.pyplot as plt
import statsmodels.api as sm
from sklearn.datasets import load_diabetes

from mixstat.moe import GaussianMoERegressor
from mixstat.plotting import plot_moe_fit

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))

# Engel: one feature (a DataFrame column), the response a named Series
engel = sm.datasets.engel.load_pandas().data
X, y = engel[["income"]], engel["foodexp"]
moe = GaussianMoERegressor(n_components=2, random_state=0).fit(X, y)
plot_moe_fit(moe, X, y, ax=ax1)
ax1.set_title("Engel food expenditure (statsmodels)", fontsize="medium")

# diabetes: three features, the partial effect of bmi
diabetes = load_diabetes(as_frame=True, scaled=False)
Xd = diabetes.data[["bmi", "bp", "s5"]]
yd = diabetes.target.rename("progression")
moe_d = GaussianMoERegressor(n_components=2, random_state=0).fit(Xd, yd)
plot_moe_fit(moe_d, Xd, yd, feature="bmi", ax=ax2)

fig.tight_layout()
fig.savefig("moe_fit.png", dpi=110)
print(moe_d.summary(Xd, yd))
plt.show()
