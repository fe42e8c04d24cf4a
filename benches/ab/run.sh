#!/bin/bash
# A/B of two builds of the kernels in one process:
#
#     benches/ab/run.sh REV_A REV_B [SHAPE ...]
#
# REV_A and REV_B are git revisions of this repository, or "." for its
# working tree as it is (the tree this script is in). Each build's Rust sources are copied to
# benches/ab/trees/{a,b} as packages of their own (distinct versions, an
# rlib only), and src/main.rs links both. Every round times a copy and the
# two builds of each kernel back to back, in alternating order; the report
# is the median over rounds of time(B) / time(A) and how many rounds B won.
# Rounds of a few milliseconds put both builds under the same machine
# state, which separate processes minutes apart do not share (see the
# performance page, issue 11 round 9).
#
# The kernels: softmax (three algorithms), log_softmax, logsumexp, RMSNorm,
# LayerNorm on float32 rows, and the int8 L1 norm on the same bytes (rows
# of 4 x COLS int8 elements).
#
# SHAPE is ROWSxCOLS (default: 16x1024 4x30522 64x30522 4096x1024 8192x384
# 65536x64); ROUNDS (default 21), ISA (default: the best this CPU has),
# ISA_B (B's level, when it differs from A's: `ISA=avx2 ISA_B=avx512
# run.sh main main` compares two levels of one build), KERNELS (a
# comma-separated list of the kernel names to time, default all) and SCALE (the
# inputs are uniform in [-SCALE/2, SCALE/2], default 20) are read from the
# environment.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
[ $# -ge 2 ] || { sed -n 2,20p "$0"; exit 2; }
copy() { # rev dir version
    rm -rf "$2"; mkdir -p "$2"
    if [ "$1" = . ]; then
        cp -r "$repo/rust" "$repo/Cargo.toml" "$repo/Cargo.lock" "$2/"
    else
        # -m: the files get the time of extraction, not of the commit, so
        # cargo rebuilds a tree that held another revision before.
        git -C "$repo" archive "$1" rust Cargo.toml Cargo.lock | tar -x -m -C "$2"
    fi
    # Cargo links two packages of one name only if their versions differ;
    # a cdylib has no hash in its file name, so both would write one file.
    # The [[bench]] targets are dropped (their files are not copied).
    sed -i -e "0,/^version = .*/s//version = \"$3\"/" \
        -e 's/^crate-type = .*/crate-type = ["rlib"]/' "$2/Cargo.toml"
    awk '/^\[/ { skip = ($0 == "[[bench]]") } !skip' "$2/Cargo.toml" > "$2/Cargo.toml.new"
    mv "$2/Cargo.toml.new" "$2/Cargo.toml"
}
copy "$1" "$here/trees/a" 0.0.1
copy "$2" "$here/trees/b" 0.0.2
shift 2
cd "$here"
cargo run --release --quiet -- "$@"
