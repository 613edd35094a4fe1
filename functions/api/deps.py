"""FastAPI dependencies: the container, the caller's context, parsed bodies, and the controllers.

Controllers are wired here, once per app and on first use, from the services of the composition root
(``shared/bootstrap.py``); they hold no per-request state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from functions.api.controllers.image_data import ImageDataController
from functions.api.controllers.image_factory import ImageFactory
from functions.api.controllers.images import ImagesController
from functions.api.controllers.imports import ImportsController
from functions.api.controllers.members import MembersController
from functions.api.controllers.uploads import UploadsController
from functions.api.patch import media_type
from shared.bootstrap import Container
from shared.domain.context import RequestContext
from shared.domain.errors import InvalidInputError
from shared.domain.limits import MAX_JSON_DEPTH, check_json_value

if TYPE_CHECKING:
    # Imported when a route first needs them (cold start pays only for the images, data and members controllers).
    from functions.api.controllers.metadefs import MetadefsController
    from functions.api.controllers.quotas import QuotasController
    from functions.api.controllers.stores import StoresController
    from functions.api.controllers.tasks import TasksController


def get_container(request: Request) -> Container:
    """The composition root the app was built with."""
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_context(request: Request, container: ContainerDep) -> RequestContext:
    """Authenticate the request."""
    return container.authenticator.authenticate(dict(request.headers), request.state.request_id)


ContextDep = Annotated[RequestContext, Depends(get_context)]


async def get_json_body(request: Request) -> Any:
    """The request body parsed as JSON (400 when absent or malformed, as Glance)."""
    raw = await request.body()
    if not raw:
        raise InvalidInputError("Body expected in request.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("Malformed JSON in request body.") from None
    except RecursionError:
        raise InvalidInputError(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.") from None
    check_json_value(body)
    return body


JsonBody = Annotated[Any, Depends(get_json_body)]


async def get_patch_body(request: Request) -> Any:
    """A JSON-patch body: the media type is checked before the body is parsed (415 wins over 400, as Glance)."""
    media_type(request.headers.get("content-type"))
    return await get_json_body(request)


PatchBody = Annotated[Any, Depends(get_patch_body)]


def _per_app[T](request: Request, name: str, build: Callable[[Container], T]) -> T:
    """Build a controller once per app (and container: renew_state drops them with it), on first use."""
    controllers: dict[str, Any] = request.app.state.controllers
    controller: T | None = controllers.get(name)
    if controller is None:
        controller = build(get_container(request))
        controllers[name] = controller
    return controller


def _factory(c: Container) -> ImageFactory:
    return ImageFactory(c.settings, c.protections)


def get_images_controller(request: Request) -> ImagesController:
    """The images controller."""
    return _per_app(
        request,
        "images_controller",
        lambda c: ImagesController(c.images, _factory(c), c.policies, c.protections, c.settings),
    )


ImagesDep = Annotated[ImagesController, Depends(get_images_controller)]


def get_image_data_controller(request: Request) -> ImageDataController:
    """The image-data controller (PUT/GET /file, PUT /stage)."""
    return _per_app(
        request,
        "image_data_controller",
        lambda c: ImageDataController(
            c.images, c.policies, c.upload_sessions, c.streamed_uploads, c.staging, c.downloads
        ),
    )


ImageDataDep = Annotated[ImageDataController, Depends(get_image_data_controller)]


def get_uploads_controller(request: Request) -> UploadsController:
    """The presigned-uploads controller."""
    return _per_app(
        request,
        "uploads_controller",
        lambda c: UploadsController(c.images, c.policies, c.upload_sessions, c.uploads),
    )


UploadsDep = Annotated[UploadsController, Depends(get_uploads_controller)]


def get_imports_controller(request: Request) -> ImportsController:
    """The import controller."""
    return _per_app(
        request, "imports_controller", lambda c: ImportsController(c.images, c.policies, c.imports, c.copies)
    )


ImportsDep = Annotated[ImportsController, Depends(get_imports_controller)]


def get_members_controller(request: Request) -> MembersController:
    """The members controller."""
    return _per_app(request, "members_controller", lambda c: MembersController(c.images, c.policies, c.settings))


MembersDep = Annotated[MembersController, Depends(get_members_controller)]


# Controllers of the routes off the image path: imported on first use, so cold start does not pay for them. At run
# time their dependencies are typed ``Any`` (naming the class would import it); type checkers see the class.
def _lazy_controller(name: str, build: Callable[[Container], Any]) -> Any:
    def get(request: Request) -> Any:
        return _per_app(request, name, build)

    get.__name__ = f"get_{name}"
    return Annotated[Any, Depends(get)]


def _stores(c: Container) -> StoresController:
    from functions.api.controllers.stores import StoresController

    return StoresController(c.images, c.policies, c.locations)


def _tasks(c: Container) -> TasksController:
    from functions.api.controllers.tasks import TasksController

    return TasksController(c.tasks, c.images, c.imports, _factory(c), c.policies, c.settings)


def _quotas(c: Container) -> QuotasController:
    from functions.api.controllers.quotas import QuotasController

    return QuotasController(c.quotas, c.policies)


def _metadefs(c: Container) -> MetadefsController:
    from functions.api.controllers.metadefs import MetadefsController

    return MetadefsController(c.metadefs, c.policies, c.settings)


if TYPE_CHECKING:
    StoresDep = StoresController
    TasksDep = TasksController
    QuotasDep = QuotasController
    MetadefsDep = MetadefsController
else:
    StoresDep = _lazy_controller("stores_controller", _stores)
    TasksDep = _lazy_controller("tasks_controller", _tasks)
    QuotasDep = _lazy_controller("quotas_controller", _quotas)
    MetadefsDep = _lazy_controller("metadefs_controller", _metadefs)


# Path parameters are read from the matched route instead of being declared as function parameters:
# FastAPI builds a pydantic field per declared path parameter, and the first one imports pydantic.v1 (~28 ms
# of Lambda cold start measured here) only to find that ``str`` is not a v1 model.
def _path(name: str) -> Callable[[Request], str]:
    def read(request: Request) -> str:
        value: str = request.path_params[name]
        return value

    read.__name__ = f"path_{name}"
    return read


ImageIdDep = Annotated[str, Depends(_path("image_id"))]
TagDep = Annotated[str, Depends(_path("tag"))]
MemberIdDep = Annotated[str, Depends(_path("member_id"))]
TaskIdDep = Annotated[str, Depends(_path("task_id"))]
ProjectIdDep = Annotated[str, Depends(_path("project_id"))]
SchemaNameDep = Annotated[str, Depends(_path("name"))]
StoreIdDep = Annotated[str, Depends(_path("store_id"))]
