"""``summary()`` objects: statsmodels-style tables that print as text and
render as HTML in a notebook.

The tables are statsmodels' :class:`~statsmodels.iolib.table.SimpleTable`
(statsmodels is the ``stats`` extra, imported only when a summary is made).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .._backend import has_module

__all__ = ["ModelSummary", "SummaryMixin", "check_summary_fitted", "format_pvalue",
           "format_value"]


def format_value(v, digits=4):
    """Short text of a number for a table (integers stay integers)."""
    if v is None:
        return ""
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) < 10 ** -(digits - 1) or abs(v) >= 10**6):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}" if abs(v) >= 10 ** (digits) else f"{v:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return str(v)


PVALUE_FLOOR = 1e-16


def format_pvalue(p, digits=4):
    """Text of a p-value: never ``0``.

    Below ``1e-16`` (the resolution of a double-precision p-value near 1 is
    about 1e-16, and far in the tail the normal survival function underflows
    to 0) it prints ``<1e-16``; below ``10**-(digits-1)`` in scientific
    notation; otherwise with ``digits`` decimals. NaN prints ``nan``.
    """
    if p is None:
        return ""
    p = float(p)
    if math.isnan(p):
        return "nan"
    if p < PVALUE_FLOOR:
        return "<1e-16"
    if p < 10 ** -(digits - 1):
        return f"{p:.{digits - 1}e}"
    return f"{p:.{digits}f}"


def _is_pvalue_column(name):
    """Columns printed by :func:`format_pvalue`: statsmodels' ``P>|z|`` / ``P>|t|``
    and any named ``p-value`` / ``pvalue``."""
    n = str(name).strip().lower()
    return n.startswith("p>|") or n in ("p-value", "pvalue", "p_value")


class ModelSummary:
    """A fitted model's summary: an information block, tables and notes.

    Parameters
    ----------
    title : str
    info : mapping of str to value
        Model-level facts (log-likelihood, AIC / BIC, iterations, convergence,
        backend, ...), printed in two columns.
    tables : sequence of (title, row_names, column_names, values)
        ``values`` is a 2-D array-like (numbers or strings). Columns named
        ``P>|z|`` / ``P>|t|`` / ``p-value`` print with :func:`format_pvalue`
        (``<1e-16``, never 0).
    notes : sequence of str
        Printed below the tables.

    Examples
    --------
    >>> s = ModelSummary("Demo", {"n": 10}, [("t", ["a"], ["coef"], [[1.5]])])
    >>> print(s)  # doctest: +SKIP
    """

    def __init__(self, title, info: Mapping, tables: Sequence = (), notes: Sequence = ()):
        self.title = title
        self.info = dict(info)
        self.tables = [
            (t, list(rows), list(cols), np.asarray(vals, dtype=object).reshape(len(rows), len(cols)))
            for t, rows, cols, vals in tables
        ]
        self.notes = list(notes)

    # --- statsmodels tables -------------------------------------------------
    def _simple_tables(self):
        if not has_module("statsmodels"):
            raise ImportError("summary() needs statsmodels: pip install 'mixstat[stats]'")
        from statsmodels.iolib.table import SimpleTable

        items = [(k, format_value(v)) for k, v in self.info.items()]
        half = (len(items) + 1) // 2
        left, right = items[:half], items[half:]
        right += [("", "")] * (len(left) - len(right))
        info_rows = [[f"{a}:", b, f"{c}:" if c else "", d] for (a, b), (c, d) in zip(left, right, strict=True)]
        out = [SimpleTable(info_rows, title=self.title)] if info_rows else []
        for title, rows, cols, vals in self.tables:
            fmt = [format_pvalue if _is_pvalue_column(c) else format_value for c in cols]
            data = [[f(v) if not isinstance(v, str) else v for f, v in zip(fmt, row, strict=True)]
                    for row in vals]
            out.append(SimpleTable(data, headers=cols, stubs=rows, title=title))
        return out

    def as_text(self):
        """The summary as plain text."""
        parts = [t.as_text() for t in self._simple_tables()]
        if self.notes:
            parts.append("\n".join(f"[{i + 1}] {n}" for i, n in enumerate(self.notes)))
        return "\n\n".join(parts)

    def as_html(self):
        """The summary as an HTML fragment."""
        parts = [t.as_html() for t in self._simple_tables()]
        if self.notes:
            parts.append("<p>" + "<br>".join(f"[{i + 1}] {n}" for i, n in enumerate(self.notes)) + "</p>")
        return "\n".join(parts)

    def to_frames(self):
        """The tables as a dict of pandas DataFrames (needs pandas)."""
        import pandas as pd

        return {t: pd.DataFrame(vals, index=rows, columns=cols) for t, rows, cols, vals in self.tables}

    def __str__(self):
        return self.as_text()

    def __repr__(self):
        return self.as_text()

    def _repr_html_(self):
        return self.as_html()


# ------------------------------------------------------ shared estimator part ---
def check_summary_fitted(estimator, attributes=None):
    """Raise sklearn's ``NotFittedError`` with a message naming ``summary()``
    when ``estimator`` is not fitted."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator, attributes)
    except NotFittedError:
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet: call "
            "'fit' with appropriate arguments before 'summary()'."
        ) from None


class SummaryMixin:
    """``summary()`` for an estimator: checks that it is fitted, then returns
    the :class:`ModelSummary` built by the estimator's ``_summary()``.

    ``_summary_fitted_attribute`` (str or None) names the attribute whose
    presence means 'fitted' (None: any attribute ending in ``_``).
    """

    _summary_fitted_attribute = None

    def summary(self):
        """A summary of the fitted model (prints as text, renders as HTML).

        Returns
        -------
        mixstat.utils.ModelSummary

        Raises
        ------
        sklearn.exceptions.NotFittedError
            When called before ``fit``.
        """
        check_summary_fitted(self, self._summary_fitted_attribute)
        return self._summary()

    def _summary(self):  # pragma: no cover - every user defines it
        raise NotImplementedError
