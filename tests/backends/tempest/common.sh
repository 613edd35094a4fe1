# Sourced by install.sh: where Tempest's own virtualenv lives (Tempest 47 and glance-tempest-plugin pin oslo and
# keystoneauth versions of their own, so they never share the project's .venv). A changed constraints.txt rebuilds it.
TEMPEST_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPEST_CONSTRAINTS=$TEMPEST_HERE/constraints.txt
TEMPEST_VENV=${SGLANCE_TEMPEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sglance/tempest-venv}
TEMPEST_PACKAGES="tempest glance-tempest-plugin"
TEMPEST_STAMP=$TEMPEST_VENV/.sglance-installed
tempest_wanted_stamp() { sha256sum "$TEMPEST_CONSTRAINTS" | cut -d' ' -f1; }
tempest_installed() {
  [ -x "$TEMPEST_VENV/bin/tempest" ] && [ -x "$TEMPEST_VENV/bin/stestr" ] &&
    [ "$(cat "$TEMPEST_STAMP" 2>/dev/null)" = "$(tempest_wanted_stamp)" ]
}
