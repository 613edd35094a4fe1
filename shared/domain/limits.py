"""What the image table can store, checked where data comes in (request bodies, create, PATCH, tags, members).

DynamoDB's own limits (Amazon DynamoDB Developer Guide, "Constraints in Amazon DynamoDB" and "Supported data types
and naming rules"): an item holds at most 400 KB, attribute names and values counted as their UTF-8 bytes; a
partition key value is 1 to 2048 bytes and a sort key value 1 to 1024 bytes, in the table and in every secondary
index; a number has at most 38 digits of precision; lists and maps nest at most 32 levels; every name is UTF-8 and
an attribute name (a map key included) is at least one character. Anything past them is refused by DynamoDB with a
``ValidationException`` after the request was accepted, which surfaced as a 500. The budgets below stay well inside
them, so that what passes the edge is always stored, read, listed and deleted again:

- a request body nests at most ``MAX_JSON_DEPTH`` levels and all its text is valid Unicode (no lone surrogates:
  they cannot be encoded as UTF-8);
- an image's own metadata (name, owner, extra properties, tags) takes at most ``IMAGE_METADATA_BYTES``: the rest
  of the item (members, locations, the upload session, fixed fields) fits in what remains, and a notification
  carrying the image fits EventBridge's 256 KB entry;
- ``min_ram`` and ``min_disk`` are at most ``MAX_DB_INT`` (Glance's own bound, a 4-byte database integer);
- text that becomes part of a key (a member's project id) is at most ``KEY_TEXT_BYTES``; the name's sort value in
  the list index is cut to ``INDEX_TEXT_BYTES`` (``index_text``) instead, since Glance accepts any 255-character
  name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from shared.domain.errors import InvalidInputError, LimitExceededError

DYNAMODB_ITEM_BYTES = 400 * 1024
DYNAMODB_PARTITION_KEY_BYTES = 2048
DYNAMODB_SORT_KEY_BYTES = 1024
DYNAMODB_NUMBER_DIGITS = 38
DYNAMODB_NESTING_LEVELS = 32

# Glance's bodies nest four levels at most (an import's method, a location's validation data); twenty is room for
# any client and far from what DynamoDB or Python's parser cannot take.
MAX_JSON_DEPTH = 20
# Half an item: members (128 ids of up to KEY_TEXT_BYTES), ten locations and the fixed fields take less than the
# other half.
IMAGE_METADATA_BYTES = 192 * 1024
# A sort key holds the name, two separators, a 26-character time and a 36-character id (shared/data/list_index.py):
# 1 + INDEX_TEXT_BYTES + 65 bytes stays under 1024 with room to spare.
INDEX_TEXT_BYTES = 768
# A member's project id ends up in a table sort key (``LIST#m#<project>``) and in list partitions.
KEY_TEXT_BYTES = 512
# A task's input is stored as one JSON string in the task's item.
TASK_INPUT_BYTES = 64 * 1024
# A metadata-definition item (namespace, object, property, tag) is one JSON document in its item.
DOCUMENT_BYTES = 256 * 1024
# Glance's _validate_db_int: min_ram and min_disk are 4-byte integers.
MAX_DB_INT = 2**31 - 1
# Per element of a map, list or set: DynamoDB counts a few bytes of overhead for each (rounded up here).
_ELEMENT_OVERHEAD = 3


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (what DynamoDB counts); a lone surrogate counts as the 3 bytes it would take."""
    return len(text.encode("utf-8", "surrogatepass"))


def is_storable_text(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (a lone surrogate, which JSON's ``\\ud800`` escapes can produce, does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_json_value(value: object, what: str = "request body") -> None:
    """Refuse JSON nested deeper than ``MAX_JSON_DEPTH`` or holding text that is not valid Unicode.

    Walks without recursion, so any depth that the parser produced is safe to look at.

    Raises:
        InvalidInputError: too deep, or a key or string that cannot be encoded as UTF-8 (400).
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, str):
            _check_text(current, what)
            continue
        if not isinstance(current, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidInputError(f"The {what} is nested more than {MAX_JSON_DEPTH} levels deep.")
        if isinstance(current, dict):
            for key, item in current.items():
                _check_text(str(key), what)
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in current)


def _check_text(text: str, what: str) -> None:
    if not is_storable_text(text):
        raise InvalidInputError(f"The {what} holds text that is not valid Unicode (a lone UTF-16 surrogate).")


def check_property_name(name: str) -> None:
    """Refuse an extra property name the table cannot hold as a map key.

    Raises:
        InvalidInputError: the name is empty (400).
    """
    if not name:
        raise InvalidInputError("Property names must not be empty.")


def check_db_int(name: str, value: object) -> None:
    """Glance's bound on ``min_ram``/``min_disk`` (also keeps them far inside DynamoDB's 38 digits).

    Raises:
        InvalidInputError: an integer above ``MAX_DB_INT`` (400, Glance's message).
    """
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_DB_INT:
        raise InvalidInputError(f"'{name}' value out of range, must not exceed {MAX_DB_INT}.")


def check_key_text(what: str, text: str) -> None:
    """Refuse text that becomes part of a key when its UTF-8 form is longer than ``KEY_TEXT_BYTES``.

    Raises:
        InvalidInputError: too long (400).
    """
    if utf8_size(text) > KEY_TEXT_BYTES:
        raise InvalidInputError(f"The {what} is longer than {KEY_TEXT_BYTES} bytes in UTF-8.")


def metadata_size(texts: Iterable[str | None], properties: Mapping[str, str], tags: Iterable[str]) -> int:
    """The bytes an image's own metadata takes in its item, as DynamoDB counts them (rounded up)."""
    size = sum(utf8_size(text) for text in texts if text is not None)
    size += sum(utf8_size(k) + utf8_size(v) + _ELEMENT_OVERHEAD for k, v in properties.items())
    size += sum(utf8_size(tag) + _ELEMENT_OVERHEAD for tag in tags)
    return size


def check_metadata_size(texts: Iterable[str | None], properties: Mapping[str, str], tags: Iterable[str]) -> None:
    """Refuse an image whose metadata would take more than ``IMAGE_METADATA_BYTES``.

    Raises:
        LimitExceededError: over the budget (413, as Glance answers its other per-image limits).
    """
    size = metadata_size(texts, properties, tags)
    if size > IMAGE_METADATA_BYTES:
        raise LimitExceededError(
            f"The image's name, properties and tags would take {size} bytes, "
            f"more than the {IMAGE_METADATA_BYTES} bytes an image may hold."
        )


def index_text(text: str) -> str:
    """``text`` cut to at most ``INDEX_TEXT_BYTES`` of UTF-8, on a character boundary (for a sort key)."""
    if len(text) * 4 <= INDEX_TEXT_BYTES:
        return text
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= INDEX_TEXT_BYTES:
        return text
    return encoded[:INDEX_TEXT_BYTES].decode("utf-8", "ignore")


def check_task_input_size(task_input: object) -> None:
    """Refuse a task input whose JSON would take more than ``TASK_INPUT_BYTES``.

    Raises:
        LimitExceededError: too large (413).
    """
    size = utf8_size(json.dumps(task_input, ensure_ascii=False))
    if size > TASK_INPUT_BYTES:
        raise LimitExceededError(f"The task input takes {size} bytes, more than the {TASK_INPUT_BYTES} bytes allowed.")


def check_document_size(document: object, what: str) -> None:
    """Refuse a JSON document (one item's content) larger than ``DOCUMENT_BYTES``.

    Raises:
        LimitExceededError: too large (413).
    """
    size = utf8_size(json.dumps(document, ensure_ascii=False, default=str))
    if size > DOCUMENT_BYTES:
        raise LimitExceededError(f"The {what} takes {size} bytes, more than the {DOCUMENT_BYTES} bytes allowed.")
