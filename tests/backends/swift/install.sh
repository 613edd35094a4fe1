#!/usr/bin/env bash
# Install the Debian (bookworm) packages that tests/backends/swift/start.sh needs: the Swift proxy,
# account, container and object servers (Swift 2.30), python3-swiftclient (the `swift` CLI) and
# memcached (tempauth keeps its tokens there). Does nothing when they are already there, so CI can
# call it on every run. Needs root or sudo for apt-get; starts no service.
set -euo pipefail
PKGS="swift swift-proxy swift-object swift-container swift-account python3-swiftclient memcached"
BINS="swift-proxy-server swift-object-server swift-container-server swift-account-server swift memcached"

have_all() {
  for b in $BINS; do command -v "$b" >/dev/null || return 1; done
  /usr/bin/python3 -c 'import swift.common.ring' 2>/dev/null
}
version() { /usr/bin/python3 -c 'import swift; print(swift.__version__)'; }
if have_all; then
  echo "swift: already installed ($(version))"
  exit 0
fi

. "$(dirname "$0")/../apt.sh"
# shellcheck disable=SC2086 # the package list is words
apt_install SGLANCE_SKIP_SWIFT=1 $PKGS
have_all || { echo "install.sh: packages installed but a binary is still missing" >&2; exit 1; }
echo "swift: installed ($(version))"
