"""``python -m shared.metadefs.load``: the shipped definition files load, a second load changes nothing, merge adds
what is missing, overwrite replaces, and a bad file is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.data.memory import MemoryItemStore
from shared.data.metadefs import MetadefRepository
from shared.domain.metadefs import MetadefTag
from shared.metadefs.load import DEFINITIONS, load_directory


@pytest.fixture
def repo() -> MetadefRepository:
    return MetadefRepository(MemoryItemStore())


def test_shipped_definitions__load_once__then_are_skipped(repo: MetadefRepository) -> None:
    files = sorted(DEFINITIONS.glob("*.json"))
    assert len(files) >= 3
    assert load_directory(repo, DEFINITIONS) == {"created": len(files)}
    assert load_directory(repo, DEFINITIONS) == {"skipped": len(files)}
    boot = repo.content("SGL::Image::Boot")
    assert boot is not None and boot.namespace.owner == "admin" and boot.namespace.protected
    assert {p.name for p in boot.properties} == {"firmware_type", "machine_type", "boot_menu"}
    assert {"OS::Glance::Image", "OS::Nova::Flavor"} <= {rt.name for rt in repo.resource_types()}


def test_merge__adds_what_is_missing__overwrite__replaces(repo: MetadefRepository, tmp_path: Path) -> None:
    doc = {"namespace": "X", "tags": [{"name": "a"}], "resource_type_associations": [{"name": "R1"}]}
    (tmp_path / "x.json").write_text(json.dumps(doc))
    load_directory(repo, tmp_path)
    ns = repo.get_namespace("X")
    assert ns is not None
    repo.put_child(ns, MetadefTag("local", ns.created_at, ns.created_at))
    doc["tags"] = [{"name": "a"}, {"name": "b"}]
    doc["resource_type_associations"] = [{"name": "R1"}, {"name": "R2"}]
    (tmp_path / "x.json").write_text(json.dumps(doc))
    assert load_directory(repo, tmp_path, mode="merge") == {"merged": 1}
    merged = repo.content("X")
    assert merged is not None and [t.name for t in merged.tags] == ["a", "b", "local"]
    assert set(merged.namespace.associations) == {"R1", "R2"}
    assert load_directory(repo, tmp_path, mode="overwrite") == {"replaced": 1}
    replaced = repo.content("X")
    assert replaced is not None and [t.name for t in replaced.tags] == ["a", "b"]


def test_bad_file__is_named(repo: MetadefRepository, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"namespace": "A"}))
    (tmp_path / "b.json").write_text(json.dumps({"display_name": "no namespace"}))
    with pytest.raises(ValueError, match=r"b\.json"):
        load_directory(repo, tmp_path)
    assert repo.get_namespace("A") is not None
