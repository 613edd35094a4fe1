#!/usr/bin/env bash
# Install qemu-img (Debian's qemu-utils), the oracle of tests/unit/test_format_confusion.py: every payload of the
# format-confusion corpus is shown to `qemu-img info`. Does nothing when qemu-img is there, so CI can call it on
# every run. Needs root or sudo for apt-get; SGLANCE_SKIP_QEMU=1 skips it (the tests then skip, saying why).
set -euo pipefail
if command -v qemu-img >/dev/null; then
  echo "qemu-img: already installed ($(qemu-img --version | head -1))"
  exit 0
fi
. "$(dirname "$0")/../apt.sh"
apt_install SGLANCE_SKIP_QEMU=1 qemu-utils
command -v qemu-img >/dev/null || { echo "install.sh: qemu-utils installed but qemu-img is missing" >&2; exit 1; }
echo "qemu-img: installed ($(qemu-img --version | head -1))"
