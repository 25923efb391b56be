"""Sphinx configuration of the mixstat documentation.

``make docs`` builds it with warnings as errors. Set ``MIXSTAT_DOCS_GALLERY=0``
to skip running the examples (the API pages and model pages still build).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import mixstat  # noqa: E402

project = "mixstat"
author = "mixstat developers"
copyright = "2026, mixstat developers"
release = mixstat.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx_gallery.gen_gallery",
]
myst_enable_extensions = ["dollarmath", "amsmath"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "contributing.md", "Thumbs.db", ".DS_Store"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
suppress_warnings = ["myst.header", "autosummary.import_cycle"]
# class pages: the class's own members in full, no table of inherited methods
# (scikit-learn's docstrings cross-reference labels of its own site)
templates_path = ["_templates"]
# a method without a docstring stays bare rather than showing its parent's
# (torch's autograd.Function.forward refers to labels of the torch site)
autodoc_inherit_docstrings = False
intersphinx_mapping = {}
html_theme = "pydata_sphinx_theme" if __import__("importlib").util.find_spec("pydata_sphinx_theme") else "alabaster"
html_title = "mixstat"



def _skip_metadata_requests(app, what, name, obj, skip, options):
    """Hide scikit-learn's generated ``set_{method}_request`` methods (documented
    by scikit-learn's metadata-routing guide, not here)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)


sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": os.environ.get("MIXSTAT_DOCS_GALLERY", "1") != "0",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "write_computation_times": False,
}
