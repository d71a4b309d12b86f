"""Every error class answers with the one documented shape, the right status and no stack trace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ADMIN, AGENT, assert_error
from fastapi.testclient import TestClient


def test_invalid_json_is_400(client: TestClient) -> None:
    r = client.post("/v1/analyze", content=b'{"text": "hi",', headers={
        **AGENT, "Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json", "not valid JSON")


def test_invalid_utf8_is_400(client: TestClient) -> None:
    r = client.post("/v1/analyze", content=b'{"text": "caf\xe9 \xff"}', headers={
        **AGENT, "Content-Type": "application/json"})
    assert_error(r, 400, "invalid_utf8", "UTF-8")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_body_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {**AGENT, **({"Content-Type": content_type} if content_type else {})}
    r = client.post("/v1/analyze", content=b'{"text": "hello"}', headers=headers)
    assert_error(r, 415, "unsupported_media_type", "application/json")


def test_json_with_charset_and_vendor_types_is_accepted(client: TestClient) -> None:
    for ct in ("application/json; charset=utf-8", "application/vnd.api+json"):
        r = client.post("/v1/triage", content=b'{"text": "hello there"}',
                        headers={**AGENT, "Content-Type": ct})
        assert r.status_code == 200, (ct, r.text)


def test_body_over_one_mib_is_413(client: TestClient) -> None:
    big = json.dumps({"text": "x" * (1024 * 1024 + 10)}).encode()
    assert_error(client.post("/v1/analyze", content=big, headers={
        **AGENT, "Content-Type": "application/json"}), 413, "payload_too_large", "1048576")


def test_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Any:  # no Content-Length: the limit is enforced while reading
        yield b'{"text": "'
        for _ in range(1100):
            yield b"y" * 1024
        yield b'"}'

    r = client.post("/v1/analyze", content=chunks(), headers={
        **AGENT, "Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("body, where", [
    ({"text": ""}, "text"),
    ({"text": "   \n\t "}, "only whitespace"),
    ({}, "text"),
    ({"text": 42}, "text"),
    ({"text": ["a"]}, "text"),
    ({"text": "hi", "top_k": "3"}, "top_k"),
    ({"text": "hi", "top_k": 0}, "top_k"),
    ({"text": "hi", "top_k": 11}, "top_k"),
    ({"text": "hi", "context": []}, "context"),
    ({"text": "hi", "context": {"a": {"nested": 1}}}, "context"),
    ({"text": "hi", "reply_language": "english"}, "reply_language"),
    ({"text": "hi", "unknown_field": 1}, "unknown_field"),
    ([{"text": "hi"}], "body"),
])
def test_malformed_requests_are_422(client: TestClient, body: Any, where: str) -> None:
    out = assert_error(client.post("/v1/analyze", json=body, headers=AGENT), 422,
                       "validation_error")
    assert where in json.dumps(out["error"]["details"])
    assert "input" not in out["error"]["details"][0]  # submitted values are never echoed


def test_limits_are_named_in_422(client: TestClient) -> None:
    r = client.post("/v1/analyze", json={"text": "a" * 20_001}, headers=AGENT)
    assert_error(r, 422, "validation_error", "20000")
    assert client.post("/v1/analyze", json={"text": "a" * 20_000}, headers=AGENT).status_code == 200
    r = client.post("/v1/analyze", json={"text": "hi", "subject": "s" * 1001}, headers=AGENT)
    assert_error(r, 422, "validation_error", "1000")
    r = client.post("/v1/analyze", headers=AGENT, json={
        "text": "hi", "context": {f"k{i}": i for i in range(51)}})
    assert_error(r, 422, "validation_error", "50")
    for long_value in ("n" * 501, "0" * 501, 10**501):
        r = client.post("/v1/analyze", headers=AGENT,
                        json={"text": "hi", "context": {"name": long_value}})
        assert_error(r, 422, "validation_error", "500")


def test_too_many_batch_messages_is_422_naming_the_limit(client: TestClient) -> None:
    r = client.post("/v1/analyze/batch", headers=AGENT,
                    json={"messages": [{"text": f"message {i}"} for i in range(65)]})
    assert_error(r, 422, "validation_error", "64")
    r = client.post("/v1/analyze/batch", headers=AGENT, json={"messages": []})
    assert_error(r, 422, "validation_error")
    ok = client.post("/v1/analyze/batch", headers=AGENT,
                     json={"messages": [{"text": f"message {i}"} for i in range(64)]})
    assert ok.status_code == 200 and len(ok.json()["items"]) == 64


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing-here", headers=AGENT), 404, "not_found")
    r = client.delete("/v1/analyze", headers=AGENT)
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


def test_missing_article_is_404(client: TestClient) -> None:
    assert_error(client.get("/v1/kb/articles/nope", headers=AGENT), 404, "article_not_found")
    assert_error(client.delete("/v1/kb/articles/nope", headers=ADMIN), 404, "article_not_found")


def test_unexpected_exceptions_are_500_without_a_trace(start_app: Any) -> None:
    client = start_app(raise_server_exceptions=False)
    client.app.state.runtime.served.service.model.predict = None  # type: ignore[attr-defined]
    r = client.post("/v1/analyze", json={"text": "boom"}, headers=AGENT)
    assert_error(r, 500, "internal_error", "request_id")
