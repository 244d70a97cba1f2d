"""asv benchmark suites for fastnmf (run ``asv run --python=same`` from the repo root).

``python benchmarks/compare.py`` prints the side-by-side table with scikit-learn and the
two-GEMM floor that the README's performance section quotes.
"""
