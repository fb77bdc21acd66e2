"""Validation for bulk loads (loader.py), spread over worker processes.

R4 validation with the ``fhir.resources`` models is pure Python and about half of a load's
time; the other half — index rows and SQL — has to stay in the one process that owns the
database transaction. So a large load parses and validates batches of items in a process
pool while the main process stores the batches already checked: both cores work. Every
resource is still validated exactly as an API write is (validation.py); only where it
happens changes. Results come back in input order, so errors keep their line numbers and a
later version of the same id still wins.

A small input never pays for the pool: the first ``POOL_AFTER`` items are checked in the
main process, and the pool starts only if more follow."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import Any

from smartrealm.fhir.errors import FhirError

BATCH = 250          # items per task: large enough that IPC is a small share of the work
# Items checked ahead of the writer: more than one of the loader's transactions (5,000), so
# the workers keep validating while the main process writes a whole chunk.
READ_AHEAD = 12_000
POOL_AFTER = 2_000   # items checked in-process before a pool is worth its start-up (~1 s)

# (where, the resource or None, the error or None), in input order
Checked = tuple[str, dict[str, Any] | None, str | None]
Check = Callable[[Any, tuple[str, ...]], dict[str, Any]]


def default_workers() -> int:
    """One process per core besides the main one (which writes), at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1
    return max(1, min(8, cores - 1))


def check_batch(check: Check, batch: list[Any], served: tuple[str, ...]) -> list[Checked]:
    """Run ``check`` (loader.checked: parse + validate) on each item of a batch."""
    out: list[Checked] = []
    for item in batch:
        try:
            out.append((item.where, check(item, served), None))
        except FhirError as error:
            out.append((item.where, None, error.diagnostics))
    return out


def checked_batches(check: Check, items: Iterable[Any], served: tuple[str, ...],
                    workers: int | None) -> Iterator[list[Checked]]:
    """Batches of checked items, in order; ``workers=0`` never starts a pool."""
    batches = _batches(items)
    inline = 0
    for batch in batches:
        yield check_batch(check, batch, served)
        inline += len(batch)
        if inline >= POOL_AFTER and workers != 0:
            break
    else:
        return  # the input ran out before a pool was worth starting
    yield from _pooled(check, batches, served, workers or default_workers())


def _pooled(check: Check, batches: Iterator[list[Any]], served: tuple[str, ...],
            workers: int) -> Iterator[list[Checked]]:
    # forkserver: a clean child, never a fork of a process that runs threads (the CLI's
    # progress bar) or holds database connections.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque[Future[list[Checked]]] = deque()
        for batch in batches:
            pending.append(pool.submit(check_batch, check, batch, served))
            if len(pending) * BATCH >= READ_AHEAD:  # bounded: memory stays flat
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _batches(items: Iterable[Any]) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, BATCH)):
        yield batch
