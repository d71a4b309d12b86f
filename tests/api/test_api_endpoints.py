"""Every endpoint's happy path, and the response shapes clients rely on."""

from __future__ import annotations

from conftest import AGENT, DEPARTMENTS, URGENCIES
from fastapi.testclient import TestClient

MESSAGE = {"text": "Where is my parcel? The tracking has not moved", "ticket_id": "T-100",
           "context": {"customer_name": "Ann", "order_id": 4711}}


def _check_head(pred: dict, labels: list[str]) -> None:
    assert pred["label"] in labels
    assert 0.0 <= pred["confidence"] <= 1.0
    assert pred["band"] in ("high", "medium", "low")
    assert all(alt["label"] in labels for alt in pred["alternatives"])


def test_analyze_returns_routing_language_and_suggestions(client: TestClient) -> None:
    r = client.post("/v1/analyze", json=MESSAGE, headers=AGENT)
    assert r.status_code == 200, r.text
    body = r.json()
    _check_head(body["department"], DEPARTMENTS)
    _check_head(body["urgency"], URGENCIES)
    assert body["language"]["code"] == "en"
    assert isinstance(body["needs_review"], bool)
    assert body["model_version"] == "test-v1"
    assert body["ticket_id"] == "T-100"
    assert body["idempotent_replay"] is False
    assert body["request_id"] == r.headers["X-Request-ID"]
    items = body["suggestions"]["items"]
    assert body["suggestions"]["confident"] and items
    assert items[0]["article_id"] == "where-is-my-order"
    assert items[0]["text"].startswith("Hi Ann,")
    assert items[0]["missing_placeholders"] == ["tracking_url"]


def test_reply_language_overrides_detected_language(client: TestClient) -> None:
    r = client.post("/v1/suggest", headers=AGENT, json={
        "text": "Where is my parcel?", "reply_language": "de", "top_k": 1,
        "context": {"customer_name": "Ann"}})
    assert r.status_code == 200, r.text
    item = r.json()["suggestions"]["items"][0]
    assert item["language"] == "de" and item["text"].startswith("Hallo Ann")
    assert r.json()["language"]["code"] == "en"  # detection is unchanged


def test_customer_language_is_only_a_hint(client: TestClient) -> None:
    r = client.post("/v1/triage", headers=AGENT,
                    json={"text": "12345 ???", "customer_language": "fr"})
    assert r.status_code == 200
    assert r.json()["language"]["code"] == "fr"  # undetermined text: the hint decides
    r = client.post("/v1/triage", headers=AGENT,
                    json={"text": "Wo ist mein Paket? Die Sendung ist nicht angekommen",
                          "customer_language": "fr"})
    assert r.json()["language"]["code"] == "de"  # a clear detection wins over the hint


def test_triage_has_no_suggestions_and_suggest_has_no_routing(client: TestClient) -> None:
    triage = client.post("/v1/triage", json={"text": "I want a refund"}, headers=AGENT).json()
    assert "suggestions" not in triage and triage["department"]["label"] in DEPARTMENTS
    suggest = client.post("/v1/suggest", json={"text": "I want a refund", "top_k": 2},
                          headers=AGENT).json()
    assert "department" not in suggest
    assert len(suggest["suggestions"]["items"]) == 2
    assert suggest["suggestions"]["items"][0]["article_id"] == "refund-request"


def test_never_miss_signal_raises_urgency(client: TestClient) -> None:
    body = client.post("/v1/triage", headers=AGENT, json={
        "text": "If this is not fixed today I will contact my lawyer and take legal action"}).json()
    assert body["urgency_signals"], body
    assert body["urgency"]["label"] in ("high", "urgent")


def test_batch_analyzes_each_message_in_order(client: TestClient) -> None:
    texts = ["Where is my parcel?", "I was charged twice", "我想退货退款",
             "Habt ihr einen Newsletter?"]
    messages = [{"text": t, "ticket_id": f"B-{i}"} for i, t in enumerate(texts)]
    r = client.post("/v1/analyze/batch", headers=AGENT, json={"messages": messages})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["ticket_id"] for i in items] == [f"B-{i}" for i in range(4)]
    assert len({i["request_id"] for i in items}) == 4
    assert [i["language"]["code"] for i in items][2:] == ["zh", "de"]
    single = client.post("/v1/analyze", headers=AGENT, json={"text": texts[1]}).json()
    assert single["department"] == items[1]["department"]  # same answer batched or alone


def test_model_info(client: TestClient) -> None:
    r = client.get("/v1/model", headers=AGENT)
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == "test-v1" and body["encoder"] == "fake:64"
    assert body["label_sets"] == {"department": DEPARTMENTS, "urgency": URGENCIES}
    assert "out_of_fold" in body["metrics"]
    assert body["kb"]["articles"] == 5 and body["source"] == "bundle"


def test_health_readiness_and_metrics_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model_version": "test-v1"}
    client.post("/v1/analyze", json={"text": "I was charged twice"}, headers=AGENT)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'triage_http_requests_total{method="POST",route="/v1/analyze",status="200"}' in text
    assert ('triage_http_request_duration_seconds_bucket{le="0.005",method="POST",'
            'route="/v1/analyze"}') in text
    assert 'triage_predictions_total{head="department",label=' in text
    assert "triage_needs_review_ratio" in text and "triage_batch_size_bucket" in text
    assert 'triage_model_info{encoder="fake:64",version="test-v1"} 1.0' in text


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_metrics_time_each_serving_stage(client: TestClient) -> None:
    """Where a request's time goes: queue, encoder, heads + KB, decision log."""
    for i in range(3):
        r = client.post("/v1/analyze", json={"text": f"Parcel {i} has not arrived"}, headers=AGENT)
        assert r.status_code == 200
    text = client.get("/metrics").text
    for stage in ("queue_wait", "encode", "analyze", "decision_log"):
        count = _metric(text, f'triage_stage_duration_seconds_count{{stage="{stage}"}}')
        assert count == 3, (stage, count)  # TestClient sends one request at a time: batches of 1
    stages = sum(_metric(text, f'triage_stage_duration_seconds_sum{{stage="{stage}"}}')
                 for stage in ("queue_wait", "encode", "analyze", "decision_log"))
    http = _metric(text, 'triage_http_request_duration_seconds_sum{method="POST",'
                         'route="/v1/analyze"}')
    assert 0 < stages <= http


def test_metrics_use_route_templates_not_paths(client: TestClient) -> None:
    client.get("/v1/kb/articles/size-guide", headers=AGENT)
    client.get("/v1/kb/articles/no-such-article", headers=AGENT)
    client.get("/no/such/route")
    text = client.get("/metrics").text
    assert 'route="/v1/kb/articles/{article_id}",status="200"' in text
    assert 'route="/v1/kb/articles/{article_id}",status="404"' in text
    assert 'route="unmatched",status="404"' in text
    assert "no-such-article" not in text


def test_kb_read_endpoints(client: TestClient) -> None:
    listing = client.get("/v1/kb/articles", headers=AGENT).json()
    assert listing["total"] == 5 and listing["items"][0]["id"] == "double-charge"
    page = client.get("/v1/kb/articles?limit=2&offset=4", headers=AGENT).json()
    assert [a["id"] for a in page["items"]] == ["where-is-my-order"]
    only = client.get("/v1/kb/articles?department=pre_sales", headers=AGENT).json()
    assert [a["id"] for a in only["items"]] == ["size-guide"]
    # a repeated scalar parameter is an error, not "the last one wins" (found by schemathesis)
    twice = client.get("/v1/kb/articles?department=pre_sales&department=x", headers=AGENT)
    assert twice.status_code == 422 and "'department' is given 2 times" in twice.text
    art = client.get("/v1/kb/articles/where-is-my-order", headers=AGENT).json()
    assert art["placeholders"] == ["customer_name", "tracking_url"]
    assert set(art["replies"]) == {"en", "de"}


def test_openapi_documents_auth_limits_and_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "ApiKey" in spec["components"]["securitySchemes"]
    analyze = spec["paths"]["/v1/analyze"]["post"]
    for code in ("400", "401", "403", "413", "415", "422", "429"):
        assert analyze["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorResponse")
    req = spec["components"]["schemas"]["AnalyzeRequest"]["properties"]
    assert req["text"]["maxLength"] == 20_000 and req["subject"]["anyOf"][0]["maxLength"] == 1000
    assert req["top_k"]["minimum"] == 1 and req["top_k"]["maximum"] == 10
    batch = spec["components"]["schemas"]["AnalyzeBatchRequest"]["properties"]["messages"]
    assert batch["maxItems"] == 64
    assert "1 MiB" in spec["info"]["description"]
