"""Job entry point: ``python -m functions.task_runner '<job JSON>'`` (or the job in ``SGLANCE_JOB``).

Runs one job that did not fit a Lambda worker (``shared.jobrunner``) with the same service the worker calls, under
the job's own deadline (``job_max_seconds``). A job never hands its work on again: past its deadline the work fails
for good (the image back to queued with the reason, or the store copy ``failed``). Exit status 0 when the job ran
to an outcome, 1 when it failed, 2 for a malformed job.
"""

from __future__ import annotations

import json
import sys

from shared.bootstrap import Container
from shared.config import get_settings
from shared.deadline import JOB, Deadline
from shared.jobrunner import NoJobLauncher
from shared.jobs import CopyJob, DeleteJob, FinalizeJob, ImportJob, Job, MalformedJobError, read_envelope
from shared.observability import get_logger

FUNCTION = "task-runner"
logger = get_logger(FUNCTION)


def run(job: Job, container: Container) -> str:
    """Run ``job`` to its outcome; returns the outcome's name."""
    deadline = Deadline.after(container.settings.job_max_seconds, JOB)
    if isinstance(job, FinalizeJob):
        return container.finalizer.handle_object(job.key, job.request_id, deadline).value
    if isinstance(job, ImportJob):
        return container.import_worker.run(job, deadline).value
    assert isinstance(job, CopyJob | DeleteJob)
    # A job has no later delivery: its attempt is the last, so a failure is recorded for good.
    return container.store_sync.run(job, container.settings.store_sync_max_attempts, deadline).value


def main(argv: list[str]) -> int:
    """Read the job, run it, report."""
    settings = get_settings()
    text = argv[1] if len(argv) > 1 else settings.job
    try:
        if not text:
            raise MalformedJobError("no job given (argument or SGLANCE_JOB)")
        job = read_envelope(json.loads(text))
    except (ValueError, MalformedJobError) as exc:
        logger.error("malformed job", extra={"reason": str(exc)})
        return 2
    container = Container(settings, {"job_launcher": NoJobLauncher("a job never hands its work on")})
    fields = {"job": type(job).__name__, "image_id": job.key if isinstance(job, FinalizeJob) else job.image_id}
    try:
        outcome = run(job, container)
    except Exception:
        logger.exception("job failed", extra=fields)
        return 1
    finally:
        container.aws.close()
    logger.info("job finished", extra={**fields, "outcome": outcome})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
