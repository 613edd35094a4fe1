"""HTTP routes of the metadata definitions catalog under /v2/metadefs (Glance's glance/api/v2/metadef_*.py).

Mounted lazily by the app (``functions/api/app.py``): nothing here is imported until a request reaches
/v2/metadefs, so the image path's cold start does not pay for it. Paths are relative to the mount.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from functions.api import metadef_wire as w
from functions.api.deps import ContextDep, JsonBody, MetadefsDep
from functions.api.wire import page_view
from shared.domain import metadefs as md

router = APIRouter(redirect_slashes=False)
_NS = "/namespaces/{namespace}"
_TRUE = frozenset({"true", "1", "yes", "on", "y", "t"})


def _ns(request: Request) -> str:
    name: str = request.path_params["namespace"]
    return name


def _name(request: Request, key: str) -> str:
    value: str = request.path_params[key]
    return value


def _created(body: dict[str, Any], location: str | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=201, headers={"Location": location} if location else None)


def _no_content() -> Response:
    return Response(status_code=204)


# -- namespaces ----------------------------------------------------------------------------------------------------


@router.get("/namespaces", response_model=None)
def list_namespaces(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """Namespaces the caller may see, with Glance's first/next links."""
    params = dict(request.query_params)
    page = metadefs.list_namespaces(ctx, params)
    items = [w.namespace_view(ns) for ns in page.items]
    return page_view(
        "namespaces", items, w.NAMESPACES, "/v2/schemas/metadefs/namespaces", params.items(), page.next_marker
    )


@router.post("/namespaces", status_code=201, response_model=None)
def create_namespace(ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> JSONResponse:
    """Create a namespace (201 with Location)."""
    view = w.content_view(metadefs.create_namespace(ctx, body))
    return _created(view, view["self"])


@router.get(_NS, response_model=None)
def show_namespace(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """A namespace and its content; ``resource_type`` prefixes the property names."""
    resource_type = request.query_params.get("resource_type")
    return w.content_view(metadefs.show_namespace(ctx, _ns(request), resource_type))


@router.put(_NS, response_model=None)
def update_namespace(request: Request, ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> dict[str, Any]:
    """Replace a namespace's attributes."""
    return w.namespace_view(metadefs.update_namespace(ctx, _ns(request), body))


@router.delete(_NS, status_code=204, response_model=None)
def delete_namespace(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> Response:
    """Delete a namespace and its content."""
    metadefs.delete_namespace(ctx, _ns(request))
    return _no_content()


# -- objects ---------------------------------------------------------------------------------------------------------


@router.get(f"{_NS}/objects", response_model=None)
def list_objects(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """A namespace's objects."""
    objects = [o for o in metadefs.list_children(ctx, _ns(request), "object") if isinstance(o, md.MetadefObject)]
    return w.objects_view(_ns(request), objects)


@router.post(f"{_NS}/objects", status_code=201, response_model=None)
def create_object(request: Request, ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> JSONResponse:
    """Create an object."""
    return _created(w.object_view(_ns(request), metadefs.create_object(ctx, _ns(request), body)))


@router.get(f"{_NS}/objects/{{object_name}}", response_model=None)
def show_object(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """One object."""
    obj = metadefs.show_child(ctx, _ns(request), "object", _name(request, "object_name"))
    assert isinstance(obj, md.MetadefObject)
    return w.object_view(_ns(request), obj)


@router.put(f"{_NS}/objects/{{object_name}}", response_model=None)
def update_object(request: Request, ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> dict[str, Any]:
    """Replace an object."""
    obj = metadefs.update_object(ctx, _ns(request), _name(request, "object_name"), body)
    return w.object_view(_ns(request), obj)


# -- properties ------------------------------------------------------------------------------------------------------


@router.get(f"{_NS}/properties", response_model=None)
def list_properties(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """A namespace's properties, keyed by name."""
    props = [p for p in metadefs.list_children(ctx, _ns(request), "property") if isinstance(p, md.MetadefProperty)]
    return w.properties_view(props)


@router.post(f"{_NS}/properties", status_code=201, response_model=None)
def create_property(request: Request, ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> JSONResponse:
    """Create a property."""
    return _created(w.property_view(metadefs.create_property(ctx, _ns(request), body)))


@router.get(f"{_NS}/properties/{{property_name}}", response_model=None)
def show_property(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """One property (``resource_type``: the name carries that association's prefix)."""
    resource_type = request.query_params.get("resource_type")
    prop = metadefs.show_property(ctx, _ns(request), _name(request, "property_name"), resource_type)
    return w.property_view(prop)


@router.put(f"{_NS}/properties/{{property_name}}", response_model=None)
def update_property(request: Request, ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> dict[str, Any]:
    """Replace a property."""
    return w.property_view(metadefs.update_property(ctx, _ns(request), _name(request, "property_name"), body))


# -- tags ------------------------------------------------------------------------------------------------------------


@router.get(f"{_NS}/tags", response_model=None)
def list_tags(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """A namespace's tags."""
    tags = [t for t in metadefs.list_children(ctx, _ns(request), "tag") if isinstance(t, md.MetadefTag)]
    return {"tags": [w.tag_view(t) for t in tags]}


@router.post(f"{_NS}/tags", status_code=201, response_model=None)
def create_tags(request: Request, ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> JSONResponse:
    """Create tags in bulk; ``X-Openstack-Append: true`` keeps the existing ones."""
    append = request.headers.get("x-openstack-append", "").strip().lower() in _TRUE
    tags = metadefs.create_tags(ctx, _ns(request), body, append)
    return _created({"tags": [{"name": t.name} for t in tags]})


@router.get(f"{_NS}/tags/{{tag_name}}", response_model=None)
def show_tag(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """One tag."""
    tag = metadefs.show_child(ctx, _ns(request), "tag", _name(request, "tag_name"))
    assert isinstance(tag, md.MetadefTag)
    return w.tag_view(tag)


@router.post(f"{_NS}/tags/{{tag_name}}", status_code=201, response_model=None)
def create_tag(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> JSONResponse:
    """Create one tag."""
    return _created(w.tag_view(metadefs.create_tag(ctx, _ns(request), _name(request, "tag_name"))))


@router.put(f"{_NS}/tags/{{tag_name}}", response_model=None)
def update_tag(request: Request, ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> dict[str, Any]:
    """Rename a tag."""
    return w.tag_view(metadefs.update_tag(ctx, _ns(request), _name(request, "tag_name"), body))


# -- deleting objects, properties and tags: the same two calls for each kind ---------------------------------------


def _add_delete_routes(kind: str, plural: str, param: str) -> None:
    """``DELETE .../{plural}`` (every one of a namespace) and ``DELETE .../{plural}/{name}`` (one)."""

    def delete_every(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> Response:
        metadefs.delete_all(ctx, _ns(request), kind)
        return _no_content()

    def delete_one(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> Response:
        metadefs.delete_child(ctx, _ns(request), kind, _name(request, param))
        return _no_content()

    for path, endpoint, name in ((f"{_NS}/{plural}", delete_every, f"delete_{plural}"),
                                 (f"{_NS}/{plural}/{{{param}}}", delete_one, f"delete_{kind}")):  # fmt: skip
        router.add_api_route(path, endpoint, methods=["DELETE"], status_code=204, response_model=None, name=name)


_add_delete_routes("object", "objects", "object_name")
_add_delete_routes("property", "properties", "property_name")
_add_delete_routes("tag", "tags", "tag_name")


# -- resource types --------------------------------------------------------------------------------------------------


@router.get("/resource_types", response_model=None)
def list_resource_types(ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """Every resource type."""
    return {"resource_types": [w.resource_type_view(rt) for rt in metadefs.resource_types(ctx)]}


@router.get(f"{_NS}/resource_types", response_model=None)
def list_associations(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> dict[str, Any]:
    """A namespace's resource type associations."""
    associations = metadefs.associations(ctx, _ns(request))
    return {"resource_type_associations": [w.association_view(a) for a in associations]}


@router.post(f"{_NS}/resource_types", status_code=201, response_model=None)
def associate(request: Request, ctx: ContextDep, metadefs: MetadefsDep, body: JsonBody) -> JSONResponse:
    """Associate a resource type with the namespace."""
    return _created(w.association_view(metadefs.associate(ctx, _ns(request), body)))


@router.delete(f"{_NS}/resource_types/{{resource_type}}", status_code=204, response_model=None)
def dissociate(request: Request, ctx: ContextDep, metadefs: MetadefsDep) -> Response:
    """Remove a resource type association."""
    metadefs.dissociate(ctx, _ns(request), _name(request, "resource_type"))
    return _no_content()


# -- schemas (mounted at /v2/schemas/metadefs) -----------------------------------------------------------------------

schemas_router = APIRouter(redirect_slashes=False)


@schemas_router.get("/{name}", response_model=None)
def metadef_schema(request: Request) -> dict[str, Any]:
    """``GET /v2/schemas/metadefs/{name}``: namespace(s), object(s), property, properties, resource_type(s), tag(s)."""
    from functions.api.metadef_schemas import metadef_schemas
    from shared.domain.errors import NotFoundError

    name = _name(request, "name")
    schemas = metadef_schemas()
    if name not in schemas:
        raise NotFoundError(kind="schema", id=f"metadefs/{name}")
    return schemas[name]
