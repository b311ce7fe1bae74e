"""Asynchronous ingestion jobs: queued on disk, run one at a time, resumable.

Each job is a JSON file (HOME/jobs/ID.json) holding its status and its documents, written
before the request returns, so that an accepted job survives a restart. At shutdown the
running job gets a grace period to finish; past it, it is cancelled. Nothing is lost either
way: the builder commits document by document and checkpoints its position, and a job found
`queued` or `running` at start-up is queued again (its committed documents are skipped).
Jobs queued or running are capped (`max_pending`): each holds its documents on disk. One
process runs a folder's jobs: it holds an exclusive lock on HOME/jobs/runner.lock (flock, which
the kernel releases when the process ends, even on kill -9), so that a second server on the
same home cannot resume and run the same jobs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from evergraph.agents.build import Totals
from evergraph.errors import ServiceError, UsageError
from evergraph.graph.models import utcnow
from evergraph.server.errors import RateLimited
from evergraph.server.metrics import Metrics
from evergraph.server.schemas import DocumentIn, Job, JobState

log = logging.getLogger(__name__)

LOCK_FILE = "runner.lock"
FULL_RETRY_S = 30.0
"""When to try again with the queue full: a job takes tens of seconds to minutes."""

Runner = Callable[[Job, Sequence[DocumentIn], Callable[[int], None]], Awaitable[Totals]]
"""Runs one job: (job, its documents, report documents done) -> totals."""


class _Record(BaseModel):
    job: Job
    documents: list[DocumentIn]


class JobQueue:
    def __init__(self, root: Path, runner: Runner, metrics: Metrics, max_pending: int) -> None:
        self.root = root
        self.runner = runner
        self.metrics = metrics
        self.max_pending = max_pending
        self._jobs: dict[str, Job] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._lock: int | None = None  # the lock file's descriptor, while held
        self.closing = False

    def _path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def _save(self, job: Job, documents: Sequence[DocumentIn]) -> None:
        tmp = self._path(job.id).with_suffix(".tmp")
        tmp.write_text(_Record(job=job, documents=list(documents)).model_dump_json())
        tmp.replace(self._path(job.id))

    def _pending(self) -> int:
        return sum(j.state in (JobState.QUEUED, JobState.RUNNING) for j in self._jobs.values())

    def _update(self, job: Job, documents: Sequence[DocumentIn] = ()) -> None:
        """Keep the new status; documents are kept on disk only while the job is pending."""
        self._jobs[job.id] = job
        self._save(job, documents)
        self.metrics.queue_depth.set(self._pending())

    def claim(self) -> None:
        """Take the folder's lock (kept until `close`) or refuse to run its jobs at all;
        non-blocking, so that a second server stops at start rather than waits."""
        if self._lock is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(
                f"another server (pid {holder}) runs the ingestion jobs in {self.root}: it "
                f"holds {path}",
                fix="stop that server, or give this one its own EVERGRAPH_HOME",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    async def start(self) -> None:
        """Take the lock; load the jobs on disk; queue again those a shutdown interrupted."""
        self.claim()
        for path in sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime):
            record = _Record.model_validate_json(path.read_bytes())
            job = record.job
            self._jobs[job.id] = job
            if job.state in (JobState.QUEUED, JobState.RUNNING):
                log.info("job resumed", extra={"job": job.id, "namespace": job.namespace})
                self._update(job.model_copy(update={"state": JobState.QUEUED}), record.documents)
                self._queue.put_nowait(job.id)
        self._worker = asyncio.create_task(self._work())

    def submit(self, namespace: str, documents: Sequence[DocumentIn], samples: int | None) -> Job:
        if self.closing:
            raise ServiceError("the server is shutting down", fix="retry once it is back")
        if self._pending() >= self.max_pending:
            raise RateLimited(
                f"the ingestion queue is full: {self.max_pending} jobs are queued or running",
                retry_after=FULL_RETRY_S,
            )
        job = Job(
            id=uuid.uuid4().hex,
            namespace=namespace,
            documents=len(documents),
            samples=samples,
            submitted_at=utcnow(),
        )
        self._update(job, documents)
        self._queue.put_nowait(job.id)
        log.info("job queued", extra={"job": job.id, "namespace": namespace})
        return job

    def get(self, namespace: str, job_id: str) -> Job | None:
        """The job, if it is this namespace's (another namespace's job does not exist here)."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.namespace == namespace else None

    async def _work(self) -> None:
        while not self.closing:
            job_id = await self._queue.get()
            await self._run(self._jobs[job_id])

    async def _run(self, job: Job) -> None:
        record = _Record.model_validate_json(self._path(job.id).read_bytes())
        job = job.model_copy(update={"state": JobState.RUNNING, "started_at": utcnow()})
        self._update(job, record.documents)

        def progress(done: int) -> None:
            self._jobs[job.id] = self._jobs[job.id].model_copy(update={"done": done})

        try:
            totals = await self.runner(job, record.documents, progress)
        except asyncio.CancelledError:
            log.warning("job interrupted; it resumes at the next start", extra={"job": job.id})
            raise
        except Exception as e:  # reported in the job's status, never to a request
            log.exception("job failed", extra={"job": job.id, "namespace": job.namespace})
            message = str(e) if isinstance(e, ServiceError | ValueError) else type(e).__name__
            finished = {"state": JobState.FAILED, "error": message, "finished_at": utcnow()}
            self._update(self._jobs[job.id].model_copy(update=finished))
            self.metrics.jobs.labels("failed").inc()
            return
        done = {"state": JobState.DONE, "totals": totals, "finished_at": utcnow()}
        self._update(self._jobs[job.id].model_copy(update=done))
        self.metrics.jobs.labels("done").inc()
        log.info("job done", extra={"job": job.id, "documents": totals.documents})

    async def close(self, grace: float) -> None:
        """Refuse new jobs, give the running one `grace` seconds, then cancel it (it resumes
        from its checkpoint at the next start); queued jobs stay queued on disk, and the
        folder's lock is released for the next server."""
        self.closing = True
        if self._worker is not None:
            await self._stop(self._worker, grace)
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    async def _stop(self, worker: asyncio.Task[None], grace: float) -> None:
        running = any(j.state is JobState.RUNNING for j in self._jobs.values())
        if running:
            log.info("waiting for the running ingestion job", extra={"grace_s": grace})
            deadline = asyncio.get_running_loop().time() + grace
            while asyncio.get_running_loop().time() < deadline and any(
                j.state is JobState.RUNNING for j in self._jobs.values()
            ):
                await asyncio.sleep(0.05)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
