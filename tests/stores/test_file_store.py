"""The file store on a pytest temporary directory: the store contract, and paths outside the directory refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.stores.config import FileStoreConfig
from shared.stores.errors import StoreConfigError, StoreNotFoundError, StoreSizeMismatchError
from shared.stores.file import FileStore
from shared.stores.registry import build_store
from tests.stores.contract import Inventory, StoreContract, chunked, new_image_id, read_all


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The store's directory (created by the first add)."""
    return tmp_path / "images"


@pytest.fixture
def file_store(data_dir: Path) -> Iterator[FileStore]:
    """A file store built as the registry builds it, with small read chunks so reads take several."""
    store = build_store("file1", FileStoreConfig(data_dir=str(data_dir), chunk_size=64 * 1024))
    assert isinstance(store, FileStore)
    yield store
    store.close()


class TestFileStore(StoreContract):
    """The contract on a directory; the file store has no large-object path."""

    @pytest.fixture
    def driver(self, file_store: FileStore) -> FileStore:
        return file_store

    @pytest.fixture
    def large_driver(self) -> FileStore:
        pytest.skip("the file store writes every image the same way: no large-object path")

    @pytest.fixture
    def inventory(self, data_dir: Path) -> Inventory:
        def names() -> set[str]:
            return {str(p.relative_to(data_dir)) for p in data_dir.rglob("*")} if data_dir.exists() else set()

        return names

    @pytest.fixture
    def foreign_urls(self, data_dir: Path) -> list[str]:
        image_id = new_image_id()
        return [
            f"file://{data_dir}/../{image_id}",
            f"file://{data_dir}/../images/{image_id}",
            f"file://{data_dir}/./{image_id}",
            f"file://{data_dir}//{image_id}",
            f"file://{data_dir}/sub/{image_id}",
            f"file://{data_dir}/.{image_id}.x.tmp",
            f"file://{data_dir}/",
            f"file://{data_dir}",
            f"file://{data_dir.parent}/images-other/{image_id}",
            f"file:{data_dir}/{image_id}",
            f"images/{image_id}",
        ]


def test_add__writes_data_dir_slash_image_id(file_store: FileStore, data_dir: Path) -> None:
    image_id = new_image_id()

    result = file_store.add(image_id, [b"abc"], 3, "sha512")

    assert result.url == f"file://{data_dir}/{image_id}"
    assert (data_dir / image_id).read_bytes() == b"abc"
    assert file_store.properties() == {"data_dir": str(data_dir), "chunk_size": 64 * 1024}


def test_add__failing__keeps_the_previous_copy(file_store: FileStore, data_dir: Path) -> None:
    image_id = new_image_id()
    file_store.add(image_id, [b"old bytes"], 9, "sha512")

    with pytest.raises(StoreSizeMismatchError):
        file_store.add(image_id, [b"new"], 9, "sha512")

    assert os.listdir(data_dir) == [image_id]
    assert (data_dir / image_id).read_bytes() == b"old bytes"


@pytest.mark.parametrize("image_id", ["", "../escape", "a/b", ".hidden"])
def test_add__an_id_that_is_not_a_file_name__is_refused(file_store: FileStore, image_id: str) -> None:
    with pytest.raises(StoreConfigError):
        file_store.add(image_id, [b"x"], 1, "sha512")


@pytest.mark.parametrize("url_path", ["{dir}/../secret", "{dir}/../images/../secret", "{parent}/secret"])
def test_a_url_outside_data_dir__is_neither_read_nor_deleted(
    file_store: FileStore, data_dir: Path, url_path: str
) -> None:
    file_store.add(new_image_id(), [b"x"], 1, "sha512")
    secret = data_dir.parent / "secret"
    secret.write_bytes(b"not an image")
    url = "file://" + url_path.format(dir=data_dir, parent=data_dir.parent)

    with pytest.raises(StoreConfigError):
        file_store.get(url)
    with pytest.raises(StoreConfigError):
        file_store.get_size(url)
    with pytest.raises(StoreConfigError):
        file_store.delete(url)

    assert secret.read_bytes() == b"not an image"


def test_a_symlink_in_data_dir__is_not_followed(file_store: FileStore, data_dir: Path) -> None:
    file_store.add(new_image_id(), [b"x"], 1, "sha512")
    secret = data_dir.parent / "secret"
    secret.write_bytes(b"not an image")
    link_id = new_image_id()
    (data_dir / link_id).symlink_to(secret)
    url = f"file://{data_dir}/{link_id}"

    with pytest.raises(StoreNotFoundError):
        read_all(file_store.get(url))
    with pytest.raises(StoreNotFoundError):
        file_store.delete(url)

    assert secret.read_bytes() == b"not an image"


def test_relative_data_dir__is_refused() -> None:
    with pytest.raises(StoreConfigError):
        FileStore("file1", "relative/images")


def test_get__reads_in_chunk_size_pieces(file_store: FileStore) -> None:
    data = os.urandom(200_000)
    result = file_store.add(new_image_id(), chunked(data, 7000), len(data), "sha512")

    chunks = list(file_store.get(result.url, 1000).chunks)

    assert [len(c) for c in chunks] == [65_536, 65_536, 65_536, 200_000 - 1000 - 3 * 65_536]
    assert b"".join(chunks) == data[1000:]
