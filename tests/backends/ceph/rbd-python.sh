#!/usr/bin/env bash
# The interpreter the RBD store's tests run on where the project's own cannot load Ceph's Python bindings.
#
# Debian's python3-rados/python3-rbd are extension modules built for the distribution's Python (Debian 12:
# rados.cpython-311-<arch>-linux-gnu.so, Python 3.11). The project runs on Python 3.13, which cannot load them, so
# tests/support/rbd.py runs the tests that need the cluster in a child pytest on the interpreter they were built
# for and reports each one's result as its own. This makes that child's virtualenv: Debian's /usr/bin/python3.X
# with the project's runtime dependencies ([project.dependencies]) and pytest (no project install: pyproject's
# requires-python names 3.13; the child imports the code from the checkout).
#
# Usage: rbd-python.sh [VENV]   (default: .venv-rbd in the repository). Prints the venv's python on stdout.
# Does nothing when the venv was built from the same pyproject.toml; RECREATE=1 rebuilds it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
VENV=${1:-$ROOT/.venv-rbd}
BINDINGS=${SGLANCE_RBD_BINDINGS_DIR:-/usr/lib/python3/dist-packages}

so=$(compgen -G "$BINDINGS/rados.cpython-3*-linux-gnu.so" | head -n 1 || true)
if [ -z "$so" ]; then
  echo "rbd-python.sh: no rados extension module in $BINDINGS; run tests/backends/ceph/install.sh (python3-rados, python3-rbd)" >&2
  exit 1
fi
minor=$(basename "$so" | sed -E 's/^rados\.cpython-3([0-9]+)-.*$/\1/')
PY=/usr/bin/python3.$minor
[ -x "$PY" ] || { echo "rbd-python.sh: $so is built for Python 3.$minor, but $PY is missing" >&2; exit 1; }

STAMP=$VENV/.sglance-rbd-installed
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) $("$PY" -V 2>&1)"
if [ "${RECREATE:-0}" != 1 ] && [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
  echo "$VENV/bin/python"
  exit 0
fi

rm -rf "$VENV"
if ! "$PY" -m venv "$VENV" 2>/dev/null; then
  # Debian ships ensurepip for its Python separately
  . "$HERE/../apt.sh"
  apt_install SGLANCE_SKIP_RGW=1 "python3.$minor-venv"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi
LOG=$VENV/install.log
# the runtime dependencies as the Lambda layer gets them, and the test runner the project pins
"$PY" - "$ROOT/pyproject.toml" > "$VENV/requirements.txt" <<'PYEOF'
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)["project"]
runner = [r for r in project["optional-dependencies"]["dev"] if re.match(r"pytest(-timeout)?\b", r)]
print("\n".join([*project["dependencies"], *runner]))
PYEOF
if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r "$VENV/requirements.txt" >"$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2
  echo "rbd-python.sh: pip install failed (log: $LOG)" >&2
  exit 1
fi
echo "$want" > "$STAMP"
echo "rbd-python.sh: $("$VENV/bin/python" -V) in $VENV for the bindings in $so" >&2
echo "$VENV/bin/python"
