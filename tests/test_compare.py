"""normkit.compare (the side-by-side tables of ``python -m normkit`` and
benches/compare.py): every implementation it times computes the right
thing, and the table reports each case."""

from __future__ import annotations

import numpy as np
import pytest

import normkit
from normkit import compare

RNG = np.random.default_rng(5)
X = RNG.standard_normal((16, 96)).astype(np.float32)

CASES = {
    "softmax": lambda: compare.softmax_case(X),
    "log_softmax": lambda: compare.log_softmax_case(X),
    "layer_norm": lambda: compare.layer_norm_case(X),
    "rms_norm": lambda: compare.rms_norm_case(X),
    "l1_norm int8": lambda: compare.l1_norm_int8_case(compare.quantize_int8(X)),
}


@pytest.mark.parametrize("name", CASES)
def test_every_implementation_matches_the_float64_reference(name):
    case = CASES[name]()
    timings = compare.measure(case, rounds=1, sample_seconds=1e-4)
    assert set(timings) == {"copy", *case.impls}
    bound = 0.51 if case.x.dtype == np.int8 else 1e-5
    for impl, timing in timings.items():
        assert timing.seconds > 0 and timing.ratio_to_copy > 0
        if timing.max_error is not None:
            assert timing.max_error <= bound, (impl, timing.max_error)
    assert timings["normkit"].max_error is not None


def test_table_lists_every_case_and_restores_threads():
    threads = normkit.get_num_threads()
    table = compare.run([CASES["softmax"](), CASES["rms_norm"]()], rounds=1, sample_seconds=1e-4, markdown=True)
    assert "softmax 16x96 float32" in table and "rms_norm 16x96 float32" in table
    assert "| case | copy µs | normkit µs | normkit |" in table
    assert normkit.get_num_threads() == threads


def test_quantize_int8_is_symmetric_and_saturates_at_127():
    q = compare.quantize_int8(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(q, [-127, -64, 0, 64, 127])


def test_results_as_dicts_is_json_with_every_implementation():
    import json

    case = CASES["softmax"]()
    results = compare.measure_all([case], rounds=1, sample_seconds=1e-4)
    [row] = json.loads(json.dumps(compare.results_as_dicts(results)))
    assert row["case"] == case.label and row["copy_seconds"] > 0
    assert set(row["impls"]) == set(case.impls)
    for name, impl in row["impls"].items():
        assert impl["seconds"] > 0 and impl["ratio_to_copy"] == results[0][1][name].ratio_to_copy
        assert impl["note"] == case.notes.get(name)


def test_interleaved_medians_times_with_the_given_clock():
    ticks = iter(range(1000))
    medians = compare.interleaved_medians({"a": lambda: None, "b": lambda: None}, rounds=3,
                                          sample_seconds=1e-12, clock=lambda: float(next(ticks)))
    assert medians == {"a": 1.0, "b": 1.0}  # one call per sample, one tick per clock read pair
