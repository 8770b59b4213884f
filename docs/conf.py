"""Sphinx configuration of fastloss's documentation: `make docs` builds it into build/docs, warnings as errors."""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import fastloss  # noqa: E402  (the package documented is the checkout's)

project = "fastloss"
release = fastloss.__version__
version = release.split("+")[0]
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"
html_theme = "alabaster"
html_title = f"fastloss {version}"

# fastloss's docstrings are plain text in Google style (an "Args:" section, read by napoleon), with
# formulas that use *, | and _ as text. Before napoleon reads them: those characters are escaped,
# and a line indented deeper or shallower than the one before it outside a section gets a blank
# line between, so free text becomes paragraphs and block quotes instead of malformed markup.
napoleon_numpy_docstring = False

SECTION = re.compile(
    r"^\s*(Args|Arguments|Returns|Raises|Yields|Keyword Args|Attributes|Example|Examples|Note|Notes):\s*$"
)


def _indent(line):
    return len(line) - len(line.lstrip())


def plain_text_docstring(app, what, name, obj, options, lines):
    escaped = [
        re.sub(
            r"(\w)_(?=\W|$)",
            r"\1\\_",
            line.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|").replace("`", "``"),
        )
        for line in lines
    ]
    out, section_indent = [], None
    for line in escaped:
        if SECTION.match(line):
            section_indent = _indent(line)
            if out and out[-1].strip():
                out.append("")
            out.append(line)
            continue
        if section_indent is not None and line.strip() and _indent(line) <= section_indent:
            section_indent = None
            if out and out[-1].strip():
                out.append("")
        if section_indent is None and line.strip() and out and out[-1].strip() and _indent(line) != _indent(out[-1]):
            out.append("")
        out.append(line)
    lines[:] = out


def setup(app):
    app.connect("autodoc-process-docstring", plain_text_docstring, priority=400)
