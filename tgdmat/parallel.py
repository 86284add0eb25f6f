"""An order-preserving process-pool map with a progress bar, shared by the metrics.

Workers are started with the ``spawn`` method (safe when the parent holds threads, e.g. torch's
or tqdm's) and silence the library warnings that CrystalNN and pymatgen print once per site.
Small inputs run in-process: starting a worker costs ~2-8 s of imports (pymatgen, matminer).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

#: below this many items a map runs in the calling process
MIN_ITEMS_FOR_POOL = 48


def _init_worker() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    warnings.filterwarnings("ignore")


def default_workers() -> int:
    """Two workers (the project's machines have two cores), fewer if the machine has fewer."""
    return max(1, min(2, os.cpu_count() or 1))


def parallel_map(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int | None = None,
    desc: str | None = None,
    progress: bool = True,
    chunksize: int | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Return ``[fn(x) for x in items]``, computed on ``workers`` processes.

    ``fn`` must be a module-level function (it is pickled by name). Results come back in input
    order; ``on_result(i, result)``, if given, is called in this process as each result arrives
    (e.g. to cache it, so an interrupted run keeps its work). ``workers=None`` means
    :func:`default_workers`; ``workers<=1`` or fewer than ``MIN_ITEMS_FOR_POOL`` items run
    serially in this process.
    """
    from tqdm.auto import tqdm

    workers = default_workers() if workers is None else int(workers)
    n = len(items)
    bar = tqdm(total=n, desc=desc, disable=not progress or n == 0, leave=False)
    try:
        if workers <= 1 or n < MIN_ITEMS_FOR_POOL:
            out = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for i, x in enumerate(items):
                    out.append(fn(x))
                    if on_result is not None:
                        on_result(i, out[-1])
                    bar.update(1)
            return out
        if chunksize is None:
            chunksize = max(1, min(16, n // (workers * 8)))
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as ex:
            out = []
            for i, r in enumerate(ex.map(fn, items, chunksize=chunksize)):
                out.append(r)
                if on_result is not None:
                    on_result(i, r)
                bar.update(1)
            return out
    finally:
        bar.close()
