"""Transformer building blocks on the normkit kernels.

Weights are NumPy arrays (float32 or float64; the computation follows the
weights' dtype), matmuls go through NumPy/BLAS, and every softmax and norm
through the normkit kernels.

* layers: Linear, LayerNorm, RMSNorm, CRMSNorm
* attention: MultiHeadSelfAttention (padding and causal masks)
* mlp: MLP (exact / tanh GELU), SwiGLU
* block: Block (norm_position "post" / "pre", norm type "layer" / "rms" / "crms")
* stack: Embeddings, Stack (optional final norm and head), Transformer
* schedules: Mix-LN positions, LayerNorm Scaling factors
* convert: exact Pre-LN -> Pre-RMSNorm -> Pre-CRMSNorm conversions
* build: random models; pooling: mean pooling, L2 normalization
* minilm: all-MiniLM-L6-v2 sentence embeddings (``minilm.demo()``)
"""

from __future__ import annotations

from . import minilm
from .attention import MultiHeadSelfAttention
from .block import Block
from .build import random_transformer
from .convert import pre_ln_to_pre_rmsnorm, pre_rmsnorm_to_pre_crmsnorm
from .layers import CRMSNorm, LayerNorm, Linear, RMSNorm, make_norm
from .minilm import MiniLM
from .mlp import MLP, SwiGLU
from .pooling import l2_normalize, mean_pool
from .schedules import layernorm_scaling, mix_ln_positions, norm_positions
from .stack import Embeddings, Stack, Transformer

__all__ = [
    "Block", "CRMSNorm", "Embeddings", "LayerNorm", "Linear", "MLP", "MiniLM", "MultiHeadSelfAttention",
    "RMSNorm", "Stack", "SwiGLU", "Transformer", "l2_normalize", "layernorm_scaling", "make_norm",
    "mean_pool", "minilm", "mix_ln_positions", "norm_positions", "pre_ln_to_pre_rmsnorm",
    "pre_rmsnorm_to_pre_crmsnorm", "random_transformer",
]
