"""Shared set-up of the pytest-benchmark files: normkit runs on one thread
(as the peers do), restored afterwards."""

from __future__ import annotations

import pytest

import normkit


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = normkit.get_num_threads()
    normkit.set_num_threads(1)
    yield
    normkit.set_num_threads(threads)
