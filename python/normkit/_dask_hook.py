"""Routes dask collections to ``normkit.dask`` without importing dask.

A public function that accepts dask input starts with::

    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("softmax", locals())

``locals()`` there holds exactly the call's arguments by name, so keyword
arguments added to the function later reach ``normkit.dask`` unchanged. An
ndarray pays one ``type(x) is not np.ndarray`` test (tens of ns); a generic
``*args, **kwargs`` decorator cost about 1 us per call here.
``import normkit`` never imports dask: ``is_dask`` looks only at the module
name of the argument's type, and ``normkit.dask`` is imported on the first
dask call.
"""

from __future__ import annotations


def is_dask(x) -> bool:
    """True for a dask array, bag, dataframe or series (no dask import)."""
    return type(x).__module__.startswith("dask.")


def on_dask(name: str, arguments: dict):
    """``normkit.dask.<name>(**arguments)``."""
    from . import dask as on_dask_module

    return getattr(on_dask_module, name)(**arguments)
