"""Transformer building blocks on the normkit kernels (NumPy weights,
BLAS matmuls, every softmax and norm through normkit)."""
