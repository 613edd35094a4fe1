"""Run a Swift server script with swift.conf read from SWIFT_DIR instead of /etc/swift.

    python3 swift_exec.py SWIFT_DIR /usr/bin/swift-proxy-server CONF [args...]

Swift takes its hash path prefix/suffix and storage policies from /etc/swift/swift.conf unless
``set_swift_dir()`` is called first, and Debian's Swift 2.30 servers never call it, whatever ``swift_dir``
their configuration names. Calling it here, before the real script runs, makes every process of a run use
that run's swift.conf and nothing under /etc/swift (Debian's package ships one with placeholder hashes).
"""

import runpy
import sys

from swift.common.utils import set_swift_dir

swift_dir, script = sys.argv[1], sys.argv[2]
set_swift_dir(swift_dir)
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
