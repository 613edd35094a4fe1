"""FastAPI dependencies: the container, the caller's context, parsed bodies, controllers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from functions.api.controllers.image_data import DataHooks, ImageDataController
from functions.api.controllers.images import ImagesController
from functions.api.controllers.members import MembersController
from functions.api.patch import media_type
from shared.bootstrap import Container
from shared.domain.context import RequestContext
from shared.domain.errors import InvalidInputError

if TYPE_CHECKING:
    # Imported when a route first needs them (cold start pays only for the images, data and members controllers).
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
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("Malformed JSON in request body.") from None


JsonBody = Annotated[Any, Depends(get_json_body)]


async def get_patch_body(request: Request) -> Any:
    """A JSON-patch body: the media type is checked before the body is parsed (415 wins over 400, as Glance)."""
    media_type(request.headers.get("content-type"))
    return await get_json_body(request)


PatchBody = Annotated[Any, Depends(get_patch_body)]


def _per_app[T](request: Request, name: str, build: Callable[[], T]) -> T:
    """Controllers hold no per-request state: build each once per app (and container), on first use."""
    controllers: dict[str, Any] = request.app.state.controllers
    controller: T | None = controllers.get(name)
    if controller is None:
        controller = build()
        controllers[name] = controller
    return controller


def get_images_controller(request: Request, container: ContainerDep) -> ImagesController:
    """The images controller."""
    return _per_app(
        request,
        "images_controller",
        lambda: ImagesController(
            container.image_repository, container.settings, container.replicator, container.events
        ),
    )


ImagesDep = Annotated[ImagesController, Depends(get_images_controller)]


def get_image_data_controller(request: Request, container: ContainerDep) -> ImageDataController:
    """The image-data controller."""
    c = container
    return _per_app(
        request,
        "image_data_controller",
        lambda: ImageDataController(
            c.image_repository,
            c.image_bucket,
            c.finalizer,
            c.settings,
            c.import_queue,
            c.replicator,
            DataHooks(c.events, c.tasks, c.quota),
        ),
    )


ImageDataDep = Annotated[ImageDataController, Depends(get_image_data_controller)]


def get_members_controller(request: Request, container: ContainerDep) -> MembersController:
    """The members controller."""
    return _per_app(
        request,
        "members_controller",
        lambda: MembersController(container.image_repository, container.settings, container.events),
    )


MembersDep = Annotated[MembersController, Depends(get_members_controller)]


def get_stores_controller(request: Request, container: ContainerDep) -> StoresController:
    """The stores controller."""
    from functions.api.controllers.stores import StoresController

    c = container
    return _per_app(
        request,
        "stores_controller",
        lambda: StoresController(c.image_repository, c.settings, c.replicator, c.import_queue),
    )


if TYPE_CHECKING:
    StoresDep = StoresController
else:
    StoresDep = Annotated[Any, Depends(get_stores_controller)]


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


def get_tasks_controller(request: Request, container: ContainerDep) -> TasksController:
    """The tasks controller."""
    from functions.api.controllers.tasks import TasksController

    c = container

    def build() -> TasksController:
        return TasksController(
            c.task_repository,
            c.tasks,
            c.image_repository,
            c.settings,
            get_images_controller(request, c),
            get_image_data_controller(request, c),
        )

    return _per_app(request, "tasks_controller", build)


if TYPE_CHECKING:
    TasksDep = TasksController
else:
    TasksDep = Annotated[Any, Depends(get_tasks_controller)]


def get_quotas_controller(request: Request, container: ContainerDep) -> QuotasController:
    """The quotas controller."""
    from functions.api.controllers.quotas import QuotasController

    return _per_app(request, "quotas_controller", lambda: QuotasController(container.quota, container.settings))


if TYPE_CHECKING:
    QuotasDep = QuotasController
else:
    QuotasDep = Annotated[Any, Depends(get_quotas_controller)]
