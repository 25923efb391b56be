r"""R-style formulas for the Gaussian mixture of experts (optional: formulaic).

``"y ~ x + I(x**2) | z"`` reads as flexmix's
``flexmix(y ~ x + I(x^2), concomitant = FLXPmultinom(~ z))``: the experts
regress ``y`` on the terms left of ``|``, the gates on the terms right of it.
``| 1`` asks for a constant gate (a mixture of regressions, flexmix without a
concomitant model); without ``|`` the gates use the experts' terms.
"""

from __future__ import annotations

import numpy as np

__all__ = ["design_from_formula"]


def _split(formula):
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(f"formula must read 'y ~ experts [| gates]', got {formula!r}")
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if rhs.count("|") > 1:
        raise ValueError(f"formula has more than one '|': {formula!r}")
    experts, _, gates = (part.strip() for part in rhs.partition("|"))
    if not lhs or not experts:
        raise ValueError(f"formula needs a response and expert terms: {formula!r}")
    return lhs, experts, (gates if "|" in rhs else None)


def _columns(terms, data):
    from formulaic import model_matrix

    mm = model_matrix(f"{terms} - 1" if terms not in ("1", "0") else "0", data,
                      na_action="raise")
    return mm


def design_from_formula(formula, data):
    r"""Design matrix, response and column subsets from an R-style formula.

    Parameters
    ----------
    formula : str
        ``"y ~ expert terms | gate terms"`` in Wilkinson notation (formulaic
        syntax: ``x + I(x**2)``, ``C(group)``, ``x:z``, ...). No intercept
        column is made: every expert and gate has its own unpenalised
        intercept. ``| 1`` (or ``| 0``) gives a constant gate; without
        ``|`` the gates use the experts' terms.
    data : pandas.DataFrame
        Must hold every variable of the formula; the response may be absent
        (new data to predict on), then ``y`` is None.

    Returns
    -------
    X : pandas.DataFrame
        The columns of the expert terms, then the gate columns not among them,
        named as formulaic names them (``'I(x ** 2)'``).
    y : pandas.Series or None
    params : dict
        ``expert_features`` and either ``gate_features`` or
        ``gate='constant'``: the keyword arguments of
        :class:`~mixstat.moe.GaussianMoERegressor` for this formula.

    Examples
    --------
    >>> X, y, params = design_from_formula("yn ~ x + I(x**2) | x", npreg)  # doctest: +SKIP
    >>> GaussianMoERegressor(2, **params).fit(X, y)  # doctest: +SKIP
    """
    try:
        import formulaic  # noqa: F401
        import pandas as pd
    except ImportError as exc:
        raise ImportError("formulas need formulaic and pandas: "
                          "pip install 'mixstat[formula]'") from exc
    lhs, experts, gates = _split(formula)
    if not isinstance(data, pd.DataFrame):
        raise ValueError("data must be a pandas DataFrame for a formula")
    Xe = _columns(experts, data)
    names = [str(c) for c in Xe.columns]
    frames = [pd.DataFrame(np.asarray(Xe, dtype=float), columns=names, index=data.index)]
    params = {"expert_features": list(names)}
    if gates is None:
        params["gate_features"] = list(names)
    elif gates in ("1", "0"):
        params["gate"] = "constant"
    else:
        Xg = _columns(gates, data)
        gnames = [str(c) for c in Xg.columns]
        extra = [g for g in gnames if g not in names]
        if extra:
            frames.append(pd.DataFrame(np.asarray(Xg[extra], dtype=float), columns=extra,
                                       index=data.index))
        params["gate_features"] = gnames
    X = pd.concat(frames, axis=1)
    if lhs in data.columns:
        y = data[lhs].astype(float)
    else:
        from formulaic import model_matrix

        try:
            y = model_matrix(f"{lhs} ~ 1", data).lhs.iloc[:, 0].astype(float)
        except Exception:  # noqa: BLE001 - a response not in new data
            y = None
    if params.get("gate_features") == params["expert_features"] and gates is None:
        params.pop("gate_features")  # every column for both: the defaults
        params.pop("expert_features")
    return X, y, params
