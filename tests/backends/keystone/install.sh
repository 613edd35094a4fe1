#!/usr/bin/env bash
# Install what tests/backends/keystone/start.sh needs:
#   * Keystone 30 and gunicorn (its WSGI server) in Keystone's own virtualenv, pinned by constraints.txt
#     (default ~/.cache/sglance/keystone-venv; SGLANCE_KEYSTONE_VENV overrides; SGLANCE_KEYSTONE_PYTHON picks
#     the interpreter, python3 by default);
#   * memcached from Debian, Keystone's cache (a token validation takes ~1 s without it, ~20 ms with it).
# Does nothing when both are there and the venv matches constraints.txt, so CI can call it on every run.
# RECREATE=1 rebuilds the venv; UPDATE_CONSTRAINTS=1 installs the newest releases and rewrites constraints.txt.
# apt-get needs root or password-less sudo. Starts no service.
set -euo pipefail
source "$(dirname "$0")/common.sh"
T0=$(date +%s%N)
took() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }

if [ "${RECREATE:-0}" != 1 ] && [ "${UPDATE_CONSTRAINTS:-0}" != 1 ] && keystone_installed && command -v memcached >/dev/null; then
  echo "keystone: already installed in $KEYSTONE_VENV ($(took))"
  exit 0
fi

if ! command -v memcached >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install.sh: need root or sudo to apt-get install memcached (or set SGLANCE_SKIP_KEYSTONE=1)" >&2; exit 1; }
    SUDO="sudo -n"  # never wait for a password prompt nobody sees
  fi
  # Debian starts a packaged daemon on install unless policy-rc.d says no; start.sh runs its own on a free port
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    $SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  APT="$SUDO apt-get -q -o DPkg::Lock::Timeout=300"
  { $APT update >/dev/null && $APT install -y --no-install-recommends memcached >/dev/null; } || apt_failed=1
  [ "$made_policy" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
  [ -z "${apt_failed:-}" ] && command -v memcached >/dev/null || { echo "install.sh: apt-get install memcached failed" >&2; exit 1; }
  echo "memcached: installed ($(memcached -V)) after $(took)"
fi

PYTHON=${SGLANCE_KEYSTONE_PYTHON:-python3}
if [ "${RECREATE:-0}" = 1 ] || [ "${UPDATE_CONSTRAINTS:-0}" = 1 ] || ! keystone_installed; then
  rm -rf "$KEYSTONE_VENV"
fi
mkdir -p "$(dirname "$KEYSTONE_VENV")"
"$PYTHON" -m venv "$KEYSTONE_VENV"
PIP=("$KEYSTONE_VENV/bin/pip" --disable-pip-version-check)
LOG=$KEYSTONE_VENV/install.log
pip_or_die() {
  "${PIP[@]}" "$@" >>"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; echo "install.sh: pip $* failed (log: $LOG)" >&2; exit 1; }
}
# shellcheck disable=SC2086  # word splitting of the package list is intended
if [ "${UPDATE_CONSTRAINTS:-0}" = 1 ]; then
  pip_or_die install -q $KEYSTONE_PACKAGES
  {
    echo "# Keystone's own virtualenv (tests/backends/keystone/install.sh): pip freeze of $KEYSTONE_PACKAGES"
    echo "# on $("$KEYSTONE_VENV/bin/python" --version), $(date -u +%Y-%m-%d). UPDATE_CONSTRAINTS=1 install.sh rewrites it."
    "${PIP[@]}" freeze --all | grep -v -E '^(pip|setuptools|wheel)=='
  } > "$KEYSTONE_CONSTRAINTS.new"
  mv "$KEYSTONE_CONSTRAINTS.new" "$KEYSTONE_CONSTRAINTS"
  echo "install.sh: rewrote $KEYSTONE_CONSTRAINTS"
else
  pip_or_die install -q -c "$KEYSTONE_CONSTRAINTS" $KEYSTONE_PACKAGES
fi
pip_or_die check
keystone_wanted_stamp > "$KEYSTONE_STAMP"
keystone_installed || { echo "install.sh: installed, but gunicorn or keystone-manage is missing" >&2; exit 1; }
echo "keystone: installed $("$KEYSTONE_VENV/bin/python" -c 'from importlib.metadata import version as v; print("keystone", v("keystone"), "gunicorn", v("gunicorn"))') in $KEYSTONE_VENV after $(took)"
