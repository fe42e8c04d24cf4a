"""A stack of blocks with an optional final norm and output head, and the
token embeddings in front of it."""

from __future__ import annotations

import numpy as np

from .block import Block
from .layers import Linear, as_param


class Embeddings:
    """Sum of word, (absolute) position and token-type embeddings, then an
    optional norm (BERT has one, Pre-LN models usually do not).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import Embeddings
    >>> embed = Embeddings(np.arange(6.0).reshape(3, 2), position=np.array([[0.5, 0.5], [1.0, 1.0]]))
    >>> embed([[2, 0]])  # word 2 at position 0, word 0 at position 1
    array([[[4.5, 5.5],
            [1. , 2. ]]])
    """

    def __init__(self, word, position=None, token_type=None, norm=None):
        self.word = as_param("Embeddings.word", word)
        if self.word.ndim != 2:
            raise ValueError(f"Embeddings.word: expected shape (vocab, width), got {self.word.shape}")
        dtype, width = self.word.dtype, self.word.shape[1]
        self.position = None if position is None else as_param("Embeddings.position", position, dtype)
        self.token_type = None if token_type is None else as_param("Embeddings.token_type", token_type, dtype)
        for name, table in (("position", self.position), ("token_type", self.token_type)):
            if table is not None and (table.ndim != 2 or table.shape[1] != width):
                raise ValueError(f"Embeddings.{name}: expected shape (n, {width}), got {table.shape}")
        self.norm = norm

    @property
    def dtype(self) -> np.dtype:
        return self.word.dtype

    def tables(self) -> list[np.ndarray]:
        return [t for t in (self.word, self.position, self.token_type) if t is not None]

    def __call__(self, input_ids, token_type_ids=None) -> np.ndarray:
        ids = _token_ids("input_ids", input_ids, self.word.shape[0])
        h = self.word[ids]
        if self.position is not None:
            if ids.shape[1] > self.position.shape[0]:
                raise ValueError(f"input_ids: length {ids.shape[1]} exceeds the {self.position.shape[0]} positions")
            h += self.position[: ids.shape[1]]
        if self.token_type is not None:
            types = np.zeros_like(ids) if token_type_ids is None else _token_ids(
                "token_type_ids", token_type_ids, self.token_type.shape[0])
            if types.shape != ids.shape:
                raise ValueError(f"token_type_ids: shape {types.shape} differs from input_ids {ids.shape}")
            h += self.token_type[types]
        return h if self.norm is None else self.norm(h)


def _token_ids(name: str, ids, vocab: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected a 2-d integer array (batch, length), got {ids.dtype} {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(f"{name}: ids must lie in [0, {vocab})")
    return ids


class Stack:
    """``head(final_norm(block_L(...block_1(h))))``; ``final_norm`` and
    ``head`` are optional.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import LayerNorm, Stack
    >>> stack = Stack([], final_norm=LayerNorm(np.ones(2), np.zeros(2)))
    >>> np.round(stack(np.array([[[1.0, 3.0]]])), 4)
    array([[[-1.,  1.]]])
    """

    def __init__(self, blocks: list[Block], final_norm=None, head: Linear | None = None):
        self.blocks, self.final_norm, self.head = list(blocks), final_norm, head

    def __call__(self, h: np.ndarray, attention_mask=None, *, hidden_states: list | None = None) -> np.ndarray:
        """Runs the blocks on ``h`` (batch, length, width). When a list is
        passed as ``hidden_states``, each block's output is appended to it."""
        for block in self.blocks:
            h = block(h, attention_mask)
            if hidden_states is not None:
                hidden_states.append(h)
        if self.final_norm is not None:
            h = self.final_norm(h)
        return h if self.head is None else self.head(h)


class Transformer:
    """Embeddings followed by a Stack: token ids in, hidden states out.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.nn import random_transformer
    >>> model = random_transformer(width=8, n_heads=2, n_layers=2)
    >>> out, hidden = model(np.array([[5, 7, 9]]), output_hidden_states=True)
    >>> out.shape, len(hidden)  # embeddings + one state per block
    ((1, 3, 8), 3)
    """

    def __init__(self, embeddings: Embeddings, stack: Stack):
        self.embeddings, self.stack = embeddings, stack

    @property
    def dtype(self) -> np.dtype:
        return self.embeddings.dtype

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *,
                 output_hidden_states: bool = False):
        """The output of the stack, shape (batch, length, out). With
        ``output_hidden_states``, also the list [embeddings output, block 1
        output, ..., block L output] (before the final norm)."""
        h = self.embeddings(input_ids, token_type_ids)
        hidden = [h] if output_hidden_states else None
        out = self.stack(h, attention_mask, hidden_states=hidden)
        return (out, hidden) if output_hidden_states else out
