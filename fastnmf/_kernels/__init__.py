"""Numba kernels: typed, contiguous arrays in, arrays out. No validation, no defaults."""
