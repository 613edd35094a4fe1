"""web-download: stream a user-supplied URL into the upload bucket, every hop checked by the URL policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.net.web_fetch import open_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from shared.net.ssrf import UrlPolicy
    from shared.upload_bucket import UploadBucket

MiB = 1024 * 1024


def download_to_bucket(
    url: str,
    policy: UrlPolicy,
    bucket: UploadBucket,
    key: str,
    part_size: int,
    on_chunk: Callable[[bytes], None],
    chunk_size: int = MiB,
) -> int:
    """Fetch ``url`` into ``key`` with constant memory, showing every chunk to ``on_chunk``; returns the bytes written.

    ``on_chunk`` sees each chunk before it is buffered for S3, so raising from it (a size cap) stops the download.
    A failure leaves nothing in the bucket: ``upload_chunks`` writes a small body only once the whole stream was
    read (and its length checked against Content-Length), and aborts a multipart upload on any error.

    Args:
        url: the user's URL; it and every redirect are validated against ``policy``.
        policy: the URL policy.
        bucket: the upload bucket.
        key: the object key (a fresh upload session's; the write is refused if it exists).
        part_size: multipart part size; smaller bodies are one PUT.
        on_chunk: called with every chunk, in order (a ``StreamDigest.feed``).
        chunk_size: bytes per read from the network.

    Returns:
        The number of bytes written.

    Raises:
        UrlNotAllowedError: the URL or a redirect target is refused.
        WebDownloadError: a non-2xx answer, too many redirects, a connection failure, timeout or short body.
        Exception: whatever ``on_chunk`` or the S3 client raises.
    """
    with open_url(url, policy) as response:
        return bucket.upload_chunks(key, _tap(response.iter_content(chunk_size), on_chunk), part_size)


def _tap(chunks: Iterator[bytes], on_chunk: Callable[[bytes], None]) -> Iterator[bytes]:
    for chunk in chunks:
        on_chunk(chunk)
        yield chunk
