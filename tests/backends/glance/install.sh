#!/usr/bin/env bash
# Install what start.sh needs: Glance 33 and gunicorn in the test Glance's own virtualenv, pinned by constraints.txt
# (default ~/.cache/sglance/glance-venv; SGLANCE_GLANCE_VENV overrides it, SGLANCE_GLANCE_PYTHON picks the
# interpreter, python3 by default). Nothing from apt: Glance's file store needs no system package, and the
# Keystone it authenticates against is tests/backends/keystone's.
# A no-op when the venv matches constraints.txt, so `make backends` runs it every time.
# RECREATE=1 rebuilds the venv; UPDATE_CONSTRAINTS=1 installs the newest releases and rewrites constraints.txt.
set -euo pipefail
source "$(dirname "$0")/common.sh"
T0=$(date +%s%N)
took() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }

if [ "${RECREATE:-0}" != 1 ] && [ "${UPDATE_CONSTRAINTS:-0}" != 1 ] && glance_installed; then
  echo "glance: already installed in $GLANCE_VENV ($(took))"
  exit 0
fi

rm -rf "$GLANCE_VENV"
mkdir -p "$(dirname "$GLANCE_VENV")"
"${SGLANCE_GLANCE_PYTHON:-python3}" -m venv "$GLANCE_VENV"
LOG=$GLANCE_VENV/install.log
pip_or_die() {
  "$GLANCE_VENV/bin/pip" --disable-pip-version-check "$@" >>"$LOG" 2>&1 ||
    { tail -n 30 "$LOG" >&2; echo "install.sh: pip $* failed (log: $LOG)" >&2; exit 1; }
}
# shellcheck disable=SC2086  # the package list is split on purpose
if [ "${UPDATE_CONSTRAINTS:-0}" = 1 ]; then
  pip_or_die install -q $GLANCE_PACKAGES
  {
    echo "# Glance's own virtualenv (tests/backends/glance/install.sh): pip freeze of glance + gunicorn +"
    echo "# python-memcached on $("$GLANCE_VENV/bin/python" --version), $(date -u +%Y-%m-%d). UPDATE_CONSTRAINTS=1 install.sh rewrites it."
    "$GLANCE_VENV/bin/pip" freeze --all | grep -v -E '^(pip|setuptools|wheel)=='
  } > "$GLANCE_CONSTRAINTS.new"
  mv "$GLANCE_CONSTRAINTS.new" "$GLANCE_CONSTRAINTS"
  echo "install.sh: rewrote $GLANCE_CONSTRAINTS"
else
  pip_or_die install -q -c "$GLANCE_CONSTRAINTS" $GLANCE_PACKAGES
fi
pip_or_die check
glance_wanted_stamp > "$GLANCE_STAMP"
glance_installed || { echo "install.sh: installed, but gunicorn or glance-manage is missing" >&2; exit 1; }
echo "glance: installed $("$GLANCE_VENV/bin/python" -c 'from importlib.metadata import version as v; print("glance", v("glance"), "glance_store", v("glance_store"))') in $GLANCE_VENV after $(took)"
