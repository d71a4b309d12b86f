"""Run-time knowledge-base edits: served at once, persisted, replayed over the immutable bundle."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from conftest import ADMIN, AGENT, AppRunner, assert_error
from fastapi.testclient import TestClient

from api.settings import Settings

QUERY = {"text": "Can you gift wrap my order as a present?", "top_k": 1,
         "context": {"customer_name": "Ann"}}
GIFT = {"id": "gift-wrap", "department": "pre_sales", "title": "Gift wrapping",
        "replies": {"en": "Hi {customer_name}, we gift wrap any order as a present for free."},
        "questions": {"en": ["can you gift wrap my order", "is gift wrapping possible"]}}


def _top(client: TestClient, query: dict[str, object] = QUERY) -> dict[str, object]:
    r = client.post("/v1/suggest", json=query, headers=AGENT)
    assert r.status_code == 200, r.text
    return r.json()["suggestions"]["items"][0]  # type: ignore[no-any-return]


def _bundle_digest(bundle: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in bundle.rglob("*") if p.is_file()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_add_update_delete_show_up_in_suggest_immediately(client: TestClient,
                                                          bundle_dir: Path) -> None:
    before = _bundle_digest(bundle_dir)
    assert _top(client)["article_id"] != "gift-wrap"

    r = client.post("/v1/kb/articles", json=GIFT, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["placeholders"] == ["customer_name"]
    top = _top(client)
    assert top["article_id"] == "gift-wrap"
    assert top["text"] == "Hi Ann, we gift wrap any order as a present for free."

    update = {**{k: v for k, v in GIFT.items() if k != "id"},
              "replies": {"en": "Hi {customer_name}, gift wrapping costs 2 EUR.",
                          "de": "Hallo {customer_name}, Geschenkverpackung kostet 2 EUR."}}
    r = client.put("/v1/kb/articles/gift-wrap", json=update, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert _top(client)["text"] == "Hi Ann, gift wrapping costs 2 EUR."
    assert _top(client, {**QUERY, "reply_language": "de"})["text"].startswith("Hallo Ann")
    assert client.get("/v1/model", headers=AGENT).json()["kb"]["articles"] == 6

    assert client.delete("/v1/kb/articles/gift-wrap", headers=ADMIN).status_code == 204
    assert _top(client)["article_id"] != "gift-wrap"
    assert_error(client.get("/v1/kb/articles/gift-wrap", headers=AGENT), 404, "article_not_found")
    # editing a bundled article works the same way
    assert client.delete("/v1/kb/articles/size-guide", headers=ADMIN).status_code == 204
    assert client.get("/v1/kb/articles", headers=AGENT).json()["total"] == 4
    assert _bundle_digest(bundle_dir) == before  # bundles stay immutable


def test_put_creates_and_post_refuses_existing_ids(client: TestClient) -> None:
    body = {k: v for k, v in GIFT.items() if k != "id"}
    assert client.put("/v1/kb/articles/gift-wrap", json=body, headers=ADMIN).status_code == 201
    assert client.put("/v1/kb/articles/gift-wrap", json=body, headers=ADMIN).status_code == 200
    assert_error(client.post("/v1/kb/articles", json=GIFT, headers=ADMIN), 409, "article_exists")
    assert_error(client.post("/v1/kb/articles", json={**GIFT, "id": "size-guide"}, headers=ADMIN),
                 409, "article_exists")


def test_invalid_articles_are_422(client: TestClient) -> None:
    out = assert_error(client.post("/v1/kb/articles", json={**GIFT, "department": "marketing"},
                                   headers=ADMIN), 422, "validation_error", "marketing")
    assert "pre_sales" in out["error"]["details"][0]["allowed"]
    no_department = {k: v for k, v in GIFT.items() if k != "department"}
    for bad in ({**GIFT, "id": "Bad Id"}, {**GIFT, "replies": {}}, {**GIFT, "replies": {"en": ""}},
                {**GIFT, "replies": {"english": "hi"}}, no_department,
                {**GIFT, "questions": {"en": "not a list"}}):
        r = client.post("/v1/kb/articles", json=bad, headers=ADMIN)
        assert_error(r, 422, "validation_error")
    assert_error(client.put("/v1/kb/articles/BAD_ID", json=GIFT, headers=ADMIN), 422,
                 "validation_error")


def test_edits_survive_restarts_and_reloads(start_app: AppRunner,
                                            make_settings: Callable[..., Settings],
                                            models_root: Path) -> None:
    settings = make_settings()
    client = start_app(settings)
    client.post("/v1/kb/articles", json=GIFT, headers=ADMIN)
    client.delete("/v1/kb/articles/size-guide", headers=ADMIN)
    start_app.stop(client)

    restarted = start_app(settings)
    assert _top(restarted)["article_id"] == "gift-wrap"
    ids = {a["id"] for a in restarted.get("/v1/kb/articles", headers=AGENT).json()["items"]}
    assert "gift-wrap" in ids and "size-guide" not in ids

    # a reload to another bundle replays the same edits over that bundle's KB
    r = restarted.post("/v1/admin/reload", json={"model_dir": str(models_root / "test-v2")},
                       headers=ADMIN)
    assert r.status_code == 200 and r.json()["version"] == "test-v2"
    assert _top(restarted)["article_id"] == "gift-wrap"
    assert_error(restarted.get("/v1/kb/articles/size-guide", headers=AGENT), 404,
                 "article_not_found")
