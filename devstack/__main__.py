"""``python -m devstack`` (``make run``): the local stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from devstack import keystone as keystone_mode
from devstack.stack import (
    DEFAULT_API_PORT,
    DEFAULT_AWS_PORT,
    DEFAULT_STATE_DIR,
    FAKE_CREDENTIALS,
    HOST,
    DevStack,
    DevStackError,
)

log = logging.getLogger("devstack")


class _Shutdown(Exception):
    """Raised in the main thread by the first SIGINT/SIGTERM."""


def main(argv: list[str] | None = None) -> int:
    """Run the local stack until interrupted; 0 after a clean stop, 1 if it could not start."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    # Their INFO lines ("Found credentials in environment variables", ...) say nothing useful here.
    for noisy in ("botocore", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, _on_signal)
    try:
        with ExitStack() as running:
            identity = _keystone(args, running)
            auth = dict(identity.settings) if identity is not None else None
            stack = running.enter_context(
                DevStack(
                    api_port=args.port,
                    aws_port=args.aws_port,
                    state_dir=args.state_dir,
                    auth=auth,
                    data_plane=not args.no_data_plane,
                )
            )
            clouds = _publish(identity, stack) if identity is not None else None
            print(banner(stack, identity, clouds), flush=True)
            while True:
                time.sleep(3600)
    except _Shutdown:
        log.info("stopped")
        return 0
    except (DevStackError, keystone_mode.KeystoneModeError) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _keystone(args: argparse.Namespace, running: ExitStack) -> keystone_mode.KeystoneMode | None:
    if args.keystone_url:
        return keystone_mode.named_keystone(args.keystone_url)
    if args.keystone:
        log.info("starting the test Keystone (tests/backends/keystone; the first time installs it, ~30 s)")
        return running.enter_context(keystone_mode.started_keystone(args.state_dir / "keystone"))
    return None


def _publish(identity: keystone_mode.KeystoneMode, stack: DevStack) -> Path:
    """Register the stack in a Keystone we started; write the clouds.yaml either way."""
    if identity.clouds:
        keystone_mode.register_endpoint(keystone_mode.admin_session(identity), stack.endpoint, identity.region)
    return keystone_mode.write_clouds_yaml(identity, stack.endpoint, stack.state_dir / "clouds.yaml")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # A second Ctrl-C while stopping falls back to the default (KeyboardInterrupt) and forces the exit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    log.info("%s received, stopping", signal.Signals(signum).name)
    raise _Shutdown


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Run Serverless Glance locally in the deployed shape: moto server, the front door, the API, the "
        "data plane and the queue handlers.",
    )
    # trusted-headers mode believes whoever connects, so the stack never listens beyond loopback.
    parser.add_argument("--host", default=HOST, choices=[HOST], help="listen address (loopback only)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_API_PORT, help="image endpoint (front door) port (0: any free port)"
    )
    parser.add_argument("--aws-port", type=int, default=DEFAULT_AWS_PORT, help="moto server port (0: any free port)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="folder the stack owns")
    parser.add_argument(
        "--no-data-plane",
        action="store_true",
        help="the deployment with the data plane off: every route to the API (presigned uploads for large images)",
    )
    identity = parser.add_mutually_exclusive_group()
    identity.add_argument(
        "--keystone",
        action="store_true",
        help="validate real tokens: start the tests' Keystone, create its accounts and print a clouds.yaml",
    )
    identity.add_argument(
        "--keystone-url",
        metavar="URL",
        help="validate real tokens against this Keystone v3 (service user from SGLANCE_KEYSTONE_SERVICE_*)",
    )
    return parser


def openstack_command(endpoint: str) -> str:
    """A command line that lists images on ``endpoint`` with python-openstackclient, no Keystone needed."""
    return shlex.join(
        [_openstack_executable(), "--os-auth-type", "none", "--os-endpoint", endpoint]
        + ["--os-image-api-version", "2", "image", "list"]
    )


def _openstack_executable() -> str:
    # make run does not activate the venv, so point at the openstack script installed next to this interpreter.
    beside = Path(sys.executable).parent / "openstack"
    if not beside.exists():
        return shutil.which("openstack") or "openstack"
    relative = os.path.relpath(beside)
    return str(beside) if relative.startswith("..") else relative


def banner(stack: DevStack, identity: keystone_mode.KeystoneMode | None = None, clouds: Path | None = None) -> str:
    """What ``make run`` prints once everything is up."""
    settings = stack.settings
    loop = stack.event_loop
    queues = [f"{name}: polling" for name in loop.active_queues]
    queues += [f"{name}: idle (handler not available, see log)" for name in loop.idle_queues]
    lines = [
        "",
        "Serverless Glance devstack is running (Ctrl-C to stop)",
        f"  image API    {stack.endpoint}  (the front door: data routes to the data plane, the rest to the API)",
        f"  API          {stack.api_endpoint}  (the API function: body limit {settings.api_body_limit} bytes, "
        "downloads redirected)",
        f"  data plane   {stack.data_plane_endpoint or 'off (presigned uploads only)'}",
        f"  AWS (moto)   {stack.aws_endpoint}  region {settings.aws_region}, "
        f"access key and secret {FAKE_CREDENTIALS!r}",
    ]
    if identity is None or clouds is None:
        lines += [
            f"  identity     project {settings.dev_project_id}",
            f"               user    {settings.dev_user_id}",
            f"               roles   {','.join(settings.dev_roles)}",
            "               (auth_mode=trusted-headers: X-Project-Id, X-User-Id, X-Roles headers override these)",
        ]
    else:
        lines += [f"  identity     Keystone {identity.url} (auth_mode=keystone)"]
        lines += [f"  project      {name} {project_id}" for name, project_id in sorted(identity.projects.items())]
        lines += [f"  clouds.yaml  {clouds}"]
    lines += [
        *(f"  queue        {line}" for line in queues),
        f"  state        {stack.state_dir}",
        "",
        "Try:",
    ]
    if identity is None or clouds is None:
        lines += [f"  {openstack_command(stack.endpoint)}", ""]
        return "\n".join(lines)
    cloud = identity.clouds[0].name if identity.clouds else f"{keystone_mode.CLOUD_PREFIX}local"
    command = shlex.join([_openstack_executable(), "--os-cloud", cloud, "image", "list"])
    lines += [f"  export OS_CLIENT_CONFIG_FILE={shlex.quote(str(clouds))}", f"  {command}", ""]
    if identity.clouds:
        lines += ["clouds.yaml:", keystone_mode.clouds_yaml(identity, stack.endpoint)]
    else:
        lines += [f"fill in your account in {clouds}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
