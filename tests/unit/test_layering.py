"""The direction of imports (STYLE.md): functions -> shared, never back; the domain imports no adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_PACKAGES = ("functions.api", "functions.upload_complete", "functions.store_sync")


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


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, path in _modules(package).items()
        for name in _imports(module, path)
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    )


def test_import_walker__sees_absolute_relative_and_lazy_imports(tmp_path: Path) -> None:
    source = "import os.path\nfrom . import sibling\nfrom ..data import base\ndef f():\n    import boto3\n"
    path = tmp_path / "mod.py"
    path.write_text(source)

    found = _imports("shared.domain.mod", path)

    assert {"os.path", "shared.domain.sibling", "shared.data.base", "boto3"} <= found


def test_every_package__has_modules_to_check() -> None:
    assert len(_modules("shared")) > 5
    assert len(_modules("shared.domain")) >= 4
    assert all(_modules(p) for p in FUNCTION_PACKAGES)


def test_shared__never_imports_functions_or_devstack() -> None:
    assert _violations("shared", ("functions", "devstack", "infra", "tests")) == []


def test_shared_domain__imports_no_adapter_or_framework() -> None:
    forbidden = (
        "shared.data",
        "shared.auth",
        "boto3",
        "botocore",
        "pynamodb",
        "pydantic",
        "pydantic_settings",
        "fastapi",
        "starlette",
        "mangum",
    )

    assert _violations("shared.domain", forbidden) == []


@pytest.mark.parametrize("package", FUNCTION_PACKAGES)
def test_function_package__never_imports_another_function_package(package: str) -> None:
    others = tuple(p for p in FUNCTION_PACKAGES if p != package)

    assert _violations(package, others) == []


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
