"""The edge's view of what DynamoDB can store (shared/domain/limits.py) and the index keys it keeps short."""

from __future__ import annotations

import pytest

from shared.data.list_index import sort_values
from shared.domain.errors import InvalidInputError, LimitExceededError
from shared.domain.image import Image
from shared.domain.limits import (
    DYNAMODB_SORT_KEY_BYTES,
    IMAGE_METADATA_BYTES,
    INDEX_TEXT_BYTES,
    MAX_JSON_DEPTH,
    check_json_value,
    check_metadata_size,
    check_task_input_size,
    index_text,
    utf8_size,
)
from shared.domain.task import Task

WIDE = "\U0001d518"


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth - 1):
        value = [value]
    return value


def test_json__at_the_depth_limit__passes_and_one_deeper__is_400() -> None:
    check_json_value(_nested(MAX_JSON_DEPTH))

    with pytest.raises(InvalidInputError, match="nested more than"):
        check_json_value(_nested(MAX_JSON_DEPTH + 2))


def test_json__far_deeper_than_python_recursion__is_400_not_a_recursion_error() -> None:
    with pytest.raises(InvalidInputError):
        check_json_value(_nested(50_000))


@pytest.mark.parametrize("value", [{"\ud800": "x"}, {"k": ["ok", "\udfff"]}, "a\ud83d"])
def test_json__with_a_lone_surrogate_anywhere__is_400(value: object) -> None:
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        check_json_value(value)


def test_index_text__cuts_wide_text_on_a_character_boundary() -> None:
    cut = index_text(WIDE * 255)

    assert utf8_size(cut) <= INDEX_TEXT_BYTES
    assert cut == WIDE * (INDEX_TEXT_BYTES // 4)
    assert index_text("\u00e9" * 500) == "\u00e9" * (INDEX_TEXT_BYTES // 2)
    assert index_text("short") == "short"


def test_sort_values__of_a_255_character_wide_name__fit_a_sort_key() -> None:
    image = Image.new(owner="p", name=WIDE * 255)

    assert max(utf8_size(v) for v in sort_values(image).values()) <= DYNAMODB_SORT_KEY_BYTES - 100


def test_metadata__over_the_budget__is_413_and_at_it_passes() -> None:
    check_metadata_size(("n",), {"k": "v" * (IMAGE_METADATA_BYTES - 10)}, ())

    with pytest.raises(LimitExceededError, match="more than"):
        check_metadata_size(("n",), {"k": "v" * IMAGE_METADATA_BYTES}, ())


@pytest.mark.parametrize(("name", "value"), [("min_ram", 2**31), ("min_disk", 10**39)])
def test_image__with_an_integer_past_glances_db_bound__is_400(name: str, value: int) -> None:
    with pytest.raises(InvalidInputError, match="out of range"):
        Image.new(owner="p", **{name: value})


def test_image__with_an_empty_property_name__is_400() -> None:
    with pytest.raises(InvalidInputError, match="must not be empty"):
        Image.new(owner="p", extra_properties={"": "x"})


def test_task__with_an_input_past_the_budget__is_413() -> None:
    check_task_input_size({"import_from": "x" * 1000})

    with pytest.raises(LimitExceededError):
        Task.new("import", "p", {"import_from": "x" * 70_000}, None, None, None)
