"""``python -m functions.data_plane``: the container's entry point."""

from functions.data_plane.server import serve

serve()
