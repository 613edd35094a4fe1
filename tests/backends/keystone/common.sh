# Sourced by install.sh and start.sh: where Keystone's own virtualenv lives.
# Keystone pins oslo/SQLAlchemy/Flask versions that clash with the service's (and moto's), so it never shares
# the project's .venv. A changed constraints.txt makes install.sh rebuild it.
KEYSTONE_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEYSTONE_CONSTRAINTS=$KEYSTONE_HERE/constraints.txt
KEYSTONE_VENV=${SGLANCE_KEYSTONE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sglance/keystone-venv}
# what install.sh installs (versions come from constraints.txt)
KEYSTONE_PACKAGES="keystone gunicorn python-memcached"
# the stamp holds the checksum of the constraints the venv was built from
KEYSTONE_STAMP=$KEYSTONE_VENV/.sglance-installed
keystone_wanted_stamp() { sha256sum "$KEYSTONE_CONSTRAINTS" | cut -d' ' -f1; }
keystone_installed() {
  [ -x "$KEYSTONE_VENV/bin/gunicorn" ] && [ -x "$KEYSTONE_VENV/bin/keystone-manage" ] &&
    [ "$(cat "$KEYSTONE_STAMP" 2>/dev/null)" = "$(keystone_wanted_stamp)" ]
}
