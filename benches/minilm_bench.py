"""all-MiniLM-L6-v2 sentence embeddings: normkit.nn (NumPy + normkit
kernels) against the original model on PyTorch CPU.

    python benches/minilm_bench.py [--threads 1] [--repeats 7] [--copies 4] [--batch-size 32]

The sentences are the 32 of minilm_public.npz (found as in
``normkit.nn.minilm.reference_path``; else the demo sentences), repeated
``--copies`` times. Both sides tokenize, run the encoder, mean-pool and
L2-normalize, batch after batch. The peer is sentence-transformers if it is
installed, else transformers (+ the same pooling), else none; it is an
optional peer, not a dependency. Times are medians of ``--repeats`` runs
after one warm-up, the contenders alternating within each repeat (so both
see the same machine load), with ``--threads`` threads for BLAS, torch and
normkit's kernels (``--normkit-threads`` to set the latter apart).
"""

from __future__ import annotations

import argparse
import os


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--normkit-threads", type=int, default=None)
    return parser.parse_args()


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import normkit  # noqa: E402
from normkit.compare import cpu_model, interleaved_medians  # noqa: E402
from normkit.nn import minilm  # noqa: E402


def torch_peer(threads: int):
    """(name, encode function) of the PyTorch original, or None."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    path = str(minilm.model_dir())
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        SentenceTransformer = None
    if SentenceTransformer is not None:
        model = SentenceTransformer(path, device="cpu")
        version = __import__("sentence_transformers").__version__
        return (f"sentence-transformers {version} (torch {torch.__version__})",
                lambda s: model.encode(s, batch_size=ARGS.batch_size, convert_to_numpy=True))
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        return None
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def encode(sentences):
        out = []
        with torch.inference_mode():
            for i in range(0, len(sentences), ARGS.batch_size):
                batch = tokenizer(sentences[i:i + ARGS.batch_size], padding=True, truncation=True,
                                  max_length=256, return_tensors="pt")
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.concatenate(out)

    return f"transformers (torch {torch.__version__})", encode


def main() -> None:
    kernel_threads = ARGS.threads if ARGS.normkit_threads is None else ARGS.normkit_threads
    normkit.set_num_threads(kernel_threads)
    path = minilm.reference_path()
    base = [str(s) for s in np.load(path)["sentences"]] if path else list(minilm.DEMO_SENTENCES)
    sentences = base * ARGS.copies
    ours = minilm.MiniLM()
    print(f"cpu: {cpu_model()}")
    print(f"normkit {normkit.cpu_info()['active']}, {ARGS.threads} BLAS/torch thread(s), {kernel_threads} normkit "
          f"kernel thread(s), {len(sentences)} sentences, batch size {ARGS.batch_size}, medians of {ARGS.repeats}")
    contenders = {"normkit.nn (NumPy/OpenBLAS + normkit)": lambda: ours.encode(sentences, ARGS.batch_size)}
    peer = torch_peer(ARGS.threads)
    if peer is None:
        print("no PyTorch peer installed (sentence-transformers / transformers)")
    else:
        name, encode = peer
        contenders[name] = lambda: encode(sentences)
        diff = np.abs(ours.encode(sentences, ARGS.batch_size) - encode(sentences)).max()
        print(f"max |embedding difference| normkit vs peer: {diff:.2e}")
    for name, seconds in interleaved_medians(contenders, ARGS.repeats).items():
        print(f"{name:>60}: {len(sentences) / seconds:8.1f} sentences/s ({seconds * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
