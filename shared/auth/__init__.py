"""Authentication: turning request headers into a ``RequestContext``."""
