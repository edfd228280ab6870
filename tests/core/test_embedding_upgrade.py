"""Upgrading to a default that embeds with another model (fp32 -> int8): stored vectors of the old
model are said at start and by `check --deploy`, from a small table of the models each kind was
embedded with (no scan while nothing is stale); the reembed commands clear it."""

from __future__ import annotations

import importlib
import io
import logging

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connection

from apps.core.embeddings import content_hash, embedding_model_id
from apps.core.embeddings.usage import forget_noted
from apps.core.models import EmbeddedWith
from apps.memory.models import MemoryItem
from apps.memory.services import memory_item_store
from apps.resources.services import resource_create
from slop_platform.startup import embedded_data_check

FP32 = "local:all-MiniLM-L6-v2"
memory_seed = importlib.import_module("apps.memory.migrations.0003_note_embedding_models")
resources_seed = importlib.import_module("apps.resources.migrations.0005_note_embedding_models")


def embeddings_warnings() -> list[str]:
    found = run_checks(tags=["embeddings"], include_deployment_checks=True)
    return sorted(message.msg for message in found)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    forget_noted()


def test_data_of_another_model_is_said_until_it_is_reembedded(alice, caplog, settings):
    running = embedding_model_id()
    assert running == f"{FP32}:int8-per-channel-v1"  # the suite runs on the default
    memory_item_store(tenant=alice, key="pet", value="my dog Biscuit")
    memory_item_store(tenant=alice, key="theme", value="dark")
    resource_create(tenant=alice, resource_id="handbook", title="Handbook", content="Holidays: 25 days.")
    assert set(EmbeddedWith.objects.values_list("kind", "model_id")) == {
        ("memory", running),
        ("resources", running),
    }
    assert embeddings_warnings() == []

    # As a deployment upgraded from fp32 looks: items of the old model, chunks of an unrecorded one.
    pet = MemoryItem.objects.unscoped().get(key="pet")
    old = {"embedding_model": FP32, "content_hash": content_hash(pet.embedding_text, FP32)}
    MemoryItem.objects.unscoped().filter(pk=pet.pk).update(**old)
    EmbeddedWith.objects.create(kind="memory", model_id=FP32)
    EmbeddedWith.objects.create(kind="resources", model_id="")
    said = [  # sorted
        f"1 memory items were embedded by '{FP32}', not the running '{running}': "
        "run `python manage.py reembed --all` (README, Embeddings)",
        "Up to 1 resource chunks were embedded by a model not recorded (before this version), not the "
        f"running '{running}': run `python manage.py resources_reembed --all` (README, Embeddings)",
    ]
    assert embeddings_warnings() == said
    settings.SLOP_EMBEDDINGS_PRELOAD = True  # a web process's start (the tests switch it off)
    with caplog.at_level(logging.WARNING, logger="slop.startup"):
        embedded_data_check()
    assert sorted(record.getMessage() for record in caplog.records) == said

    call_command("reembed", "--all", stdout=io.StringIO())
    assert embeddings_warnings() == [said[1]]
    call_command("resources_reembed", "--all", stdout=io.StringIO())
    assert embeddings_warnings() == []
    assert set(EmbeddedWith.objects.values_list("kind", "model_id")) == {
        ("memory", running),
        ("resources", running),
    }
    assert set(MemoryItem.objects.unscoped().values_list("embedding_model", flat=True)) == {running}


def test_a_noted_model_whose_vectors_are_gone_is_forgotten(alice):
    running = embedding_model_id()
    memory_item_store(tenant=alice, key="pet", value="my dog Biscuit")
    EmbeddedWith.objects.create(kind="memory", model_id=FP32)  # its items deleted since
    EmbeddedWith.objects.create(kind="resources", model_id=FP32)  # no chunk has a vector
    assert embeddings_warnings() == []
    assert set(EmbeddedWith.objects.values_list("kind", "model_id")) == {
        ("memory", running),
        ("resources", running),
    }


def test_the_upgrade_migrations_note_what_earlier_versions_stored(alice):
    memory_item_store(tenant=alice, key="pet", value="my dog Biscuit")
    resource_create(tenant=alice, resource_id="handbook", title="Handbook", content="Holidays: 25 days.")
    MemoryItem.objects.unscoped().update(embedding_model=FP32)
    EmbeddedWith.objects.all().delete()  # as before the table existed
    with connection.cursor() as cursor:
        cursor.execute(memory_seed.NOTE)
        cursor.execute(resources_seed.NOTE)
    assert set(EmbeddedWith.objects.values_list("kind", "model_id")) == {("memory", FP32), ("resources", "")}
