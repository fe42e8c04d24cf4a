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
    "crms_norm": lambda: compare.crms_norm_case(X),
    "add_rms_norm": lambda: compare.add_norm_case("rms", X, X[::-1].copy()),
    "add_layer_norm": lambda: compare.add_norm_case("layer", X, X[::-1].copy()),
    "softmax float64": lambda: compare.softmax_case(X.astype(np.float64)),
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


@pytest.mark.parametrize("dtype", list(compare.half_dtypes()))
@pytest.mark.parametrize("op", compare.HALF_OPS)
def test_half_cases_match_the_reference_to_one_half_ulp(op, dtype):
    """Every implementation that runs is within one unit of the half
    dtype's precision (relative for softmax, of the largest output for the
    norms) of float64 on the half input; what does not run says why."""
    case = compare.half_case(op, X, compare.half_dtypes()[dtype])
    timings = compare.measure(case, rounds=1, sample_seconds=1e-4)
    ulp = 2.0**-10 if dtype == "float16" else 2.0**-7
    bound = ulp if op == "softmax" else ulp * float(np.abs(case.reference).max())
    assert "normkit float32" in case.impls
    for impl, timing in timings.items():
        if timing.max_error is not None:
            assert timing.max_error <= bound, (impl, timing.max_error, bound)
    assert ("normkit" in case.impls) != ("normkit" in case.skipped)
    if "normkit" in case.impls and "f16c" in normkit.cpu_info():
        assert "normkit" not in case.skipped
    assert all(reason for reason in case.skipped.values())


def test_threads_are_set_for_the_run_and_restored():
    seen = []
    case = compare.Case("probe", X, np.empty_like(X), X.astype(np.float64),
                        impls={"normkit": lambda: seen.append(normkit.get_num_threads())})
    before = normkit.get_num_threads()
    compare.measure_all([case], rounds=3, sample_seconds=1e-4, threads=2)
    assert seen and set(seen) == {2}
    assert normkit.get_num_threads() == before


def test_ratios_are_per_round_with_their_spread():
    samples = {"copy": [1.0, 2.0, 4.0], "normkit": [2.0, 2.0, 2.0], "onnxruntime": [4.0, 4.0, 1.0]}
    ticks = iter(t for r in range(3) for name in samples for t in (0.0, samples[name][r]))
    case = compare.Case("probe", X, np.empty_like(X), X.astype(np.float64),
                        impls={"normkit": lambda: None, "onnxruntime": lambda: None})
    timings = compare.measure(case, rounds=3, sample_seconds=1e-12, clock=lambda: next(ticks, 0.0))
    nk = timings["normkit"]
    assert (nk.ratio_min, nk.ratio_to_copy, nk.ratio_max) == (0.5, 1.0, 2.0)
    assert compare.relative(nk, timings["onnxruntime"]) == (0.5, 0.5, 2.0)
    table = compare.format_table([(case, timings)], markdown=True, spread=True)
    assert "| normkit / onnxruntime |" in table and "1.00x (0.50-2.00)" in table


def test_fused_cases_copy_both_inputs():
    case = CASES["add_rms_norm"]()
    assert len(case.copy_also) == 1 and case.copy_also[0].shape == case.x.shape
