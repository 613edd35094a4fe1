"""The layers (docs/architecture.md), held by walking every import (lazy and TYPE_CHECKING ones included):

functions -> shared, never back, and functions never import each other; routers -> controllers -> services ->
domain and adapters; the domain imports nothing of the service; adapters import no service; services import no
web framework; controllers reach adapters only through services; and no module imports itself through others
(no import circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_PACKAGES = ("functions.api", "functions.upload_complete", "functions.store_sync", "functions.import_worker")
# The data plane serves the API's own data routes (one code path), so it imports the API's app, and nothing else of
# the functions; no function imports it.
DATA_PLANE = "functions.data_plane"
# What the service talks to the outside world through (each is its own box; services and the composition root
# wire them).
ADAPTERS = (
    "shared.data",
    "shared.stores",
    "shared.queues",
    "shared.net",
    "shared.secrets",
    "shared.auth",
    "shared.notifications",
    "shared.quota",
    "shared.upload_bucket",
)
SDKS = ("boto3", "botocore", "pynamodb", "swiftclient")
WEB = ("fastapi", "starlette", "mangum", "uvicorn")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> dict[str, Path]:
    folder = ROOT.joinpath(*package.split("."))
    return {_module_name(p): p for p in sorted(folder.rglob("*.py"))}


def _imports(module: str, path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (lazy and TYPE_CHECKING imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def _violations(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    def within(name: str, prefixes: tuple[str, ...]) -> bool:
        return any(name == f or name.startswith(f"{f}.") for f in prefixes)

    return sorted(
        f"{module} imports {name}"
        for module, path in _modules(package).items()
        for name in _imports(module, path)
        if within(name, forbidden) and not within(name, allowed)
    )


def _import_graph(*packages: str) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports (a name resolves to the longest module it starts with)."""
    modules: dict[str, Path] = {}
    for package in packages:
        modules.update(_modules(package))

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name) for name in _imports(module, path)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return sorted(circles)


def test_import_walker__sees_absolute_relative_and_lazy_imports(tmp_path: Path) -> None:
    source = "import os.path\nfrom . import sibling\nfrom ..data import base\ndef f():\n    import boto3\n"
    path = tmp_path / "mod.py"
    path.write_text(source)

    found = _imports("shared.domain.mod", path)

    assert {"os.path", "shared.domain.sibling", "shared.data.base", "boto3"} <= found


def test_every_package__has_modules_to_check() -> None:
    assert len(_modules("shared")) > 5
    assert len(_modules("shared.domain")) >= 4
    assert all(_modules(p) for p in (*FUNCTION_PACKAGES, DATA_PLANE))


def test_shared__never_imports_functions_or_devstack() -> None:
    assert _violations("shared", ("functions", "devstack", "infra", "tests")) == []


def test_shared_domain__imports_only_itself_and_the_standard_library() -> None:
    forbidden = ("shared", *SDKS, *WEB, "pydantic", "pydantic_settings", "aws_lambda_powertools", "oslo_policy")

    assert _violations("shared.domain", forbidden, allowed=("shared.domain",)) == []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapters__import_no_service_nor_the_composition_root(adapter: str) -> None:
    # The recount is an operator's command: its main() builds what it needs from the composition root.
    root = () if adapter == "shared.quota" else ("shared.bootstrap",)

    assert _violations(adapter, ("shared.services", *root, "functions")) == []


def test_services__import_no_web_framework_nor_any_function() -> None:
    assert _violations("shared.services", (*WEB, "functions")) == []


def test_controllers__reach_adapters_only_through_services() -> None:
    assert _violations("functions.api.controllers", (*ADAPTERS, *SDKS)) == []


def test_controllers__never_call_each_other() -> None:
    controllers = _modules("functions.api.controllers")
    # The package's helpers (visible_image, page_limit) and the image factory are shared; controllers are not.
    shared = {"functions.api.controllers", "functions.api.controllers.image_factory"}
    found = [
        f"{module} imports {name}"
        for module, path in controllers.items()
        for name in _imports(module, path)
        if name in controllers and name not in shared and name != module
    ]

    assert found == []


def test_routers__call_controllers_not_services_or_adapters() -> None:
    assert _violations("functions.api.routers", ("shared.services", *ADAPTERS, *SDKS)) == []


def test_import_graph__has_no_circle() -> None:
    circles = _circles(_import_graph("shared", "functions"))

    assert circles == []


def test_circle_finder__finds_a_circle_through_three_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert _circles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", FUNCTION_PACKAGES)
def test_function_package__never_imports_another_function_package(package: str) -> None:
    others = tuple(p for p in (*FUNCTION_PACKAGES, DATA_PLANE) if p != package)

    assert _violations(package, others) == []


def test_data_plane__imports_only_the_api_app_of_the_functions() -> None:
    assert _violations(DATA_PLANE, ("functions",), allowed=(DATA_PLANE, "functions.api.app")) == []


def test_stores_and_streams__import_no_service_repository_or_composition_root() -> None:
    # adapters below the use cases: services use them, never the other way round
    assert _violations("shared.stores", ("shared.services", "shared.data", "shared.bootstrap")) == []
    assert _violations("shared.streams", ("shared.services", "shared.data", "shared.bootstrap", "shared.stores")) == []


def test_stores_and_streams__hold_no_import_cycle() -> None:
    modules = {**_modules("shared.stores"), **_modules("shared.streams")}
    graph = {name: {n for n in _imports(name, path) if n in modules and n != name} for name, path in modules.items()}
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])

    assert cycles == []
