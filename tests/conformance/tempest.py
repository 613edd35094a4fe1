"""``make tempest``: OpenStack's own tests against the local stack, and the per-test comparison with real Glance.

What runs, all on loopback and all started here:

- the tests' Keystone 30 (tests/backends/keystone, devstack/keystone.py), with the stack registered as the catalog's
  ``image`` endpoint and a second API worker as ``image_remote`` (Tempest's distributed-import tests);
- the local stack (devstack) in Keystone mode with two stores: the image bucket ``fast`` (weight 200) and a
  file store ``slow`` (weight 100), as the reference Glance's ``fast``/``slow`` file stores;
- a fixture HTTP server with the images Tempest's web-download tests fetch (``http_image``, ``http_qcow2_image``);
- Tempest 47 with glance-tempest-plugin 0.17.0 from their own virtualenv (tests/backends/tempest/install.sh).

Profiles: ``default`` (``require_image_format_match`` on, Tempest's ``image_format_enforcement = true``) and
``coverage`` (both off, which lets ListUserImagesTest upload bogus data). Suites: ``tempest`` (``tempest.api.image``)
and ``plugin`` (``glance_tempest_plugin``). Each run's per-test statuses go to ``docs/conformance/ours-<suite>-
<profile>.json``; ``docs/conformance.md`` is rewritten from those and the reference runs beside them.

    .venv/bin/python -m tests.conformance.tempest [--profile default|coverage|both] [--suite tempest|plugin|all]
    .venv/bin/python -m tests.conformance.tempest --docs-only      # rewrite docs/conformance.md from the JSON files
"""

from __future__ import annotations

import argparse
import configparser
import functools
import http.server
import io
import json
import logging
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from devstack import keystone as keystone_mode
from devstack.stack import HOST, DevStack
from functions.api.app import create_app
from shared.config import Settings
from tests.conformance.report import write_report

log = logging.getLogger("tempest")

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".tempest"
RESULTS = REPO / "docs" / "conformance"
INSTALL = REPO / "tests" / "backends" / "tempest" / "install.sh"
SUMMARIZE = Path(__file__).resolve().parent / "summarize.py"
TEMPEST_VENV = (
    Path(os.environ["SGLANCE_TEMPEST_VENV"])
    if "SGLANCE_TEMPEST_VENV" in os.environ
    else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sglance" / "tempest-venv"
)
SUITES = {"tempest": r"^tempest\.api\.image", "plugin": r"^glance_tempest_plugin"}
# Its in-test HTTP server binds the host's non-loopback address; the reference run excludes it too.
EXCLUDE = "HashCalculationRemoteDeletionTest"
PRIMARY, SECOND = ("fast", 200), ("slow", 100)


def main(argv: list[str] | None = None) -> int:
    """Run the suites and profiles asked for, then rewrite docs/conformance.md; 1 if a test failed."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("botocore", "pynamodb", "serverless-glance", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.docs_only:
        print(write_report(RESULTS, REPO / "docs" / "conformance.md"))
        return 0
    profiles = ["default", "coverage"] if args.profile == "both" else [args.profile]
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    subprocess.run(["bash", str(INSTALL)], check=True)
    failed = 0
    STATE.mkdir(exist_ok=True)
    if args.reference:
        return _run_reference(args.reference, suites, profiles)
    with ExitStack() as running:
        mode = running.enter_context(keystone_mode.started_keystone(STATE / "keystone"))
        fixtures = running.enter_context(_fixture_server(STATE / "fixtures"))
        for profile in profiles:
            with _stack(mode, profile, fixtures) as (primary, remote):
                session = keystone_mode.admin_session(mode)
                keystone_mode.register_endpoint(session, primary, mode.region)
                keystone_mode.register_endpoint(session, remote, mode.region, service_type="image_remote")
                for suite in suites:
                    statuses = _run_tempest(mode, suite, profile, fixtures)
                    failed += sum(1 for s in statuses.values() if s["status"] == "fail")
    print(write_report(RESULTS, REPO / "docs" / "conformance.md"))
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.tempest", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=["default", "coverage", "both"], default="both")
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--docs-only", action="store_true", help="only rewrite docs/conformance.md")
    parser.add_argument(
        "--reference",
        metavar="ADMIN_PASSWORD",
        help="run against the shared reference stack instead (Keystone :5500 whose catalog names the real Glance; "
        "wrap in `flock /tmp/tempest.lock`) and write reference-*.json; the profile must match the reference Glance's",
    )
    return parser


def _run_reference(admin_password: str, suites: list[str], profiles: list[str]) -> int:
    """The same suites against real Glance 33 on the shared harness (its Keystone, fixtures and catalog)."""
    admin = keystone_mode.Cloud("reference-admin", "admin", admin_password, "admin")
    mode = keystone_mode.KeystoneMode(url=f"http://{HOST}:5500/v3", region="RegionOne", settings={}, clouds=(admin,))
    for profile in profiles:
        for suite in suites:
            _run_tempest(mode, suite, profile, f"http://{HOST}:8099", kind="reference")
    print(write_report(RESULTS, REPO / "docs" / "conformance.md"))
    return 0


# -- the stack -------------------------------------------------------------------------------------------------


@contextmanager
def _stack(mode: keystone_mode.KeystoneMode, profile: str, fixtures: str) -> Iterator[tuple[str, str]]:
    """The local stack in Keystone mode with two stores, and a second API worker; their endpoints."""
    data_dir = STATE / "stores" / profile
    data_dir.mkdir(parents=True, exist_ok=True)
    fixture_port = int(fixtures.rsplit(":", 1)[1])
    # Through the environment, not a Settings object: the queue handlers (import worker, store_sync) build their
    # own settings from it, like deployed functions.
    environment = {
        "SGLANCE_PRIMARY_STORE_ID": PRIMARY[0],
        "SGLANCE_PRIMARY_STORE_WEIGHT": str(PRIMARY[1]),
        "SGLANCE_STORES": json.dumps({SECOND[0]: {"type": "file", "data_dir": str(data_dir), "weight": SECOND[1]}}),
        "SGLANCE_WEB_DOWNLOAD_ALLOWED_HOSTS": HOST,
        "SGLANCE_WEB_DOWNLOAD_ALLOWED_PORTS": f"80,443,{fixture_port}",
        "SGLANCE_REQUIRE_IMAGE_FORMAT_MATCH": "true" if profile == "default" else "false",
        # as the reference Glance (show_multiple_locations = true)
        "SGLANCE_SHOW_MULTIPLE_LOCATIONS": "true",
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        settings = Settings()
    except BaseException:
        _restore(saved)
        raise
    state_dir = STATE / f"devstack-{profile}"
    with ExitStack() as running:
        running.callback(_restore, saved)
        stack = running.enter_context(
            DevStack(api_port=0, aws_port=0, state_dir=state_dir, settings=settings, auth=mode.settings)
        )
        remote = running.enter_context(_second_worker(stack.settings))
        log.info("stack %s (profile %s), second worker %s", stack.endpoint, profile, remote)
        yield stack.endpoint, remote


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextmanager
def _second_worker(settings: Settings) -> Iterator[str]:
    """Another API process's worth (its own app, containers and caches) on the same emulator and stores."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    config = uvicorn.Config(create_app(settings), host=HOST, port=sock.getsockname()[1], log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="second-worker", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the second API worker did not start")
        time.sleep(0.05)
    try:
        yield f"http://{HOST}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def _fixture_server(folder: Path) -> Iterator[str]:
    """The images the web-download tests fetch, served over HTTP on loopback; its base URL."""
    from tests.support.image_corpus import qcow2_image

    folder.mkdir(parents=True, exist_ok=True)
    payload = b"sglance tempest fixture\n" * 4096
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("image.raw")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    (folder / "http_image.tar.gz").write_bytes(archive.getvalue())
    (folder / "http_qcow2_image.qcow2").write_bytes(qcow2_image())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((HOST, 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="fixtures", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- Tempest ---------------------------------------------------------------------------------------------------


def _tempest_conf(mode: keystone_mode.KeystoneMode, workspace: Path, profile: str, fixtures: str) -> str:
    admin_password = next(cloud.password for cloud in mode.clouds if cloud.username == "admin")
    enforcement = "true" if profile == "default" else "false"
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {
            "log_dir": str(workspace / "logs"),
            "log_file": "tempest.log",
            "debug": "true",
            "use_stderr": "false",
        },
        "oslo_concurrency": {"lock_path": str(workspace / "locks")},
        "auth": {
            "use_dynamic_credentials": "true",
            "create_isolated_networks": "false",
            "admin_username": "admin",
            "admin_password": admin_password,
            "admin_project_name": "admin",
            "admin_domain_name": "Default",
            "default_credentials_domain_name": "Default",
        },
        "identity": {"uri_v3": mode.url, "auth_version": "v3", "region": mode.region, "v3_endpoint_type": "public"},
        "identity-feature-enabled": {"application_credentials": "true"},
        "service_available": {
            "glance": "true",
            **dict.fromkeys(("nova", "neutron", "cinder", "swift", "horizon"), "false"),
        },
        # Glance 33 enforces the new defaults and scopes; so do we.
        "enforce_scope": {"glance": "true"},
        "image": {
            "catalog_type": "image",
            "region": mode.region,
            "endpoint_type": "publicURL",
            "build_timeout": "300",
            "build_interval": "1",
            "http_image": f"{fixtures}/http_image.tar.gz",
            "http_qcow2_image": f"{fixtures}/http_qcow2_image.qcow2",
            "image_caching_enabled": "true",
            "hashing_algorithm": "sha512",
            "alternate_image_endpoint": "image_remote",
        },
        # The reference Glance's features (shared/reference/glance-reference), so that the runs compare test by test.
        "image-feature-enabled": {
            "import_image": "true",
            "os_glance_reserved": "true",
            "manage_locations": "true",
            "image_conversion": "true",
            "image_format_enforcement": enforcement,
            "do_secure_hash": "true",
            "http_store_enabled": "true",
            "store_weight_enabled": "true",
        },
        "validation": {"run_validation": "false"},
    }
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(sections)
    text = io.StringIO()
    parser.write(text)
    return text.getvalue()


def _run_tempest(
    mode: keystone_mode.KeystoneMode, suite: str, profile: str, fixtures: str, kind: str = "ours"
) -> dict[str, dict[str, str]]:
    """One Tempest run; the per-test statuses, also written to docs/conformance/<kind>-<suite>-<profile>.json."""
    bin_dir = TEMPEST_VENV / "bin"
    workspace = STATE / f"ws-{kind}-{suite}-{profile}"
    if not (workspace / ".stestr.conf").exists():
        subprocess.run([str(bin_dir / "tempest"), "init", str(workspace)], check=True, capture_output=True)
    (workspace / "etc" / "tempest.conf").write_text(_tempest_conf(mode, workspace, profile, fixtures))
    env = {**os.environ, "TEMPEST_CONFIG_DIR": str(workspace / "etc"), "TEMPEST_CONFIG": "tempest.conf"}
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    regex = SUITES[suite]
    listed = subprocess.run(
        [str(bin_dir / "stestr"), "list", regex], cwd=workspace, env=env, capture_output=True, text=True, check=True
    ).stdout
    (workspace / "listed.txt").write_text(listed)
    started = time.monotonic()
    log.info("tempest %s (%s profile): %d tests", suite, profile, len(listed.split()))
    with (workspace / "run.out").open("w") as out:
        run = [str(bin_dir / "tempest"), "run", "--regex", regex, "--exclude-regex", EXCLUDE, "--concurrency", "2"]
        subprocess.run(run, cwd=workspace, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    subunit = subprocess.run(
        [str(bin_dir / "stestr"), "last", "--subunit"], cwd=workspace, env=env, capture_output=True, check=False
    ).stdout
    summary = subprocess.run(
        [str(bin_dir / "python"), str(SUMMARIZE), str(workspace / "listed.txt"), EXCLUDE],
        input=subunit,
        capture_output=True,
        check=True,
    ).stdout
    statuses: dict[str, dict[str, str]] = json.loads(summary)
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"suite": suite, "profile": profile, "wall_seconds": round(elapsed), "tests": statuses}
    if kind == "reference":
        record["source"] = f"real Glance 33 on the shared harness ({mode.url}), run by --reference"
    (RESULTS / f"{kind}-{suite}-{profile}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    counts = {s: sum(1 for t in statuses.values() if t["status"] == s) for s in ("pass", "fail", "skip")}
    log.info("tempest %s (%s profile): %s in %.0f s", suite, profile, counts, elapsed)
    return statuses


if __name__ == "__main__":
    sys.exit(main())
