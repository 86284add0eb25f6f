"""Shared pytest fixtures. Every test run uses a private cache folder (no state leaks between runs)."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    if "TGDMAT_TEST_KEEP_CACHE" not in os.environ:
        os.environ["TGDMAT_CACHE"] = str(tmp_path_factory.mktemp("tgdmat-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    yield


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Two shared cores: one intra-op torch thread is much faster than two under contention."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def perov_test():
    from tgdmat.data import load_dataset

    return load_dataset("perov_5", "test", progress=False)


@pytest.fixture(scope="session")
def carbon_test():
    from tgdmat.data import load_dataset

    return load_dataset("carbon_24", "test", progress=False)
