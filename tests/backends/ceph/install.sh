#!/usr/bin/env bash
# Install the Debian (bookworm) packages that tests/backends/ceph/start.sh needs:
# a monitor, an OSD, the RADOS Gateway and the admin tools (Ceph 16.2, Pacific).
# Does nothing when they are already there, so CI can call it on every run.
# Needs root or sudo for apt-get; starts no service.
set -euo pipefail
PKGS="ceph-mon ceph-osd radosgw ceph-common"
BINS="ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool"

have_all() {
  for b in $BINS; do command -v "$b" >/dev/null || return 1; done
}
if have_all; then
  echo "ceph: already installed ($(ceph-osd --version | cut -d' ' -f1-3))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install.sh: need root or sudo to apt-get install $PKGS (or set SGLANCE_SKIP_RGW=1)" >&2; exit 1; }
  SUDO="sudo -n"  # never wait for a password prompt nobody sees
fi
export DEBIAN_FRONTEND=noninteractive
# another apt run (a second session, unattended upgrades) may hold the lock for a while
APT="$SUDO apt-get -q -o DPkg::Lock::Timeout=300"
# stale lists can name versions the mirror no longer serves
$APT update >/dev/null
$APT install -y --no-install-recommends $PKGS >/dev/null
have_all || { echo "install.sh: packages installed but a binary is still missing" >&2; exit 1; }
echo "ceph: installed ($(ceph-osd --version | cut -d' ' -f1-3))"
