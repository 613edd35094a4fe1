"""Lambda entry point: the scheduled sweep (EventBridge schedule) -> return abandoned uploads and imports to queued.

Each run reads one page of overdue in-flight images from the sweep index (``shared.services.sweeper``); a backlog
larger than a page is worked off by the next runs.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.bootstrap import Container
from shared.config import get_settings
from shared.observability import get_logger

FUNCTION = "sweeper"
logger = get_logger(FUNCTION)
_container = Container(get_settings())


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One sweep; returns what it did (the schedule ignores it; logs and tests read it)."""
    report = _container.sweeper.sweep()
    for image_id, reason in report.abandoned.items():
        logger.warning("abandoned upload returned to queued", extra={"image_id": image_id, "reason": reason})
    logger.info("sweep done", extra={"examined": report.examined, "abandoned": len(report.abandoned)})
    return {"examined": report.examined, "abandoned": sorted(report.abandoned)}
