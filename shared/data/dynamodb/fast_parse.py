"""A faster response parser for the DynamoDB client: item reads keep DynamoDB's own JSON as it arrives.

botocore walks every response against the service model (a recursive call per attribute value) only to turn
blobs into bytes and timestamps into datetimes. The outputs of the reads below carry no timestamp, and their only
blobs are ``B``/``BS`` attribute values, which the images table never stores. For them, ``json.loads`` already
gives what botocore would: the walk was a fifth of an image list's server CPU (benchmarks/, rps).

A body that holds a ``B`` or ``BS`` key anywhere, an error, or any other operation goes through botocore's parser
unchanged, so the result is never different from botocore's.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.parsers import PROTOCOL_PARSERS, JSONParser, ResponseParserFactory

# Output shapes whose members have no timestamp, and whose blobs can only be B/BS attribute values.
_ITEM_READS = frozenset({"GetItemOutput", "QueryOutput", "ScanOutput", "BatchGetItemOutput", "TransactGetItemsOutput"})
_BLOB_KEY = re.compile(rb'"BS?"\s*:')


class _ItemReadParser(JSONParser):  # type: ignore[misc]  # botocore ships no type hints
    """botocore's JSON parser, minus the model walk for item reads without binary values."""

    def _handle_json_body(self, raw_body: Any, shape: Any) -> Any:
        if shape is not None and shape.name in _ITEM_READS and not _BLOB_KEY.search(raw_body or b""):
            return self._parse_body_as_json(raw_body)
        return super()._handle_json_body(raw_body, shape)


class _Factory(ResponseParserFactory):  # type: ignore[misc]
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _ItemReadParser(**self._defaults)
        return PROTOCOL_PARSERS[protocol_name](**self._defaults)


def use_fast_item_reads(client: Any) -> Any:
    """Give a botocore DynamoDB ``client`` the item-read parser (its endpoint makes one parser per response);
    returns the client."""
    endpoint = client._endpoint
    factory = _Factory()
    factory._defaults = dict(endpoint._response_parser_factory._defaults)
    endpoint._response_parser_factory = factory
    return client
