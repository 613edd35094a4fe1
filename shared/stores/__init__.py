"""Where image bytes live: the upload bucket and the store drivers (Glance's glance_store).

The interface and what every driver shares:
    base.py                 StoreDriver, the template (add/get/get_size/delete/owns/presign_get), its results and
                            StoreCapabilities, the data a driver declares instead of being probed
    errors.py               the StoreError tree, and HTTP statuses mapped onto it
    sized_source.py         the bytes of one add: exact size, hashed once, file-like windows for request bodies
    credentials.py          inline or Secrets Manager credentials, read on first use
    config.py               how operators describe stores (SGLANCE_STORES)
    registry.py             store type -> driver class (imported on first use), and the StoreSet of a deployment

S3 (one adapter for the upload bucket, shared/upload_bucket/s3.py, and both S3 drivers):
    s3_objects.py           S3Objects: the boto3 client, streaming PUTs and GETs, multipart
    s3_errors.py            botocore's exceptions and S3's error codes as store errors
    s3_store.py             S3Store, the s3 driver
    ceph.py                 CephStore, the ceph driver (RGW's S3 API)

The other drivers:
    swift.py                SwiftStore (plain objects and Static Large Objects)
    swift_connections.py    its per-thread swiftclient connections, Keystone session and error table
    file.py                 FileStore (a directory)
    rbd.py                  RbdStore (RBD images with a protected snapshot)
    rbd_bindings.py         loading librados/librbd's Python bindings

Digest and format inspection are below all of these, in ``shared.streams``.
"""
