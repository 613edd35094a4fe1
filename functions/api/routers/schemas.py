"""GET /v2/schemas/{name}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from functions.api.deps import SchemaNameDep
from shared.domain.errors import NotFoundError

router = APIRouter(prefix="/v2/schemas")


@router.get("/{name}", response_model=None)
def get_schema(name: SchemaNameDep, request: Request) -> dict[str, Any]:
    """One schema document: image, images, member, members, task or tasks."""
    schemas: dict[str, dict[str, Any]] = request.app.state.schemas
    if name not in schemas:
        raise NotFoundError(kind="schema", id=name)
    return schemas[name]
