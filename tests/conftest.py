"""Shared fixtures.

``run_with_isa`` runs Python code in a fresh interpreter with
``NORMKIT_ISA`` set: the instruction set is chosen once per process, so the
lower levels are only reachable from a subprocess. Tests parametrize over
the levels themselves (``normkit.cpu_info()["available"]``, or every level
to check that a missing one is a clear error) and ask the fixture to run
their script.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import normkit

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def run_python_with_isa(isa: str | None, code: str, *, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Runs ``python -c code`` with ``NORMKIT_ISA=isa`` (``None``: unset,
    so the detected level) and returns the completed process (text stdout /
    stderr). The tests directory is on the child's ``sys.path``, so the
    script can import helpers from the test modules. ``check=True`` fails
    the test, with the child's stderr, when it exits non-zero."""
    env = {k: v for k, v in os.environ.items() if k != "NORMKIT_ISA"}
    if isa is not None:
        env["NORMKIT_ISA"] = isa
    env["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS_DIR, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"NORMKIT_ISA={isa}: the subprocess exited with {proc.returncode}\n{proc.stderr}", pytrace=False)
    return proc


@pytest.fixture(scope="session")
def run_with_isa():
    """``run_with_isa(isa, code, *, timeout=300, check=False)``: see
    :func:`run_python_with_isa`."""
    return run_python_with_isa


@pytest.fixture
def native_calls(monkeypatch):
    """``native_calls(module)`` replaces ``module._native`` by a spy for the
    test and returns the list that each native call's positional arguments
    are appended to, so a test can see what reached the native layer."""

    def install(module):
        seen = []
        native = module._native

        class Spy:
            def __getattr__(self, name):
                f = getattr(native, name)

                def spy(*args):
                    seen.append(args)
                    return f(*args)

                return spy

        monkeypatch.setattr(module, "_native", Spy())
        return seen

    return install


@pytest.fixture
def two_threads():
    """normkit's pool at two threads for the test, restored after."""
    before = normkit.get_num_threads()
    normkit.set_num_threads(2)
    yield
    normkit.set_num_threads(before)
