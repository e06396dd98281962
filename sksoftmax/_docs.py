"""Where the documentation lives: the target of the HTML representation's "?".

The one place that names the URL is ``[project.urls] Documentation`` in
pyproject.toml; it reaches the package's installed metadata (a
``Project-URL``), which is read here. Without an installed distribution
(a source tree on ``sys.path``) there is no documentation URL to point at
and the estimators show no "?" link.
"""

import functools
from importlib import metadata


@functools.lru_cache(maxsize=1)
def docs_url():
    """The ``Documentation`` URL of the installed package's metadata, or ""
    when the package is not installed or declares none."""
    try:
        entries = metadata.metadata("sksoftmax").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return ""
    for entry in entries:  # "label, url"
        label, _, url = entry.partition(",")
        if label.strip().lower() == "documentation":
            return url.strip()
    return ""


def doc_link_template():
    """``_doc_link_template`` of the estimators: the README's API section has
    one heading per estimator, and GitHub's anchor of a heading is its
    lowercased text ("" when there is no documentation URL: no link)."""
    url = docs_url()
    return url + "#{anchor}" if url else ""


def doc_link_params(estimator):
    """The parameters of :func:`doc_link_template` for one estimator."""
    return {"anchor": type(estimator).__name__.lower()}
