"""
Mixture proportion estimation beyond irreducibility with SuMPE
===============================================================

We observe a sample of a component :math:`H = N(0, 1)` and a sample of the
mixture :math:`F = \\kappa^* H + (1-\\kappa^*) G` with
:math:`G = 0.8\\,N(3, 2^2) + 0.2\\,N(4, 1)`. Because the wide part of :math:`G`
holds some :math:`H`, every classic estimator targets
:math:`\\kappa(F|H) > \\kappa^*`. SuMPE (Zhu et al., ICML 2023) subsamples the
mixture with an acceptance :math:`\\alpha(x) \\ge P(H|x)` learned on a labeled
source domain that covers only :math:`x < 2`, and recovers :math:`\\kappa^*`.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import KernelMeanMPE, RegroupingMPE, SubsamplingMPE

d = make_sumpe_synthetic(0.25, random_state=0)

# the acceptance: a posterior learned on the truncated source domain (logistic
# regression on degree-2 features: exact for the log ratio of two Gaussians)
source_clf = make_pipeline(StandardScaler(), PolynomialFeatures(2), StandardScaler(),
                           LogisticRegression(max_iter=1000))
source_clf.fit(d.X_source, d.y_source)

plain = KernelMeanMPE("KM2", random_state=0).fit(d.X, d.y)
recpe = RegroupingMPE(KernelMeanMPE("KM2"), random_state=0).fit(d.X, d.y)
sumpe = SubsamplingMPE(KernelMeanMPE("KM2"), source_clf, region=d.region,
                       lower_threshold=1e-5, random_state=0).fit(d.X, d.y)
for name, est in [("KM2", plain), ("ReCPE-KM2", recpe), ("SuMPE-KM2", sumpe)]:
    print(f"{name:10s} kappa_hat = {est.proportion_:.3f}")
print(f"kappa* = {d.kappa_star}, kappa(F|H) = {d.kappa_max:.3f}")

# %%
# The identifiability picture: :math:`\kappa^* h` and the largest multiple of
# :math:`h` under :math:`f`, :math:`\kappa(F|H)\, h`; on the right the
# posterior :math:`\tau = \kappa^* h / f` and the learned acceptance.
x = np.linspace(-4, 8, 600)
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
a1.plot(x, np.exp(d.log_f(x)), "k", label="mixture $f$")
a1.fill_between(x, d.kappa_star * np.exp(d.log_h(x)), alpha=0.3, label=r"$\kappa^* h$")
a1.plot(x, d.kappa_max * np.exp(d.log_h(x)), "r--", label=r"$\kappa(F|H)\,h$")
a1.axvline(d.kappa_max_at, color="r", lw=0.5)
a1.set_title(r"$\kappa^*=0.25$, $\kappa(F|H)=%.3f$" % d.kappa_max)
a1.legend()
a2.plot(x, d.posterior(x), "k", label=r"posterior $\tau(x)$")
alpha = np.where(x < 2, source_clf.predict_proba(x[:, None])[:, 1], 1.0)
a2.plot(x, alpha, "b", label=r"acceptance $\alpha(x)$ (source, $x<2$)")
a2.set_title("SuMPE: KM2 %.3f -> %.3f" % (plain.proportion_, sumpe.proportion_))
a2.legend()
fig.tight_layout()
plt.show()
