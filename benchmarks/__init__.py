"""asv benchmark suites for fastnmf (run ``asv run --python=same`` from the repo root).

``python benchmarks/compare.py`` prints the side-by-side table with scikit-learn and the
two-GEMM floor that the README's performance section quotes.
"""

import os

# As ``import fastnmf`` does when it comes first: idle OpenBLAS threads stop spinning
# soon after each call (read when NumPy loads OpenBLAS, so it is set before any import).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
