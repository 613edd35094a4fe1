#!/usr/bin/env bash
# Install Tempest 47 and glance-tempest-plugin, pinned by constraints.txt, in their own virtualenv
# (~/.cache/sglance/tempest-venv, or SGLANCE_TEMPEST_VENV; SGLANCE_TEMPEST_PYTHON picks the interpreter, python3
# by default). Does nothing when the venv matches constraints.txt. RECREATE=1 rebuilds it. Starts nothing.
set -euo pipefail
source "$(dirname "$0")/common.sh"
T0=$(date +%s)
if [ "${RECREATE:-0}" != 1 ] && tempest_installed; then
  echo "tempest: already installed in $TEMPEST_VENV"
  exit 0
fi
PYTHON=${SGLANCE_TEMPEST_PYTHON:-python3}
rm -rf "$TEMPEST_VENV"
"$PYTHON" -m venv "$TEMPEST_VENV"
"$TEMPEST_VENV/bin/pip" --disable-pip-version-check install -q -c "$TEMPEST_CONSTRAINTS" $TEMPEST_PACKAGES
tempest_wanted_stamp > "$TEMPEST_STAMP"
echo "tempest: installed $("$TEMPEST_VENV/bin/tempest" --version 2>&1 | tail -1) in $TEMPEST_VENV after $(( $(date +%s) - T0 )) s"
