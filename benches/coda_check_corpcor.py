"""Cross-check normkit.coda's shrinkage against R's corpcor (not part of CI).

Needs ``Rscript`` with the corpcor package (on Debian: ``apt-get install
r-cran-corpcor``). Runs propr's ``pcor.bshrink`` recipe written with corpcor
(``cov.shrink`` of the log-proportions, clr centring, ``cor2pcor``) and
corpcor's ``cor2pcor`` of the plain clr covariance, on the same data as
normkit, and prints the largest differences.

    python benches/coda_check_corpcor.py [--samples 30] [--parts 60]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from normkit import coda
from normkit.compare import cpu_model

R_SCRIPT = r"""
suppressMessages(library(corpcor))
args <- commandArgs(trailingOnly = TRUE)
x <- as.matrix(read.csv(args[1], header = FALSE))
D <- ncol(x)
G <- diag(D) - matrix(1 / D, D, D)
logp <- log(x / rowSums(x))
s <- cov.shrink(logp, verbose = FALSE)
write.table(cor2pcor(G %*% s %*% G), args[2], sep = ",", row.names = FALSE, col.names = FALSE)
write.table(c(attr(s, "lambda"), attr(s, "lambda.var")), args[3], row.names = FALSE, col.names = FALSE)
clr <- log(x) - rowMeans(log(x))
write.table(cor2pcor(cov(clr)), args[4], sep = ",", row.names = FALSE, col.names = FALSE)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--parts", type=int, default=60)
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    logs = rng.normal(size=(args.samples, args.parts)) @ rng.normal(size=(args.parts, args.parts)) / 8
    x = np.exp(logs + rng.normal(size=args.parts))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        np.savetxt(d / "x.csv", x, delimiter=",", fmt="%.17g")
        (d / "run.R").write_text(R_SCRIPT)
        outputs = [d / "bshrink.csv", d / "lambdas.txt", d / "pcor.csv"]
        subprocess.run(["Rscript", str(d / "run.R"), str(d / "x.csv"), *map(str, outputs)], check=True)
        r_bshrink = np.loadtxt(outputs[0], delimiter=",")
        r_lambda, r_lambda_var = np.loadtxt(outputs[1])
        r_pcor = np.loadtxt(outputs[2], delimiter=",")
    ours = coda.shrunk_partial_correlations(x)
    print(f"cpu: {cpu_model()}")
    print(f"{args.samples} samples x {args.parts} parts")
    print(f"lambda     corpcor {r_lambda:.15f}  normkit {ours.lambda_cor:.15f}")
    print(f"lambda.var corpcor {r_lambda_var:.15f}  normkit {ours.lambda_var:.15f}")
    print(f"bshrink partial correlations: max |difference| {np.abs(r_bshrink - ours.correlations).max():.3g}")
    plain = coda.partial_correlations(x).correlations
    label = "plain clr partial correlations (cor2pcor of cov(clr))"
    print(f"{label}: max |difference| {np.abs(r_pcor - plain).max():.3g}")


if __name__ == "__main__":
    main()
