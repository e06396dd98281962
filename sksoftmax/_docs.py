"""Where the documentation lives: the target of the HTML representation's "?".

Keep ``DOCS_URL`` equal to ``[project.urls] Documentation`` in pyproject.toml
(a test checks it).
"""

DOCS_URL = "https://github.com/sksoftmax/sksoftmax/blob/main/README.md"

# The README's API section has one heading per estimator; GitHub's anchor of a
# heading is its lowercased text.
DOC_LINK_TEMPLATE = DOCS_URL + "#{anchor}"


def doc_link_params(estimator):
    """The parameters of ``DOC_LINK_TEMPLATE`` for one estimator."""
    return {"anchor": type(estimator).__name__.lower()}
