"""Outbound HTTP on behalf of users: the URL policy every fetch of a user-supplied URL goes through."""
