"""Search quality on a fixed corpus (tests/resources/data/search_quality.json): 24 documents and
20 queries mixing exact terms, paraphrases and rare identifiers. Mean reciprocal rank (MRR@10) for
words only, meaning only and both fused; the fused ranking must be at least as good as the better
of the two alone. Run with `-s` to see the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.resources.search import resource_search
from apps.resources.services import resource_create

DATA = json.loads((Path(__file__).parent / "data" / "search_quality.json").read_text())

pytestmark = pytest.mark.django_db


def reciprocal_rank(ids: list[str], relevant: str) -> float:
    return 1.0 / (ids.index(relevant) + 1) if relevant in ids else 0.0


def test_hybrid_search_beats_words_only_and_meaning_only(alice, charlie):
    for document in DATA["documents"]:
        resource_create(
            tenant=alice,
            resource_id=document["id"],
            title=document["title"],
            type=document["type"],
            content=document["content"],
        )
    # Noise in another tenant must not change anything.
    resource_create(tenant=charlie, resource_id="mars", title="Mars bars", content="Mars chocolate ERR-4471")

    totals = {"words": 0.0, "meaning": 0.0, "hybrid": 0.0}
    by_kind: dict[str, dict[str, list[float]]] = {}
    for query in DATA["queries"]:
        for mode in totals:
            hits = resource_search(
                tenant=alice, query=query["q"], readable_prefixes=None, limit=10, mode=mode
            )
            rr = reciprocal_rank([hit.resource.path for hit in hits], query["relevant"])
            totals[mode] += rr
            by_kind.setdefault(query["kind"], {}).setdefault(mode, []).append(rr)
    mrr = {mode: total / len(DATA["queries"]) for mode, total in totals.items()}
    print(
        "\nMRR@10 over",
        len(DATA["queries"]),
        "queries:",
        {mode: round(value, 3) for mode, value in mrr.items()},
    )
    for kind, modes in sorted(by_kind.items()):
        print(f"  {kind:<11}", {mode: round(sum(v) / len(v), 3) for mode, v in modes.items()})

    assert len(DATA["documents"]) >= 20 and len(DATA["queries"]) >= 15
    assert mrr["hybrid"] >= max(mrr["words"], mrr["meaning"])
    assert mrr["hybrid"] >= 0.8
