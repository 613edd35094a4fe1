"""The Ceph bindings (librados/librbd through Debian's python3-rbd), imported on first use, never at import.

Where ``rados`` and ``rbd`` are not importable (a virtualenv beside Debian's python3-rbd), ``load_bindings`` loads
the two extension modules, and only them, from ``bindings_dir`` (default: Debian's ``/usr/lib/python3/dist-packages``);
in Lambda a layer puts them on the path (docs/stores.md).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from types import ModuleType

from shared.stores.errors import StoreConfigError

# Where Debian's python3-rbd / python3-rados put their extension modules.
DEBIAN_BINDINGS_DIR = "/usr/lib/python3/dist-packages"

_load_lock = threading.Lock()


def _load_extension(name: str, directory: str) -> ModuleType:
    """The extension module ``name`` from ``directory`` (built for this interpreter), registered in sys.modules."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(directory, name + suffix)
        if os.path.isfile(path):
            break
    else:
        raise ImportError(f"no {name} extension module for this Python in {directory}")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_bindings(directory: str | None = None) -> tuple[ModuleType, ModuleType]:
    """The ``rados`` and ``rbd`` modules: imported as usual, else loaded from ``directory`` (default Debian's).

    Only the two extension modules are loaded from there (by file path); nothing is added to ``sys.path``, so the
    rest of that directory cannot shadow this interpreter's packages.

    Raises:
        StoreConfigError: they are neither importable nor in ``directory``, or librados/librbd cannot be loaded.
    """
    with _load_lock:
        modules: list[ModuleType] = []
        for name in ("rados", "rbd"):  # rados first: rbd imports it
            try:
                modules.append(importlib.import_module(name))
                continue
            except ImportError:
                pass
            where = directory or DEBIAN_BINDINGS_DIR
            try:
                modules.append(_load_extension(name, where))
            except (ImportError, OSError) as exc:
                raise StoreConfigError(
                    f"the Ceph bindings are missing: cannot import {name} ({exc}); install Debian's python3-rbd "
                    "(python3-rados, librbd1) or give the store a bindings_dir holding rados and rbd built for "
                    f"Python {sys.version_info.major}.{sys.version_info.minor}"
                ) from exc
        return modules[0], modules[1]
