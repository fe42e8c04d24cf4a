"""Shared set-up of the pytest-benchmark files: normkit runs on one thread
(as the peers do), restored afterwards; the CPU model and normkit's active
instruction set are printed in the session header and stored in
pytest-benchmark's machine_info (``--benchmark-json``/``--benchmark-save``)."""

from __future__ import annotations

import pytest

import normkit
from normkit.compare import cpu_model


def _isa() -> str:
    info = normkit.cpu_info()
    return f"{info['active']} (available {', '.join(info['available'])})"


def pytest_report_header(config):
    return [f"cpu: {cpu_model()}", f"normkit {normkit.__version__}, isa {_isa()}"]


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["cpu_model"] = cpu_model()
    machine_info["normkit_isa"] = _isa()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = normkit.get_num_threads()
    normkit.set_num_threads(1)
    yield
    normkit.set_num_threads(threads)
