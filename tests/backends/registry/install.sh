#!/usr/bin/env bash
# Install the Debian (bookworm) packages tests/infra/test_image.py pushes the data plane's image with: the
# distribution project's OCI registry server (`docker-registry`, run on loopback by the test, no Docker engine) and
# skopeo (an independent client that reads the pushed image back and checks its digests). Does nothing when they are
# already there, so CI can call it on every run. Needs root or sudo for apt-get; starts no service (the Debian
# package's own systemd unit is not started in a container without systemd, and the test never uses it).
set -euo pipefail
PKGS="docker-registry skopeo"
BINS="docker-registry skopeo"

have_all() {
  for b in $BINS; do command -v "$b" >/dev/null || return 1; done
}
if have_all; then
  echo "registry: already installed ($(skopeo --version))"
  exit 0
fi

. "$(dirname "$0")/../apt.sh"
# shellcheck disable=SC2086 # the package list is words
apt_install SGLANCE_SKIP_REGISTRY=1 $PKGS
have_all || { echo "install.sh: packages installed but a binary is still missing" >&2; exit 1; }
echo "registry: installed ($(skopeo --version))"
