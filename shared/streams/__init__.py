"""Streams of image bytes, below both the store drivers and the services that use them.

``digest``: one pass over the bytes (size, md5, the secure hash, and an optional inspector fed the same chunks);
``inspection``: Glance's format checks, which judge the bytes and return an ``Inspection`` verdict; ``blocks``:
a chunk stream re-cut into fixed-size blocks (S3 parts, RBD writes). Nothing here imports an adapter or a service.
"""
