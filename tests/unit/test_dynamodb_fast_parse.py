"""The DynamoDB item-read parser gives exactly what botocore's own parser gives, and is used where it applies."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.parsers import JSONParser

from shared.data.dynamodb.fast_parse import _ItemReadParser, use_fast_item_reads

_ITEM = {
    "pk": {"S": "IMG#1"},
    "sk": {"S": "IMAGE"},
    "size": {"N": "42"},
    "tags": {"SS": ["a", "b"]},
    "protected": {"BOOL": False},
    "gone": {"NULL": True},
    "props": {"M": {"x": {"S": "y"}, "l": {"L": [{"S": "1"}, {"N": "2"}]}}},
    "text": {"S": 'has "B": in it'},
}
_BINARY = {**_ITEM, "blob": {"B": "aGVsbG8="}, "blobs": {"BS": ["aGk="]}}


def _model() -> Any:
    return botocore.session.get_session().get_service_model("dynamodb")


def _response(body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {"status_code": status, "headers": {"x-amzn-requestid": "r-1"}, "body": json.dumps(body).encode()}


BODIES = {
    "GetItem": {"Item": _ITEM, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}},
    "Query": {"Items": [_ITEM, _ITEM], "Count": 2, "ScannedCount": 3, "LastEvaluatedKey": {"pk": {"S": "IMG#1"}}},
    "BatchGetItem": {"Responses": {"t": [_ITEM]}, "UnprocessedKeys": {}},
    "Scan": {"Items": [_BINARY], "Count": 1, "ScannedCount": 1},
    "DescribeTable": {"Table": {"TableName": "t", "CreationDateTime": 1795852800.0, "TableStatus": "ACTIVE"}},
}


@pytest.mark.parametrize("operation", sorted(BODIES))
def test_item_read_parser__on_any_output__returns_what_botocore_returns(operation: str) -> None:
    shape = _model().operation_model(operation).output_shape
    response = _response(BODIES[operation])
    assert _ItemReadParser().parse(dict(response), shape) == JSONParser().parse(dict(response), shape)


def test_item_read_parser__with_binary_values__decodes_them_as_botocore() -> None:
    shape = _model().operation_model("GetItem").output_shape
    parsed = _ItemReadParser().parse(_response({"Item": _BINARY}), shape)
    assert parsed["Item"]["blob"] == {"B": b"hello"}
    assert parsed["Item"]["blobs"] == {"BS": [b"hi"]}


def test_item_read_parser__on_an_error__parses_it_as_botocore() -> None:
    shape = _model().operation_model("GetItem").output_shape
    body = {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "no table"}
    response = _response(body, status=400)
    assert _ItemReadParser().parse(dict(response), shape) == JSONParser().parse(dict(response), shape)


def test_use_fast_item_reads__gives_the_client_the_parser() -> None:
    client = botocore.session.get_session().create_client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    use_fast_item_reads(client)
    assert isinstance(client._endpoint._response_parser_factory.create_parser("json"), _ItemReadParser)
