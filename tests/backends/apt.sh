# Sourced by the backends' install.sh: apt_install SKIP_HINT PACKAGE...
# Installs Debian packages with root or password-less sudo (never waiting for a prompt), after a fresh
# `apt-get update` (stale lists can name versions the mirror no longer serves), waiting for another apt run's
# lock. No service starts: there is no systemd here, and policy-rc.d (where present) forbids it.
apt_install() {
  local hint=$1
  shift
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install.sh: need root or sudo to apt-get install $* (or set $hint)" >&2; return 1; }
    sudo="sudo -n"
  fi
  export DEBIAN_FRONTEND=noninteractive
  local apt="$sudo apt-get -q -o DPkg::Lock::Timeout=300"
  $apt update >/dev/null
  $apt install -y --no-install-recommends "$@" >/dev/null
}
