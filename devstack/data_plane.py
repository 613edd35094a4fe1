"""``python -m devstack.data_plane --fd N``: the data plane (functions/data_plane) as the local stack's own process.

The same server as the container's, on the socket the stack bound; settings from the environment the stack set.
"""

from __future__ import annotations

import argparse

from devstack.processes import exit_with_parent, listening_socket
from functions.data_plane.server import serve


def main(argv: list[str] | None = None) -> None:
    """Serve the data plane on the inherited socket until SIGTERM (or the stack's exit)."""
    parser = argparse.ArgumentParser(prog="python -m devstack.data_plane")
    parser.add_argument("--fd", type=int, required=True, help="listening socket inherited from the stack")
    parser.add_argument("--parent-pid", type=int, required=True, help="exit when this process is gone")
    args = parser.parse_args(argv)
    exit_with_parent(args.parent_pid)
    serve(sockets=[listening_socket(args.fd)])


if __name__ == "__main__":
    main()
