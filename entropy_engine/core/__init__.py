"""The batched simulation core: the state every backend shares, numba kernels, the backends that step it."""
