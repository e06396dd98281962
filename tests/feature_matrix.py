"""What works where: features x input kinds x solvers, in one place.

``tests/test_matrix.py`` runs every cell against the in-memory NumPy fit, and
``docs/feature_matrix.py`` prints the README's table from the same
definitions, so the table cannot drift from what is tested.
"""

SOLVERS = ("lbfgs", "sgd", "adam")

# Input kinds, in the order of the README's columns.
KINDS = {
    "numpy": "NumPy",
    "csr": "SciPy CSR",
    "strict": "array_api_strict",
    "pandas": "pandas",
    "dask": "Dask (2 worker processes)",
    "memmap": "memmap (streamed)",
}

# Features: the README's row label, the estimator parameters, and which
# solvers have the feature at all (the others show "n/a").
FEATURES = {
    "plain": ("defaults", {}, SOLVERS),
    "sample_weight": ("`sample_weight`", {}, SOLVERS),
    "balanced": ('`class_weight="balanced"`', {"class_weight": "balanced"}, SOLVERS),
    "balanced_sw": (
        '`class_weight="balanced"` + `sample_weight`',
        {"class_weight": "balanced"},
        SOLVERS,
    ),
    "dict_cw": ("`class_weight` dict", {"class_weight": {0: 2.0, 2: 0.5}}, SOLVERS),
    "l1_half": ("`l1_ratio=0.5`", {"l1_ratio": 0.5, "C": 0.5}, SOLVERS),
    "l1": ("`l1_ratio=1`", {"l1_ratio": 1.0, "C": 0.05}, SOLVERS),
    "smoothing": ("`label_smoothing=0.1`", {"label_smoothing": 0.1}, SOLVERS),
    "soft_names": ("soft labels with class names", {}, SOLVERS),
    "no_intercept": ("`fit_intercept=False`", {"fit_intercept": False}, SOLVERS),
    "float32": ("float32", {}, SOLVERS),
    "c_inf": ("`C=np.inf`", {"C": float("inf")}, SOLVERS),
    "warm_start": ("`warm_start=True`", {"warm_start": True}, SOLVERS),
    "early_stopping": (
        "`early_stopping=True`",
        {"early_stopping": True, "validation_fraction": 0.2},
        ("sgd", "adam"),
    ),
    "partial_fit": ("`partial_fit`", {}, ("sgd", "adam")),
}

# Cells refused with NotImplementedError (before any work), and why.
REFUSED = {
    ("early_stopping", "dask", "sgd"): "hold out a validation set yourself",
    ("early_stopping", "dask", "adam"): "hold out a validation set yourself",
}


def expected(feature, kind, solver):
    """``"equal"`` (the in-memory NumPy fit's result), ``"refused"``, or
    ``"n/a"`` (the solver has no such feature)."""
    if solver not in FEATURES[feature][2]:
        return "n/a"
    if (feature, kind, solver) in REFUSED:
        return "refused"
    return "equal"


def markdown_table():
    """The README's "what works where" table."""
    kinds = list(KINDS)
    lines = [
        "| feature | " + " | ".join(KINDS[k] for k in kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for feature, (label, _, _) in FEATURES.items():
        cells = []
        for kind in kinds:
            states = {s: expected(feature, kind, s) for s in SOLVERS}
            ok = [s for s in SOLVERS if states[s] == "equal"]
            refused = [s for s in SOLVERS if states[s] == "refused"]
            if refused and not ok:
                cells.append("refused")
            elif len(ok) == len(SOLVERS):
                cells.append("yes")
            elif refused:
                cells.append(f"{', '.join(ok)}; refused: {', '.join(refused)}")
            else:
                cells.append(", ".join(ok))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
