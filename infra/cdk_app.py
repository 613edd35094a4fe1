"""The CDK app: ``python infra/cdk_app.py`` from the repository root, or ``cdk synth`` / ``cdk deploy``.

Context (``cdk deploy -c key=value`` or ``cdk.json``), read once by ``read_context``:

- ``stage``: names the stacks, ``sglance-<stage>-stateful``, and tags every resource; default ``dev``.
- ``table_name``, ``image_bucket``, ``upload_queue_name``, ``store_sync_queue_name``, ``event_bus_name``:
  resource names, as in ``shared.config.Settings``; each defaults to the ``Settings`` default. S3 bucket
  names are global, so a real deployment almost always sets ``image_bucket``.

``SGLANCE_*`` environment variables are ignored on purpose: the same context must give the same template,
whatever the operator's shell holds (for instance the local stack's settings).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# `python infra/cdk_app.py` puts infra/ first on sys.path, not the repository root that holds `shared`.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App, Environment, Tags  # noqa: E402
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource  # noqa: E402

from infra.stacks.stateful import StatefulStack  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.resources import resources_for  # noqa: E402

DEFAULT_STAGE = "dev"
DEFAULT_OUTDIR = "cdk.out"
# Settings fields an operator may set through context; everything else is runtime configuration.
RESOURCE_NAME_KEYS: tuple[str, ...] = (
    "table_name",
    "image_bucket",
    "upload_queue_name",
    "store_sync_queue_name",
    "event_bus_name",
)
# A stage ends up in stack names ([A-Za-z][-A-Za-z0-9]*, 128 chars) and tags; keep it short and plain.
_STAGE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,19}")


class _ContextSettings(Settings):
    """``Settings`` from constructor arguments only, so the environment of whoever runs ``cdk`` cannot leak in."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True)
class AppContext:
    """What the app takes from CDK context."""

    stage: str
    settings: Settings


def read_context(app: App) -> AppContext:
    """Read and validate the app's context; raises ``ValueError`` on a malformed value."""
    stage = _context_string(app, "stage") or DEFAULT_STAGE
    if not _STAGE_PATTERN.fullmatch(stage):
        raise ValueError(f"context 'stage' must match {_STAGE_PATTERN.pattern}, got {stage!r}")
    overrides: dict[str, Any] = {
        key: value for key in RESOURCE_NAME_KEYS if (value := _context_string(app, key)) is not None
    }
    return AppContext(stage=stage, settings=_ContextSettings(**overrides))


def build_app(outdir: str | None = None) -> App:
    """The app with every stack, ready to synthesize into ``outdir`` (default ``$CDK_OUTDIR`` or ``cdk.out``)."""
    app = App(outdir=outdir or os.environ.get("CDK_OUTDIR", DEFAULT_OUTDIR))
    context = read_context(app)
    # Set by the cdk CLI from the operator's profile; unset (an environment-agnostic template) under plain python.
    env = Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    StatefulStack(
        app,
        f"sglance-{context.stage}-stateful",
        resources=resources_for(context.settings),
        env=env,
        description=f"Serverless Glance ({context.stage}): images table, image bucket, work queues, event bus",
        termination_protection=True,
    )
    Tags.of(app).add("project", "serverless-glance")
    Tags.of(app).add("stage", context.stage)
    return app


def _context_string(app: App, key: str) -> str | None:
    value = app.node.try_get_context(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"context {key!r} must be a non-empty string, got {value!r}")
    return value


def main() -> None:
    """Synthesize the cloud assembly."""
    build_app().synth()


if __name__ == "__main__":
    main()
