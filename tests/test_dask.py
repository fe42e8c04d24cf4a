"""normkit on Dask: results against the in-memory functions, on a real
``distributed.LocalCluster`` (two worker processes, loopback) and on the
threaded scheduler."""

from __future__ import annotations

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import scipy.special  # noqa: E402

import normkit  # noqa: E402
import normkit.dask as nkd  # noqa: E402


@pytest.fixture(scope="session")
def cluster_client():
    """A client of a LocalCluster of two single-threaded worker processes,
    not the default scheduler (each test says where it computes)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(params=["threads", "distributed"])
def compute(request):
    """``compute(*collections)``: the computed values, on the threaded
    scheduler or on the LocalCluster; ``compute.scheduler`` is that
    scheduler (for ``dask.config.set(scheduler=...)``), ``compute.on_cluster``
    says which."""
    scheduler = "threads" if request.param == "threads" else request.getfixturevalue("cluster_client")

    def run(*collections):
        return dask.compute(*collections, scheduler=scheduler)

    run.scheduler = scheduler
    run.on_cluster = request.param == "distributed"
    return run


def _never_run():
    raise AssertionError("a task ran")


def lazy_never_computed(shape, dtype, chunks):
    """A dask array whose only task fails: an error raised while building a
    graph on it proves that nothing ran."""
    return da.from_delayed(dask.delayed(_never_run)(), shape, dtype=dtype).rechunk(chunks)


RNG = np.random.default_rng(14)

#: (array shape, chunks): rows within one chunk; the normalized (last) axis
#: split into many chunks with a ragged last one; single-element chunks.
CHUNKINGS = [
    ((9, 300), (4, 300)),
    ((9, 300), (4, 37)),
    ((3, 40), (1, 4)),
]
#: Fewer blocks on the cluster (each task costs milliseconds there).
CLUSTER_CHUNKINGS = [((9, 300), (5, 300)), ((9, 300), (5, 120))]

# Elementwise tolerances against the in-memory functions; measured: float32
# up to 1.9e-6 absolute (log_softmax), 3.6e-7 relative (softmax); float64
# up to 3.6e-15 absolute.
TOL = {np.float32: dict(rtol=1e-6, atol=2e-6), np.float64: dict(rtol=1e-14, atol=2e-14)}


def _data(shape, dtype):
    return (RNG.standard_normal(shape) * 4 + 1).astype(dtype)


ROWWISE = {
    "softmax": {},
    "log_softmax": {},
    "layer_norm": {"weight": True, "bias": True},
    "rms_norm": {"weight": True},
    "crms_norm": {"weight": True},
}


def _rowwise_cases(chunkings):
    """(label, lazy result, in-memory result, tolerance) for every kernel,
    chunking and dtype."""
    cases = []
    for name in sorted(ROWWISE):
        for shape, chunks in chunkings:
            for dtype in (np.float32, np.float64):
                a = _data(shape, dtype)
                kwargs = {k: RNG.standard_normal(shape[-1]) for k in ROWWISE[name]}
                x = da.from_array(a, chunks=chunks)
                y = getattr(normkit, name)(x, **kwargs)  # the normkit function routes dask input
                assert isinstance(y, da.Array) and y.chunks == x.chunks and y.dtype == dtype
                label = f"{name} {np.dtype(dtype).name} chunks={chunks}"
                cases.append((label, y, getattr(normkit, name)(a, **kwargs), TOL[dtype]))
    return cases


def test_rowwise_matches_in_memory(compute):
    """Every kernel, chunking and dtype in one compute call."""
    cases = _rowwise_cases(CLUSTER_CHUNKINGS if compute.on_cluster else CHUNKINGS)
    results = compute(*(y for _, y, _, _ in cases))
    for (label, _, want, tol), got in zip(cases, results):
        np.testing.assert_allclose(got, want, err_msg=label, **tol)


@pytest.mark.parametrize("name", sorted(ROWWISE))
def test_split_first_axis(name):
    a = _data((50, 6), np.float64)
    x = da.from_array(a, chunks=(7, 2))
    got = getattr(nkd, name)(x, axis=0).compute(scheduler="threads")
    np.testing.assert_allclose(got, getattr(normkit, name)(a, axis=0), **TOL[np.float64])


def test_split_rows_are_not_normalized_piecewise():
    """The failure mode of dask#6810: map_blocks of softmax over a split row
    gives each piece its own normalization. The reference can tell."""
    a = _data((4, 100), np.float64)
    x = da.from_array(a, chunks=(2, 30))
    piecewise = x.map_blocks(normkit.softmax).compute(scheduler="threads")
    exact = nkd.softmax(x).compute(scheduler="threads")
    reference = normkit.softmax(a)
    assert not np.allclose(piecewise, reference)
    np.testing.assert_allclose(exact.sum(axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(exact, reference, **TOL[np.float64])


def _special_rows(dtype):
    a = _data((7, 90), dtype)
    a[0, 5] = -np.inf  # one -inf entry
    a[1, 50] = np.nan  # NaN in a later chunk
    a[2, 89] = np.inf  # +inf in the ragged last chunk
    a[3, :] = -np.inf  # all -inf
    a[4, :40] = -np.inf  # whole chunks of -inf next to finite ones
    a[5, :] *= 1e30 if dtype == np.float32 else 1e300  # near overflow
    a[6, :] *= 1e-30 if dtype == np.float32 else 1e-300  # near underflow
    return a


def _assert_same_values(got, want, tol):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) & (got > 0), np.isinf(want) & (want > 0))
    np.testing.assert_array_equal(np.isinf(got) & (got < 0), np.isinf(want) & (want < 0))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "layer_norm", "rms_norm", "crms_norm"])
def test_special_values_in_split_rows(name, dtype):
    a = _special_rows(dtype)
    got = getattr(nkd, name)(da.from_array(a, chunks=(3, 20))).compute(scheduler="threads")
    with np.errstate(all="ignore"):
        want = getattr(normkit, name)(a)
    _assert_same_values(got, want, TOL[dtype])


@pytest.mark.parametrize("chunks", [(4, 90), (4, 20), (2, 7)])
def test_logsumexp_matches_scipy(compute, chunks):
    a = _special_rows(np.float64)
    x = da.from_array(a, chunks=chunks)
    ys = [nkd.logsumexp(x, keepdims=keepdims) for keepdims in (False, True)]
    assert ys[0].shape == (7,) and ys[1].shape == (7, 1)
    with np.errstate(all="ignore"):
        for got, keepdims in zip(compute(*ys), (False, True)):
            want = scipy.special.logsumexp(a, axis=-1, keepdims=keepdims)
            _assert_same_values(got, want, dict(rtol=1e-14, atol=0))


def test_logsumexp_float32_against_float64():
    a = _data((5, 1000), np.float32)
    got = nkd.logsumexp(da.from_array(a, chunks=(2, 128)), axis=1).compute(scheduler="threads")
    assert got.dtype == np.float32
    want = scipy.special.logsumexp(a.astype(np.float64), axis=1)
    np.testing.assert_allclose(got, want, rtol=2e-7)


@pytest.mark.parametrize("chunks", [(5, 64), (5, 24)])
def test_fused_add_forms(compute, chunks):
    a, r = _data((9, 64), np.float32), _data((9, 64), np.float32)
    w = RNG.standard_normal(64)
    x, residual = da.from_array(a, chunks=chunks), da.from_array(r, chunks=(3, 32))
    lazy = [normkit.add_rms_norm(x, residual, w), normkit.add_layer_norm(x, residual, w, -w)]
    assert all(isinstance(y, da.Array) for pair in lazy for y in pair)
    (got,) = compute(lazy)
    for (got_normed, got_summed), want in zip(got, [normkit.add_rms_norm(a, r, w), normkit.add_layer_norm(a, r, w, -w)]):
        np.testing.assert_array_equal(got_summed, want[1])
        np.testing.assert_allclose(got_normed, want[0], **TOL[np.float32])


def test_l1_norm_int8_and_float(compute):
    q = RNG.integers(-128, 128, size=(10, 50), dtype=np.int8)
    f = _data((10, 50), np.float64)
    y_int, y_float = normkit.l1_norm(da.from_array(q, chunks=(3, 50)), out_scale=0.05), normkit.l1_norm(
        da.from_array(f, chunks=(4, 50)), eps=1e-3
    )
    got_int, got_float = compute(y_int, y_float)
    np.testing.assert_array_equal(got_int, normkit.l1_norm(q, out_scale=0.05))
    np.testing.assert_array_equal(got_float, normkit.l1_norm(f, eps=1e-3))


def test_l1_norm_refuses_a_split_row():
    with pytest.raises(ValueError, match=r"rechunk\(\{-1: -1\}\)"):
        nkd.l1_norm(da.ones((4, 10), chunks=(4, 5)))


def test_keyword_arguments_reach_the_in_memory_function():
    a = _data((6, 33), np.float32)
    got = nkd.softmax(da.from_array(a, chunks=(2, 33)), algorithm="online").compute(scheduler="threads")
    np.testing.assert_array_equal(got, normkit.softmax(a, algorithm="online"))
    with pytest.raises(ValueError, match="algorithm"):
        nkd.softmax(lazy_never_computed((6, 33), np.float32, (2, 33)), algorithm="nope")


def test_other_real_dtypes_follow_the_in_memory_rules():
    a = RNG.integers(-50, 50, size=(5, 40)).astype(np.int16)
    for chunks in [(2, 40), (2, 9)]:
        y = nkd.softmax(da.from_array(a, chunks=chunks))
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.compute(scheduler="threads"), normkit.softmax(a), **TOL[np.float32])


class TestBadInput:
    def test_out_is_refused(self):
        x = da.ones((4, 4), chunks=2)
        with pytest.raises(TypeError, match="immutable"):
            normkit.softmax(x, out=np.empty((4, 4)))
        with pytest.raises(TypeError, match="immutable"):
            normkit.add_rms_norm(x, x, out=(x, x))

    def test_unknown_chunk_sizes(self):
        x = da.from_array(np.arange(12.0).reshape(3, 4), chunks=2)
        picked = x[:, x[0] > 0]
        with pytest.raises(ValueError, match=r"compute_chunk_sizes\(\)"):
            normkit.layer_norm(picked)
        picked.compute_chunk_sizes()
        np.testing.assert_allclose(normkit.layer_norm(picked).compute(scheduler="threads"),
                                   normkit.layer_norm(np.arange(12.0).reshape(3, 4)[:, 1:]), rtol=1e-13)

    @pytest.mark.parametrize("dtype", [np.complex128, object, "U3"])
    @pytest.mark.parametrize("chunks", [(2, 8), (2, 3)])
    def test_unsupported_dtype_before_any_task(self, dtype, chunks):
        x = lazy_never_computed((4, 8), dtype, chunks)
        for f in (nkd.softmax, nkd.logsumexp, nkd.rms_norm):
            with pytest.raises(TypeError, match="unsupported dtype"):
                f(x)

    @pytest.mark.parametrize("chunks", [(2, 8), (2, 3)])
    def test_bad_arguments_before_any_task(self, chunks):
        x = lazy_never_computed((4, 8), np.float32, chunks)
        with pytest.raises(ValueError, match="weight has shape"):
            nkd.layer_norm(x, np.ones(7))
        with pytest.raises(ValueError, match="eps"):
            nkd.rms_norm(x, eps=-1.0)
        with pytest.raises(np.exceptions.AxisError):
            nkd.softmax(x, axis=2)
        with pytest.raises(ValueError, match="residual has shape"):
            nkd.add_rms_norm(x, x[:2])

    @pytest.mark.parametrize("chunks", [(2, 8), (2, 3)])
    def test_unknown_keyword(self, chunks):
        x = lazy_never_computed((4, 8), np.float32, chunks)
        with pytest.raises(TypeError, match="some_new_option"):
            nkd.rms_norm(x, some_new_option=True)


def test_import_normkit_does_not_import_dask(run_with_isa):
    code = "import sys, normkit; normkit.softmax([1.0, 2.0]); print(sorted(m for m in sys.modules if m.split('.')[0] == 'dask'))"
    assert run_with_isa(None, code, check=True).stdout.strip() == "[]"


def test_import_without_dask_names_the_extra(run_with_isa):
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dask' or name.startswith('dask.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "import normkit\n"
        "try:\n"
        "    import normkit.dask\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert run_with_isa(None, code, check=True).stdout.strip() == 'normkit.dask needs dask: pip install "normkit[dask]"'


class TestThreads:
    def test_workers_run_single_threaded(self, cluster_client):
        a = _data((8, 16), np.float32)
        nkd.softmax(da.from_array(a, chunks=(2, 16))).compute(scheduler=cluster_client)
        counts = cluster_client.run(normkit.get_num_threads)
        assert sorted(counts.values()) == [1, 1]

    def test_the_count_comes_from_the_dask_config(self):
        before = normkit.get_num_threads()
        x = da.from_array(_data((8, 16), np.float32), chunks=(4, 16))
        try:
            with dask.config.set({nkd.THREADS_KEY: 2}):
                y = nkd.rms_norm(x)
            normkit.set_num_threads(1)
            y.compute(scheduler="threads")
            assert normkit.get_num_threads() == 2
            with dask.config.set({nkd.THREADS_KEY: None}):
                nkd.rms_norm(x).compute(scheduler="threads")
            assert normkit.get_num_threads() == 2
            with dask.config.set({nkd.THREADS_KEY: 0}), pytest.raises(ValueError, match="between 1 and"):
                nkd.rms_norm(x)
        finally:
            normkit.set_num_threads(before)


# --------------------------------------------------------------------------
# Compositional statistics


def _compositions(n, d, seed):
    """Positive compositions with correlated log-ratios (a few latent factors)."""
    rng = np.random.default_rng(seed)
    logs = rng.standard_normal((n, 3)) @ rng.standard_normal((3, d)) + 0.5 * rng.standard_normal((n, d))
    return np.exp(logs + 3.0)


CODA_MATRICES = ["clr_covariance", "variation_matrix", "proportionality_rho", "proportionality_phi"]


def test_coda_matrices_match_in_memory(compute):
    a = _compositions(1003, 9, 1)
    want = {f: getattr(normkit.coda, f)(a) for f in CODA_MATRICES}
    want_pcor = normkit.coda.partial_correlations(a, ddof=0)
    want_one = normkit.coda.partial_correlation(a, 0, 4, [1, 7])
    # Ragged last chunks, parts split (brought into one chunk), one chunk.
    chunkings = [(200, 4)] if compute.on_cluster else [(60, 9), (17, 4), (1003, 9)]
    for chunks in chunkings:
        x = da.from_array(a, chunks=chunks)
        with dask.config.set(scheduler=compute.scheduler):
            got = {f: getattr(normkit.coda, f)(x) for f in CODA_MATRICES}
            pcor = normkit.coda.partial_correlations(x, ddof=0)
            one = normkit.coda.partial_correlation(x, 0, 4, [1, 7])
        for f in CODA_MATRICES:
            assert type(got[f]) is np.ndarray
            np.testing.assert_allclose(got[f], want[f], rtol=0, atol=1e-10, err_msg=f"{f} {chunks}")
        np.testing.assert_allclose(pcor.correlations, want_pcor.correlations, rtol=0, atol=1e-10)
        np.testing.assert_allclose(pcor.partial_variances, want_pcor.partial_variances, rtol=1e-10)
        scale = np.abs(want_pcor.precision).max()
        np.testing.assert_allclose(pcor.precision, want_pcor.precision, rtol=0, atol=1e-10 * scale)
        assert (pcor.rank, pcor.ddof) == (want_pcor.rank, want_pcor.ddof) == (8, 0)
        assert one == pytest.approx(want_one, abs=1e-10)


def test_shrunk_partial_correlations_match_in_memory(compute):
    a = _compositions(45, 30, 2)
    x = da.from_array(a, chunks=(8, 30))
    fixed = dict(lambda_cor=0.25, lambda_var=0.5)
    with dask.config.set(scheduler=compute.scheduler):
        estimated, given = normkit.coda.shrunk_partial_correlations(x), normkit.coda.shrunk_partial_correlations(x, **fixed)
    for got, want in ((estimated, normkit.coda.shrunk_partial_correlations(a)), (given, normkit.coda.shrunk_partial_correlations(a, **fixed))):
        assert 0 < want.lambda_cor < 1 and 0 < want.lambda_var < 1
        assert got.lambda_cor == pytest.approx(want.lambda_cor, rel=1e-12)
        assert got.lambda_var == pytest.approx(want.lambda_var, rel=1e-12)
        np.testing.assert_allclose(got.correlations, want.correlations, rtol=0, atol=1e-10)
        np.testing.assert_allclose(got.clr_covariance, want.clr_covariance, rtol=0, atol=1e-10 * np.abs(want.clr_covariance).max())
        np.testing.assert_allclose(got.partial_variances, want.partial_variances, rtol=1e-10)


def test_coda_merge_has_no_cancellation():
    """A large common offset (|mean| >> spread) would wreck sum(x x^T) - n
    mean mean^T; the Chan merge keeps the in-memory accuracy."""
    a = _compositions(2000, 5, 3) ** 0.01 * np.array([1.0, 1e6, 1e-6, 3.0, 1e3])
    got = normkit.coda.clr_covariance(da.from_array(a, chunks=(150, 5)), ddof=0)
    np.testing.assert_allclose(got, normkit.coda.clr_covariance(a, ddof=0), rtol=1e-9, atol=0)


def test_coda_zeros_and_bad_input():
    a = _compositions(100, 6, 4)
    a[57, 2] = 0.0
    x = da.from_array(a, chunks=(20, 6))
    with pytest.raises(ValueError, match="first at row 57, column 2"):
        normkit.coda.clr_covariance(x)
    np.testing.assert_allclose(normkit.coda.variation_matrix(x, zeros="replace"),
                               normkit.coda.variation_matrix(a, zeros="replace"), rtol=0, atol=1e-10)
    np.testing.assert_allclose(normkit.coda.partial_correlation(x, 1, 3, [0, 2], zeros="replace"),
                               normkit.coda.partial_correlation(a, 1, 3, [0, 2], zeros="replace"), atol=1e-10)
    never = lazy_never_computed((100, 6), np.complex128, (20, 6))
    with pytest.raises(TypeError, match="complex128"):
        normkit.coda.partial_correlations(never)
    never = lazy_never_computed((100, 6), np.float64, (20, 6))
    with pytest.raises(ValueError, match="ddof=100"):
        normkit.coda.clr_covariance(never, ddof=100)
    with pytest.raises(ValueError, match="given must not contain"):
        normkit.coda.partial_correlation(never, 0, 1, [1])
    with pytest.raises(ValueError, match="lambda_cor"):
        normkit.coda.shrunk_partial_correlations(never, lambda_cor=2.0)
    with pytest.raises(ValueError, match=r"compute_chunk_sizes\(\)"):
        normkit.coda.clr_covariance(x[x[:, 0] > 1])


# --------------------------------------------------------------------------
# Sentence embeddings

SENTENCES = [
    "A cat sat quietly on the warm windowsill.",
    "Stock prices fell after the central bank raised interest rates.",
    "Layer normalization rescales each token's features.",
    "The kitten slept in the afternoon sun by the window.",
    "Markets dropped when borrowing costs went up.",
    "Dask splits a large array into chunks.",
    "short",
] * 3


def _models_on_workers():
    return {str(key): id(model) for key, model in nkd._MODELS.items()}


def test_encode_a_bag_on_the_cluster(cluster_client):
    import pickle

    import dask.bag as db
    from normkit.nn import MiniLM

    bag = db.from_sequence(SENTENCES, npartitions=4)
    y = nkd.encode(bag, batch_size=4)
    assert isinstance(y, da.Array) and y.shape[1] == 384 and y.dtype == np.float32 and y.numblocks[0] == 4
    # Tasks carry the sentences and the model's path, not its ~90 MB of weights.
    assert len(pickle.dumps(dict(y.__dask_graph__()))) < 100_000
    (first,) = dask.compute(y, scheduler=cluster_client)
    loaded = cluster_client.run(_models_on_workers)
    (second,) = dask.compute(y, scheduler=cluster_client)
    assert cluster_client.run(_models_on_workers) == loaded  # the same model objects: loaded once
    assert sum(len(models) for models in loaded.values()) >= 1
    want = MiniLM().encode(SENTENCES)
    for got in (first, second):  # measured 1.6e-7 (other batches; BLAS rounding varies between runs)
        np.testing.assert_allclose(got, want, rtol=0, atol=5e-7)


def test_encode_bad_input():
    import dask.bag as db

    with pytest.raises(TypeError, match="dask.bag.Bag"):
        nkd.encode(da.ones(3))
    with pytest.raises(ValueError, match="batch_size"):
        nkd.encode(db.from_sequence(["a"]), batch_size=0)
    with pytest.raises(TypeError, match="must be a str"):
        nkd.encode(db.from_sequence(["a", 3], npartitions=1)).compute(scheduler="sync")


def test_softmax_keywords_of_the_fused_form():
    a = _data((6, 40), np.float32)
    one_chunk = da.from_array(a, chunks=(2, 40))
    got = nkd.softmax(one_chunk, scale=0.5, dtype=np.float64).compute(scheduler="threads")
    np.testing.assert_array_equal(got, normkit.softmax(a, scale=0.5, dtype=np.float64))
    split = da.from_array(a, chunks=(2, 15))
    np.testing.assert_allclose(normkit.softmax(split, scale=None).compute(scheduler="threads"), normkit.softmax(a), **TOL[np.float32])
    with pytest.raises(TypeError, match="scale not supported when the normalized axis is split"):
        nkd.softmax(split, scale=0.5)
    with pytest.raises(TypeError, match="bias not supported for dask arrays"):
        nkd.log_softmax(one_chunk, bias=np.ones(40, np.float32))


def test_norm_statistics_are_refused_and_the_plain_call_unaffected():
    """return_stats=True is not computed on dask arrays (TypeError before
    any task); the public functions pass return_stats=False through, which
    must work for whole and split rows alike."""
    a = np.random.default_rng(4).standard_normal((6, 50))
    for chunks in ((3, 50), (3, 7)):
        x = da.from_array(a, chunks=chunks)
        np.testing.assert_allclose(normkit.layer_norm(x).compute(scheduler="threads"), normkit.layer_norm(a), rtol=1e-12, atol=1e-12)
        normed, summed = normkit.add_rms_norm(x, x)
        np.testing.assert_allclose(normed.compute(scheduler="threads"), normkit.add_rms_norm(a, a)[0], rtol=1e-12, atol=1e-12)
        for call in (lambda: normkit.layer_norm(x, return_stats=True), lambda: normkit.add_rms_norm(x, x, return_stats=True)):
            with pytest.raises(TypeError, match="return_stats=True is not supported on dask arrays"):
                call()
