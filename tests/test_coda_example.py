"""The shipped cups data and the worked example (python -m normkit)."""

import subprocess
import sys

import numpy as np

from normkit import coda


def test_cups_data_ships_with_the_package():
    x, names = coda.load_cups()
    assert x.shape == (47, 11)
    assert names == ["Si", "Al", "Fe", "Mg", "Ca", "Na", "K", "Ti", "P", "Mn", "Sb"]
    assert (x > 0).all()
    # oxide percentages: each cup sums to about 100
    assert np.all(np.abs(x.sum(axis=1) - 100) < 2)
    assert x[0, 0] == 75.2 and x[-1, -1] == 0.57  # first and last cells of the published table


def test_example_report_is_consistent_with_the_library():
    x, names = coda.load_cups()
    text = coda.example_cups(count=3)
    pc = coda.partial_correlations(x).correlations
    i, j = np.unravel_index(np.argmax(np.abs(np.triu(pc, 1))), pc.shape)
    assert f"{names[i]:>3}-{names[j]:<3} {pc[i, j]:+.3f}" in text
    assert "47 cups x 11 oxides" in text


def test_python_m_normkit_runs_the_example():
    out = subprocess.run([sys.executable, "-m", "normkit"], capture_output=True, text=True, check=True).stdout
    assert "Roman glass cups" in out and "partial correlations" in out
