"""One process pool for the whole package: an order-preserving map with a progress bar.

Used by the metrics (fingerprints, structure matching), the CDVAE property predictors (CrystalNN
graphs) and the Robocrystallographer description runner. Workers start with ``spawn`` by default
(safe when the parent holds threads, e.g. torch's or tqdm's; ``fork`` may be asked for when the
work never touches torch), run one BLAS/OpenMP thread each, and silence the library warnings that
CrystalNN and pymatgen print once per site. Small inputs run in-process: starting a worker costs
~2-8 s of imports (pymatgen, matminer). A pool that breaks (a worker killed) falls back to the
calling process for the items that are left, with a warning.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

#: below this many items a map runs in the calling process
MIN_ITEMS_FOR_POOL = 48


def _init_worker(user_init: Callable[[], None] | None = None) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    warnings.filterwarnings("ignore")
    if user_init is not None:
        user_init()


def default_workers() -> int:
    """Two workers (the project's machines have two cores), fewer if the machine has fewer."""
    return max(1, min(2, os.cpu_count() or 1))


def parallel_imap(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int | None = None,
    chunksize: int | None = None,
    initializer: Callable[[], None] | None = None,
    start_method: str = "spawn",
    min_items: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, fn(items[i]))`` in input order, computed on ``workers`` processes.

    ``fn`` (and ``initializer``, run once per worker) must be module-level functions (pickled by
    name). ``workers=None`` means :func:`default_workers`; ``workers <= 1`` or fewer than
    ``min_items`` (default :data:`MIN_ITEMS_FOR_POOL`) items run serially here (``initializer`` is
    then not called: it prepares workers only).
    """
    workers = default_workers() if workers is None else int(workers)
    min_items = MIN_ITEMS_FOR_POOL if min_items is None else min_items
    n = len(items)
    if workers <= 1 or n < min_items:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, x in enumerate(items):
                yield i, fn(x)
        return
    if chunksize is None:
        chunksize = max(1, min(16, n // (workers * 8)))
    if start_method not in mp.get_all_start_methods():
        start_method = "spawn"
    done = 0
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(start_method),
                                 initializer=_init_worker, initargs=(initializer,)) as ex:
            for r in ex.map(fn, items, chunksize=chunksize):
                yield done, r
                done += 1
    except BrokenProcessPool as exc:
        warnings.warn(f"worker pool failed ({exc}); computing the remaining {n - done} items in this process",
                      RuntimeWarning, stacklevel=2)
        for i in range(done, n):
            yield i, fn(items[i])


def parallel_map(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int | None = None,
    desc: str | None = None,
    progress: bool = True,
    chunksize: int | None = None,
    on_result: Callable[[int, Any], None] | None = None,
    initializer: Callable[[], None] | None = None,
    start_method: str = "spawn",
    min_items: int | None = None,
) -> list[Any]:
    """Return ``[fn(x) for x in items]`` (see :func:`parallel_imap`), with a progress bar.

    ``on_result(i, result)``, if given, is called in this process as each result arrives (e.g. to
    cache it, so an interrupted run keeps its work).
    """
    from tqdm.auto import tqdm

    out = []
    bar = tqdm(total=len(items), desc=desc, disable=not progress or not items, leave=False)
    try:
        for i, r in parallel_imap(fn, items, workers, chunksize, initializer, start_method, min_items):
            out.append(r)
            if on_result is not None:
                on_result(i, r)
            bar.update(1)
    finally:
        bar.close()
    return out
