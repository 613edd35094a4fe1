# Sourced by install.sh and start.sh: where the test Glance's virtualenv lives and how to tell it is current.
# Glance pins oslo, SQLAlchemy and glance_store versions of its own, so it gets a virtualenv of its own too (beside
# Keystone's, never the project's .venv). A changed constraints.txt makes install.sh rebuild it.
GLANCE_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GLANCE_CONSTRAINTS=$GLANCE_HERE/constraints.txt
GLANCE_VENV=${SGLANCE_GLANCE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sglance/glance-venv}
# what install.sh installs (versions from constraints.txt)
GLANCE_PACKAGES="glance gunicorn python-memcached"
GLANCE_STAMP=$GLANCE_VENV/.sglance-installed
glance_wanted_stamp() { sha256sum "$GLANCE_CONSTRAINTS" | cut -d' ' -f1; }
glance_installed() {
  [ -x "$GLANCE_VENV/bin/gunicorn" ] && [ -x "$GLANCE_VENV/bin/glance-manage" ] &&
    [ "$(cat "$GLANCE_STAMP" 2>/dev/null)" = "$(glance_wanted_stamp)" ]
}
