"""The batched simulation core: state arrays, numba kernels and the World that steps them."""
