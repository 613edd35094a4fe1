"""Which requests the front door sends to the data plane: the one routing rule, shared by every front door.

The deployed front door (infra) and the local one (devstack/front_door.py) both route by path only, with the path
patterns below in the syntax CloudFront cache behaviours and ALB listener rules share: ``*`` matches any run of
characters (``/`` included), ``?`` one character, case-sensitive, query string ignored. Neither can route on the
method, so every method of these paths goes to the data plane, which answers the ones it does not serve (405 with
``Allow``) as the API does.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

# /v2/... and the versioned prefixes /v2.N/... (Glance's version negotiation), for PUT and GET /file and PUT /stage.
DATA_PATH_PATTERNS: tuple[str, ...] = ("/v2*/images/*/file", "/v2*/images/*/stage")


def is_data_route(path: str) -> bool:
    """Whether the front door sends a request for ``path`` (with or without its query string) to the data plane."""
    path = path.split("?", 1)[0]
    return any(fnmatchcase(path, pattern) for pattern in DATA_PATH_PATTERNS)
