"""Each new unit's student as a job: the same code side by side here, or as tasks on a Dask cluster.

A job (``UnitJob``) is what one unit's distillation needs besides the images every unit shares: its donors,
the labels of the training images and its held-out responses. ``run_job`` runs it, wherever it runs, so a
model is the same whether it was made here or on a worker: every job runs on one intra-op thread, because
PyTorch splits its sums differently among different numbers of threads and the model would otherwise differ
in its last bits between a 2-core machine and a 1-thread worker. One thread per job, jobs side by side, is
also the faster use of a CPU's cores for these small convolutions (as ``Predictor`` runs its models).

Here (``run_here``) the jobs run in threads of this process; on a cluster (``run_on_cluster``, Dask
distributed: ``local:N``, a scheduler address or its file, as ``predict --cluster``) each is a task, the
images go to every worker once, and a worker that dies has its tasks rerun by the scheduler. Either way
every result comes back to the caller's thread, which alone writes the bank, so nothing is lost and
nothing written twice. Progress and results are reported in the caller's thread, the per-epoch progress
of the earliest running job only (a bar that does not flip between units).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import torch

from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.fast_predict import single_intra_op_thread
from compactrig.engine.progress import Progress
from compactrig.engine.training.distill import (
    TRUNK_STAGES,
    DistilledUnit,
    DistillSettings,
    Donor,
    HeldOut,
    Pixels,
    distill_unit,
    trunk_maps,
)

DONOR_MAPS_KEPT = 3
"""Donors whose frozen-part output stays in memory (~0.5 GB each for 600 recorded images of the published
bank): units are taken in the order of their donors, so a few suffice."""
POLL_S = 0.2
"""How often the caller's thread passes on the running jobs' progress."""


@dataclass(frozen=True)
class UnitJob:
    """One unit's student: ``index`` is the unit's place among the units being fitted."""

    index: int
    unit: int
    """The unit's number (``SESSION:UNIT``), for what is reported."""
    donors: tuple[str, ...]
    targets: np.ndarray
    """The teacher's labels of ``Pixels.training``."""
    held_out_responses: np.ndarray
    """The recorded responses to ``Pixels.held_out``."""


@dataclass(frozen=True)
class JobResult:
    index: int
    distilled: DistilledUnit
    seconds: float


Sink = Callable[[JobResult], None]
Runner = Callable[[ModelBank, Pixels, Sequence[UnitJob], DistillSettings, Sink, Progress | None,
                   Callable[[], bool] | None], None]
"""Runs the jobs (``run_here``, ``run_on_cluster``), handing each result to the sink in the caller's thread."""


class DonorMaps:
    """The frozen-part output of the most recent donors for one set of images, shared by a process's jobs."""

    def __init__(self, pixels: Pixels, device: str | torch.device = "cpu", kept: int = DONOR_MAPS_KEPT) -> None:
        self.pixels, self.device, self.kept = pixels, torch.device(device), kept
        self._maps: OrderedDict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def donor(self, bank: ModelBank, donor_id: str, responses: np.ndarray) -> Donor:
        model = bank.model(donor_id)
        with self._lock:
            if donor_id not in self._maps:
                self._maps[donor_id] = tuple(trunk_maps(model, images, TRUNK_STAGES, self.device)  # type: ignore[assignment]
                                             for images in (self.pixels.training, self.pixels.held_out,
                                                            self.pixels.probe))
            self._maps.move_to_end(donor_id)
            maps, held_out, probe = self._maps[donor_id]
            while len(self._maps) > self.kept:
                self._maps.popitem(last=False)
        return Donor(donor_id, model, maps, HeldOut(held_out, responses, probe))


def run_job(bank: ModelBank, pixels: Pixels, job: UnitJob, settings: DistillSettings, maps: DonorMaps,
            progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> JobResult:
    """One unit's student, trained, chosen among its donors and pruned (``distill_unit``), on the intra-op
    threads of the calling thread: one (``run_here`` sets it before its threads start, which take the setting
    they start with; ``worker_job`` sets it in its worker's thread)."""
    started = time.monotonic()
    donors = [maps.donor(bank, donor_id, job.held_out_responses) for donor_id in job.donors]
    distilled = distill_unit(donors, job.targets, settings, progress, cancelled, pixels)
    return JobResult(job.index, distilled, time.monotonic() - started)


def run_here(device: str = "cpu", workers: int | None = None) -> Runner:
    """Jobs in ``workers`` threads of this process (default: one per intra-op thread PyTorch has; one on a GPU)."""
    def run(bank: ModelBank, pixels: Pixels, jobs: Sequence[UnitJob], settings: DistillSettings, sink: Sink,
            progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> None:
        n_threads = workers or (1 if device.startswith("cuda") else torch.get_num_threads())
        maps = DonorMaps(pixels, device)
        reports: queue.SimpleQueue[tuple[int, int, int | None, str]] = queue.SimpleQueue()
        stop = threading.Event()

        def stopped() -> bool:
            return stop.is_set() or (cancelled is not None and cancelled())

        def work(job: UnitJob) -> JobResult:
            def report(done: int, total: int | None, phase: str = "") -> None:
                reports.put((job.index, done, total, f"unit {job.unit}: {phase}"))
            return run_job(bank, pixels, job, settings, maps, report, stopped)

        with single_intra_op_thread(), ThreadPoolExecutor(max(1, n_threads)) as pool:
            pending: dict[Future, UnitJob] = {pool.submit(work, job): job for job in jobs}
            order = [job.index for job in jobs]
            try:
                while pending:
                    finished, _ = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    _pass_on(reports, order, {job.index for job in pending.values()}, progress)
                    for future in finished:
                        job = pending.pop(future)
                        order.remove(job.index)
                        sink(future.result())
            finally:
                stop.set()  # a failed or cancelled job ends the others too
                for future in pending:
                    future.cancel()
    return run


def _pass_on(reports: queue.SimpleQueue, order: list[int], running: set[int], progress: Progress | None) -> None:
    """The waiting progress reports of the earliest running job, to ``progress`` (others are dropped)."""
    lead = next((index for index in order if index in running), None)
    while True:
        try:
            index, done, total, phase = reports.get_nowait()
        except queue.Empty:
            return
        if progress is not None and index == lead:
            progress(done, total, phase)


_worker_maps: dict[str, DonorMaps] = {}
"""Per worker process: the donor maps of the latest images sent (their token -> maps)."""


def worker_job(bank_spec: str, bank_sha256: str, pixels: Pixels, token: str, settings: DistillSettings, device: str,
               job: UnitJob) -> JobResult:
    """One job as a Dask task: the bank opened once per worker process, the donor maps kept between its tasks."""
    from compactrig.engine.compute.cluster import worker_bank

    torch.set_num_threads(1)  # see the module's docstring
    bank = worker_bank(bank_spec, bank_sha256)
    if token not in _worker_maps:
        _worker_maps.clear()
        _worker_maps[token] = DonorMaps(pixels, device)
    return run_job(bank, pixels, job, settings, _worker_maps[token])


def run_on_cluster(client, bank_spec: str, device: str = "cpu") -> Runner:
    """Jobs as tasks on ``client``'s workers (``compactrig.engine.compute.cluster.open_client``); ``bank_spec`` is
    how a worker opens the bank (``demo``, ``published`` or an absolute folder every worker sees)."""
    from compactrig.engine.compute.cluster import run_tasks

    def run(bank: ModelBank, pixels: Pixels, jobs: Sequence[UnitJob], settings: DistillSettings, sink: Sink,
            progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> None:
        data = client.scatter(pixels, broadcast=True, hash=False)  # one copy per worker, not one per task
        token = f"{os.getpid()}-{data.key}"
        done = 0

        def counted(job: UnitJob, result: JobResult) -> None:
            nonlocal done
            sink(result)
            done += 1
            if progress is not None:
                progress(done, len(jobs), "units on the cluster")

        if progress is not None:
            progress(0, len(jobs), "units on the cluster")
        try:
            run_tasks(client, worker_job, (bank_spec, str(bank.identity()["sha256"]), data, token, settings, device),
                      list(jobs), lambda job: f"compactrig-neuron-{job.index}-{token}", counted,
                      lambda job: f"unit {job.unit}", cancelled)
        finally:
            client.cancel(data)
    return run
