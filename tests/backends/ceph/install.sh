#!/usr/bin/env bash
# Install the Debian (bookworm) packages that tests/backends/ceph/start.sh needs:
# a monitor, an OSD, the RADOS Gateway, the admin tools and the rados/rbd Python bindings (Ceph 16.2, Pacific).
# Does nothing when they are already there, so CI can call it on every run.
# Needs root or sudo for apt-get; starts no service.
set -euo pipefail
PKGS="ceph-mon ceph-osd radosgw ceph-common python3-rados python3-rbd"
BINS="ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool"

have_all() {
  for b in $BINS; do command -v "$b" >/dev/null || return 1; done
  /usr/bin/python3 -c 'import rados, rbd' 2>/dev/null  # the bindings the rbd store's tests load
}
if have_all; then
  echo "ceph: already installed ($(ceph-osd --version | cut -d' ' -f1-3))"
  exit 0
fi

. "$(dirname "$0")/../apt.sh"
# shellcheck disable=SC2086 # the package list is words
apt_install SGLANCE_SKIP_RGW=1 $PKGS
have_all || { echo "install.sh: packages installed but a binary is still missing" >&2; exit 1; }
echo "ceph: installed ($(ceph-osd --version | cut -d' ' -f1-3))"
