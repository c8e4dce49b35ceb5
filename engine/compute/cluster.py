"""The same prediction work on a Dask cluster: ``--cluster local:N`` or ``--cluster ADDRESS``.

Dask distributed runs on one machine (``LocalCluster``) or on a lab's SLURM cluster (a scheduler
started by ``dask-jobqueue`` or ``dask scheduler``; see docs/cluster.md). Each work unit (an image
chunk x a neuron block) is one task; a worker opens the bank and the image listing once, decodes
just its chunk and runs the same ``predict_unit`` as a single machine, so the numbers are identical.
Results come back to this process, which alone writes them (a unit is written once, in its own
Zarr chunk). A worker that dies (killed, out of memory, node lost) has its tasks rerun elsewhere
by the scheduler, so nothing is lost, and since only finished tasks' results are written, nothing
is written twice. At most a few tasks per worker are in flight, so memory here stays bounded.
``run_tasks`` is that loop for any task: ``neurons fit --cluster`` runs its units' students through it
(``compactrig.engine.training.unit_jobs``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from compactrig.engine.compute.streaming import Sink, Unit, predict_unit
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import list_images
from compactrig.engine.files.prediction_store import Layout
from compactrig.engine.models.bank import ModelBank, load_bank
from compactrig.engine.models.fast_predict import Cancelled, Predictor
from compactrig.engine.progress import Progress

IN_FLIGHT_PER_WORKER = 2
_opened: dict[tuple[str, str, str], tuple] = {}
"""Per worker process: (bank spec, images, device) -> (predictor, listing), opened on the first task."""
_banks: dict[str, ModelBank] = {}
"""Per worker process: bank spec -> the bank, opened on the first task."""
T = TypeVar("T")
R = TypeVar("R")


def open_client(spec: str):
    """A Dask client for ``local:N`` (N worker processes here, one thread each), a scheduler address
    (``tcp://host:8786``) or a scheduler file (``FILE.json``, written by ``dask scheduler --scheduler-file``)."""
    try:
        from distributed import Client
    except ImportError:
        raise CompactRigError("--cluster needs Dask distributed: pip install 'dask[distributed]'") from None
    if spec.startswith("local:"):
        try:
            n_workers = int(spec.split(":", 1)[1])
        except ValueError:
            n_workers = 0
        if n_workers < 1:
            raise CompactRigError(f"--cluster {spec}: give local:N with N >= 1 worker processes, e.g. local:2")
        # the client starts the LocalCluster itself, so closing the client stops its workers too
        return Client(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40)
    if spec.endswith(".json") and not Path(spec).is_file():
        raise CompactRigError(f"--cluster {spec}: no such scheduler file; give the file `dask scheduler "
                              "--scheduler-file FILE.json` wrote, a scheduler address (tcp://HOST:PORT) or local:N")
    try:
        if spec.endswith(".json"):  # a scheduler file (dask scheduler --scheduler-file)
            return Client(scheduler_file=spec, timeout="20s")
        return Client(spec, timeout="20s")
    except ValueError as error:  # distributed's words for an address it cannot parse
        raise CompactRigError(f"--cluster {spec}: not a scheduler address ({error}); give tcp://HOST:PORT, a "
                              "scheduler file FILE.json or local:N") from None
    except (OSError, TimeoutError) as error:
        raise CompactRigError(f"--cluster {spec}: no Dask scheduler answers there ({error}); start one (see "
                              "docs/cluster.md) or use local:N") from None


def worker_bank(bank_spec: str, bank_sha256: str) -> ModelBank:
    """The bank named ``bank_spec`` on this worker, opened once per process and checked to be the one the
    client named (a worker on another file system would otherwise compute with other models)."""
    if bank_spec not in _banks:
        bank = load_bank(None if bank_spec == "demo" else bank_spec)
        if bank.identity()["sha256"] != bank_sha256:
            raise CompactRigError(f"worker {os.getpid()}: the bank at {bank_spec} differs from the client's; give "
                                  "every node the same bank folder")
        _banks[bank_spec] = bank
    return _banks[bank_spec]


def worker_unit(bank_spec: str, images: str, device: str, bank_sha256: str, neuron_ids: Sequence[str],
                layout: Layout, unit: Unit) -> np.ndarray:
    """One unit on a worker: the bank and listing are opened once per worker process."""
    key = (bank_spec, images, device)
    if key not in _opened:
        _opened[key] = (Predictor(worker_bank(bank_spec, bank_sha256), device, workers=1), list_images(images))
    predictor, listing = _opened[key]
    rows = layout.images(unit[0])
    return predict_unit(predictor, listing.read(rows.start, rows.stop), neuron_ids, layout, unit[1])


def run_tasks(client, function: Callable[..., R], arguments: tuple, items: Sequence[T], key: Callable[[T], str],
              sink: Callable[[T, R], None], describe: Callable[[T], str],
              cancelled: Callable[[], bool] | None = None) -> None:
    """``function(*arguments, item)`` for every item as a task on ``client``'s workers, at most
    ``IN_FLIGHT_PER_WORKER`` per worker at a time, each result handed to ``sink`` here as it comes. A task whose
    worker dies is rerun by the scheduler (twice at most); one that fails names its item (``describe``)."""
    from distributed import as_completed

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    queue = list(items)
    item_of: dict[str, T] = {}

    def submit(item: T):
        future = client.submit(function, *arguments, item, key=key(item), retries=2)
        item_of[future.key] = item
        return future

    running = as_completed([submit(queue.pop(0)) for _ in range(min(len(queue), IN_FLIGHT_PER_WORKER * n_workers))])
    for future in running:
        if cancelled is not None and cancelled():
            client.cancel(list(running.futures))
            raise Cancelled()
        item = item_of.pop(future.key)
        try:
            result = future.result()
        except (CompactRigError, Cancelled):
            raise
        except Exception as error:  # noqa: BLE001 - a task that failed on every retry names its item
            raise CompactRigError(f"cluster task for {describe(item)} failed: {type(error).__name__}: "
                                  f"{error}") from None
        sink(item, result)
        if queue:
            running.add(submit(queue.pop(0)))


def stream_on_cluster(client, bank_spec: str, images: Path, device: str, bank_sha256: str,
                      neuron_ids: Sequence[str], layout: Layout, units: list[Unit], sink: Sink,
                      progress: Progress | None = None,
                      cancelled: Callable[[], bool] | None = None) -> None:
    """Compute ``units`` as tasks on ``client``'s workers and hand each result to ``sink`` here."""
    arguments = (bank_spec, str(Path(images).resolve()), device, bank_sha256, list(neuron_ids), layout)
    done = 0

    def counted(unit: Unit, values: np.ndarray) -> None:
        nonlocal done
        sink(unit, values)
        done += 1
        if progress is not None:
            progress(done, len(units))

    run_tasks(client, worker_unit, arguments, units, lambda unit: f"compactrig-unit-{unit[0]}-{unit[1]}-{os.getpid()}",
              counted, lambda unit: f"images {layout.images(unit[0])}", cancelled)
