"""The local stack: moto server, provisioned resources, the API under uvicorn, the data plane, the front door, the
SQS event loop, the scheduler (the sweeper on its deployed schedule) and the local job runner (jobs as child
processes), in the deployed shape.

``DevStack`` is what ``make run`` starts, and what API tests can start in-process. Clients use one endpoint, the
front door (devstack/front_door.py, its own process), which routes as the deployed one does: the data routes to
the data plane (functions/data_plane, its own process), everything else to the API, which runs with the deployed
API function's settings (its body limit, redirected downloads). The API and the event loop run in this process.
It owns one folder (``.devstack/`` by default) for its state file and for the temporary files moto spools large
objects to; moto keeps everything else in memory, so a restart starts empty.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import uvicorn
from moto.server import ThreadedMotoServer

from devstack.emulator import serialize_moto_dynamodb
from devstack.event_loop import EventLoop, LambdaHandler, default_handlers
from devstack.processes import ChildProcess, ChildStartError
from devstack.provision import provision
from devstack.scheduler import SWEEPER_HANDLER, Schedule, Scheduler
from shared.config import Settings, get_settings
from shared.resources import resources_for

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_API_PORT = 9292
DEFAULT_AWS_PORT = 5055
DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent / ".devstack"
STATE_FILE = "devstack.json"
API_APP_FACTORY = "functions.api.app:create_app"
FAKE_CREDENTIALS = "testing"
# Idle keep-alive of the local API (API Gateway keeps client connections for minutes).
KEEP_ALIVE_S = 120

AppFactory = Callable[[Settings], Any]


class DevStackError(RuntimeError):
    """The local stack could not start (a port in use, another stack in the same folder, no API yet)."""


class DevStack:
    """Starts and stops everything ``make run`` needs, on loopback only; use as a context manager."""

    def __init__(
        self,
        *,
        api_port: int = DEFAULT_API_PORT,
        aws_port: int = DEFAULT_AWS_PORT,
        state_dir: Path = DEFAULT_STATE_DIR,
        settings: Settings | None = None,
        app_factory: AppFactory | None = None,
        handlers: Mapping[str, str | LambdaHandler] | None = None,
        auth: Mapping[str, Any] | None = None,
        data_plane: bool = True,
    ) -> None:
        """``api_port``: the image endpoint's (the front door's) port; ``auth``: settings that replace trusted
        headers (Keystone mode, devstack/keystone.py; the data plane gets them too, through the environment);
        ``data_plane``: False runs the deployment with the data plane off (the front door sends every route to
        the API)."""
        self._auth = dict(auth or {})
        self._api_port = api_port
        self._with_data_plane = data_plane
        self._aws_port = aws_port
        self.state_dir = state_dir
        self._base_settings = settings
        self._app_factory = app_factory
        self._handlers = handlers
        self._settings: Settings | None = None
        self._endpoint: str | None = None
        self._aws_endpoint: str | None = None
        self._moto: ThreadedMotoServer | None = None
        self._api: uvicorn.Server | None = None
        self._api_thread: threading.Thread | None = None
        self._api_endpoint: str | None = None
        self._data_plane: ChildProcess | None = None
        self._front_door: ChildProcess | None = None
        self._event_loop: EventLoop | None = None
        self._scheduler: Scheduler | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_tempdir: str | None = None
        self._tempdir_patched = False
        self._started = False

    @property
    def endpoint(self) -> str:
        """Base URL of the image API for clients, the front door: e.g. ``http://127.0.0.1:9292``."""
        return _require(self._endpoint, "endpoint")

    @property
    def api_endpoint(self) -> str:
        """Base URL of the API itself (what API Gateway and the API function are when deployed), behind the front
        door; it has the API function's body limit."""
        return _require(self._api_endpoint, "api_endpoint")

    @property
    def data_plane_endpoint(self) -> str | None:
        """Base URL of the data plane behind the front door (None when the stack runs without one)."""
        return self._data_plane.url if self._data_plane is not None else None

    @property
    def data_plane_pid(self) -> int | None:
        """The data plane's process id (None without one): its memory can be read in /proc."""
        return self._data_plane.pid if self._data_plane is not None else None

    @property
    def aws_endpoint(self) -> str:
        """Endpoint URL of the moto server, for boto3 ``endpoint_url``."""
        return _require(self._aws_endpoint, "aws_endpoint")

    @property
    def settings(self) -> Settings:
        """The settings the API and the handlers run with."""
        return _require(self._settings, "settings")

    @property
    def event_loop(self) -> EventLoop:
        """The SQS event loop (to see which queues are active or idle)."""
        return _require(self._event_loop, "event_loop")

    @property
    def state_file(self) -> Path:
        """The JSON file that says this stack is running: pid and endpoints."""
        return self.state_dir / STATE_FILE

    def start(self) -> DevStack:
        """Start moto, provision, start the API and the event loop; on failure, undo what was started."""
        if self._started:
            raise DevStackError("this DevStack is already started")
        self._claim_state_dir()
        self._started = True
        try:
            self._start_moto()
            self._configure_process()
            resources = resources_for(self.settings)
            provision(resources, self.aws_endpoint, self.settings.aws_region)
            _load_metadefs(self.settings)
            self._start_api()
            self._start_planes()
            self._event_loop = EventLoop(
                self._handlers if self._handlers is not None else default_handlers(resources),
                self.aws_endpoint,
                self.settings.aws_region,
            )
            self._event_loop.start()
            # The deployed EventBridge schedule of the sweeper (functions/sweeper), at the same rate.
            self._scheduler = Scheduler({"sweeper": Schedule(SWEEPER_HANDLER, self.settings.sweep_interval_seconds)})
            self._scheduler.start()
            self._write_state_file()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the front door, the data plane, the event loop, the API and moto (in that order), and restore the
        process environment."""
        if not self._started:
            return
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        for child in (self._front_door, self._data_plane):
            if child is not None:
                child.stop()
        self._front_door = self._data_plane = None
        if self._event_loop is not None:
            self._event_loop.stop()
            self._event_loop = None
        self._stop_api()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self._restore_process()
        with suppress(FileNotFoundError):
            self.state_file.unlink()
        self._started = False

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- steps -----------------------------------------------------------------------------------

    def _claim_state_dir(self) -> None:
        (self.state_dir / "tmp").mkdir(parents=True, exist_ok=True)
        try:
            other = json.loads(self.state_file.read_text())["pid"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return
        if isinstance(other, int) and other != os.getpid() and _pid_alive(other):
            raise DevStackError(
                f"another devstack (pid {other}) is running from {self.state_dir}; "
                f"if that process is not a devstack, delete {self.state_file}"
            )

    def _start_moto(self) -> None:
        _check_port_free(self._aws_port, "--aws-port")
        # werkzeug logs one line per request at INFO.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        serialize_moto_dynamodb()  # moto's transactions are not atomic under concurrency (devstack/emulator.py)
        self._moto = ThreadedMotoServer(ip_address=HOST, port=self._aws_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self._aws_endpoint = f"http://{host}:{port}"

    def _configure_process(self) -> None:
        base = self._base_settings or Settings()
        self._settings = base.model_copy(
            update={
                "aws_endpoint_url": self.aws_endpoint,
                "auth_mode": "trusted-headers",
                # The API keeps the deployed API function's body limit and redirected downloads: the data plane
                # (for_data_plane()) is where bodies of any size and streamed downloads go, as deployed.
                # The emulator has the bus (and the rule -> queue): notifications always go there.
                "notification_driver": "eventbridge",
                # Work too long for a worker's (simulated) timeout runs as a child: python -m functions.task_runner.
                "job_launcher": "local",
                **self._auth,
            },
        )
        # This process plays the launcher and the Lambda runtime: boto3 needs credentials (any will do for moto,
        # and fake ones guarantee nothing reaches a real account), and the handlers, which build their settings
        # from the environment like deployed functions, must see the emulator endpoint.
        self._patch_env(
            {
                "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS,
                "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS,
                "AWS_SESSION_TOKEN": None,
                "AWS_SECURITY_TOKEN": None,
                "AWS_DEFAULT_REGION": self._settings.aws_region,
                "SGLANCE_AWS_REGION": self._settings.aws_region,
                "SGLANCE_AWS_ENDPOINT_URL": self.aws_endpoint,
                "SGLANCE_AUTH_MODE": "trusted-headers",
                **{f"SGLANCE_{name.upper()}": _env_value(value) for name, value in self._auth.items()},
                "SGLANCE_NOTIFICATION_DRIVER": "eventbridge",
                "SGLANCE_JOB_LAUNCHER": "local",
            }
        )
        get_settings.cache_clear()
        # moto spools objects over ~5 MiB to temporary files; keep them inside the folder this stack owns.
        self._saved_tempdir = tempfile.tempdir
        self._tempdir_patched = True
        tempfile.tempdir = str(self.state_dir / "tmp")

    def _restore_process(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._saved_env:
            get_settings.cache_clear()
        self._saved_env = {}
        if self._tempdir_patched:
            tempfile.tempdir = self._saved_tempdir
            self._tempdir_patched = False

    def _patch_env(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _start_api(self) -> None:
        app = (self._app_factory or _default_app_factory())(self.settings)
        # Binding here, not in uvicorn, turns a failure into an exception in this thread (uvicorn would call sys.exit
        # in its own thread) and gives the real port. Any free one: clients reach the API through the front door.
        sock = _bind(0, "--port")
        # Keep idle connections longer than clients pool them between calls (uvicorn's 5 s default closes a pooled
        # connection just as a client reuses it: "Remote end closed connection without response").
        config = uvicorn.Config(
            app,
            host=HOST,
            port=sock.getsockname()[1],
            log_level="warning",
            timeout_graceful_shutdown=5,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="devstack-api", daemon=True)
        self._api, self._api_thread = server, thread
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise DevStackError("the API server did not start; see the log above")
            time.sleep(0.02)
        self._api_endpoint = f"http://{HOST}:{sock.getsockname()[1]}"

    def _start_planes(self) -> None:
        """The data plane (its own process, on this process's environment: the settings the API has) and the front
        door before both, on the image endpoint's port."""
        front_door_socket = _listen(self._api_port, "--port")
        try:
            args = ["--api", self.api_endpoint]
            if self._with_data_plane:
                self._data_plane = ChildProcess("data plane", "devstack.data_plane", _listen(0, "--port"))
                args += ["--data-plane", self._data_plane.url]
        except BaseException:
            front_door_socket.close()
            raise
        self._front_door = ChildProcess("front door", "devstack.front_door", front_door_socket, args)
        try:
            if self._data_plane is not None:
                self._data_plane.wait_ready("/healthcheck")
            self._front_door.wait_ready()
        except ChildStartError as exc:
            raise DevStackError(str(exc)) from exc
        self._endpoint = self._front_door.url

    def _stop_api(self) -> None:
        if self._api is None or self._api_thread is None:
            return
        self._api.should_exit = True
        self._api_thread.join(10)
        if self._api_thread.is_alive():
            log.warning("the API server did not stop within 10 s")
        self._api = self._api_thread = None

    def _write_state_file(self) -> None:
        state = {
            "pid": os.getpid(),
            "endpoint": self.endpoint,
            "api_endpoint": self.api_endpoint,
            "data_plane_endpoint": self.data_plane_endpoint,
            "aws_endpoint": self.aws_endpoint,
            "region": self.settings.aws_region,
            "active_queues": list(self.event_loop.active_queues),
            "idle_queues": list(self.event_loop.idle_queues),
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")


def _env_value(value: Any) -> str:
    secret = getattr(value, "get_secret_value", None)
    return str(secret() if callable(secret) else value)


def _default_app_factory() -> AppFactory:
    module_name, _, attr = API_APP_FACTORY.partition(":")
    try:
        module = importlib.import_module(module_name)
        factory: AppFactory = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise DevStackError(f"the API app {API_APP_FACTORY} cannot be loaded: {exc}") from exc
    return factory


def _bind(port: int, option: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Servers restarted quickly would otherwise wait out TIME_WAIT; the same option http.server uses.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise DevStackError(f"cannot listen on {HOST}:{port} ({exc.strerror}); choose another {option}") from exc
    return sock


def _listen(port: int, option: str) -> socket.socket:
    sock = _bind(port, option)
    sock.listen(128)
    return sock


def _check_port_free(port: int, option: str) -> None:
    # ThreadedMotoServer.start() waits forever if its thread cannot bind, so find out first.
    if port:
        _bind(port, option).close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _require[T](value: T | None, name: str) -> T:
    if value is None:
        raise DevStackError(f"DevStack.{name} is only known after start()")
    return value


def _load_metadefs(settings: Settings) -> None:
    """The definitions we ship, in the catalog from the start (as devstack's Glance runs db_load_metadefs)."""
    from shared.bootstrap import Container
    from shared.metadefs.load import DEFINITIONS, load_directory

    container = Container(settings)
    load_directory(container.metadef_repository, DEFINITIONS)
    container.aws.close()
