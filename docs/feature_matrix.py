"""Print the README's "what works where" table from the test matrix's
definitions (tests/feature_matrix.py), so the table cannot drift from what
tests/test_matrix.py checks.

    python docs/feature_matrix.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from feature_matrix import markdown_table  # noqa: E402

if __name__ == "__main__":
    print(markdown_table())
