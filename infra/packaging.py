"""Lambda code built without Docker: the dependencies as a layer, the project's code as the function package.

``pip install --platform manylinux_2_34_<arch> --platform manylinux_2_28_<arch> --platform manylinux2014_<arch>
--implementation cp --python-version 3.13 --only-binary=:all: --target`` fetches the wheels the Lambda runtime can
load (cp313, built for the glibc 2.34 of the python3.13 runtime's Amazon Linux 2023 or an older one), whatever the
machine running ``cdk`` is; no build ever runs, so no compiler or container is needed. The dependencies are those
of ``[project.dependencies]`` in pyproject.toml (never the dev extras), installed once per (requirements,
architecture) into ``.build/lambda/`` and reused by later syntheses.
The function package holds ``functions/``, ``shared/`` and the operator's policy files under ``config/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_DIR = REPO_ROOT / ".build" / "lambda"
# The runtime the code is tested on (pyproject: requires-python >=3.13,<3.14; infra/stacks/function.py RUNTIME).
PYTHON_VERSION = "3.13"
SOURCE_PACKAGES = ("functions", "shared")
# Where the operator's policy files land inside the function package (Lambda's working directory is its root).
CONFIG_DIR = "config"
# Wheel platforms the python3.13 runtime loads, newest first: Amazon Linux 2023 has glibc 2.34, and several
# dependencies (cryptography among them) publish their newest aarch64 wheels only for manylinux_2_28 or later.
_GLIBC_PLATFORMS = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
_MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}

Architecture = Literal["arm64", "x86_64"]


class PackagingError(RuntimeError):
    """pip could not install the dependencies for the Lambda platform."""


@dataclass(frozen=True)
class LambdaPackage:
    """Folders ready for ``Code.from_asset``: the layer (``python/...``) and the function code."""

    layer_dir: Path
    code_dir: Path


def runtime_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> tuple[str, ...]:
    """The functions' dependencies: ``[project.dependencies]``, without any extra."""
    with pyproject.open("rb") as handle:
        return tuple(tomllib.load(handle)["project"]["dependencies"])


def wheel_platforms(architecture: Architecture) -> tuple[str, ...]:
    """The ``--platform`` tags of the layer's wheels for ``architecture``, newest glibc first."""
    return tuple(f"{glibc}_{_MACHINES[architecture]}" for glibc in _GLIBC_PLATFORMS)


def build_package(
    architecture: Architecture,
    *,
    build_dir: Path = DEFAULT_BUILD_DIR,
    policy_files: dict[str, Path] | None = None,
) -> LambdaPackage:
    """Build (or reuse) the dependency layer for ``architecture`` and copy the code; returns both folders.

    Args:
        architecture: the functions' architecture; wheels are chosen for it.
        build_dir: where layers are cached and the code folder is written.
        policy_files: file name inside ``config/`` -> local file to ship there.

    Raises:
        PackagingError: pip failed (its output is in the message).
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    layer_dir = _dependency_layer(architecture, runtime_requirements(), build_dir)
    code_dir = build_dir / f"code-{architecture}"
    _copy_code(code_dir, policy_files or {})
    return LambdaPackage(layer_dir=layer_dir, code_dir=code_dir)


def _dependency_layer(architecture: Architecture, requirements: tuple[str, ...], build_dir: Path) -> Path:
    platforms = wheel_platforms(architecture)
    key = hashlib.sha256(json.dumps([platforms, PYTHON_VERSION, sorted(requirements)]).encode()).hexdigest()[:16]
    layer_dir = build_dir / f"layer-{architecture}-{key}"
    if (layer_dir / "python").is_dir():
        return layer_dir
    staging = Path(tempfile.mkdtemp(prefix=f".layer-{architecture}-", dir=build_dir))
    # mkdtemp makes it 0700; zipped as is, the Lambda sandbox user could not read the layer.
    staging.chmod(0o755)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(staging / "python"),
        *(option for platform in platforms for option in ("--platform", platform)),
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        *requirements,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env={**os.environ, "PIP_NO_INPUT": "1"})
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackagingError(f"pip could not install the Lambda dependencies:\n{done.stdout}\n{done.stderr}")
    # Console scripts are useless in a layer and name the build machine's interpreter.
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
    try:
        staging.rename(layer_dir)
    except OSError:
        # Another synthesis finished the same layer first; theirs is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
    return layer_dir


def _copy_code(code_dir: Path, policy_files: dict[str, Path]) -> None:
    if code_dir.exists():
        shutil.rmtree(code_dir)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")
    for package in SOURCE_PACKAGES:
        shutil.copytree(REPO_ROOT / package, code_dir / package, ignore=ignore)
    if policy_files:
        (code_dir / CONFIG_DIR).mkdir()
        for name, source in policy_files.items():
            shutil.copyfile(source, code_dir / CONFIG_DIR / name)
