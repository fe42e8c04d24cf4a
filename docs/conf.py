"""Sphinx configuration of the normkit documentation site.

    pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html

The user guide is Markdown (myst-parser, ``docs/guide/*.md``; the toctree
in ``index.md`` lists the pages in reading order and ends with a glob, so a
new page there is picked up without an edit), the API reference is
generated from the docstrings (autosummary + numpydoc) of the modules
listed in ``docs/api/index.rst``, each module's ``__all__``. Building needs the installed
package (its native extension), but runs no benchmark: the plots in
``docs/_static/`` are made by ``docs/plots/make_plots.py``.
"""

import normkit

project = "normkit"
author = "the normkit authors"
copyright = "2026, the normkit authors"
version = release = normkit.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "plots"]
templates_path = ["_templates"]

# Markdown: $...$ and $$...$$ math, and GitHub-style #heading-anchors, so
# the guide pages read the same on GitHub and on the site.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# API reference: one page per public name, the names being each module's
# __all__ (autosummary's module template in _templates/autosummary).
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
autodoc_typehints = "none"  # the signatures show them; numpydoc lists the parameters
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "pydata_sphinx_theme"
html_title = f"normkit {release}"
html_static_path = ["_static"]
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
