"""API fixtures: tiny bundles trained once per session with the ``fake:64`` embedder, and apps on
a fresh SQLite database per test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.main import create_app
from api.settings import Settings
from training.trainer import train_bundle
from triage.data import LabelledData
from triage.embedders import TextEmbedder
from triage.kb import Article
from triage.model import TrainingConfig

ADMIN_KEY = "admin-key-for-tests-000001"
AGENT_KEY = "agent-key-for-tests-000001"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
AGENT = {"Authorization": f"Bearer {AGENT_KEY}"}

# (text, department, urgency): 8 departments x 6 messages, in English, German, French, Spanish,
# Japanese and Chinese, all four urgencies.
MESSAGES: list[tuple[str, str, str]] = [
    ("Where is my parcel? Tracking has not moved for a week", "orders_shipping", "normal"),
    ("Wo ist mein Paket? Die Sendungsverfolgung steht still", "orders_shipping", "normal"),
    ("Mon colis n'est toujours pas arrivé, le suivi est bloqué", "orders_shipping", "high"),
    ("Mi pedido no ha llegado y el seguimiento no se actualiza", "orders_shipping", "normal"),
    ("荷物がまだ届きません。追跡番号が更新されません", "orders_shipping", "high"),
    ("我的包裹还没到，物流信息一直没更新", "orders_shipping", "normal"),
    ("I want to return these shoes and get a refund", "returns_refunds", "low"),
    ("Ich möchte die Schuhe zurückschicken und mein Geld zurück", "returns_refunds", "low"),
    ("Je voudrais retourner cet article et être remboursé", "returns_refunds", "normal"),
    ("Quiero devolver el producto y que me reembolsen", "returns_refunds", "low"),
    ("返品して返金してほしいです", "returns_refunds", "normal"),
    ("我想退货退款", "returns_refunds", "low"),
    ("My card was charged twice for the same order", "billing_payments", "high"),
    ("Meine Kreditkarte wurde doppelt belastet", "billing_payments", "high"),
    ("On m'a débité deux fois pour la même commande", "billing_payments", "high"),
    ("Me cobraron dos veces el mismo pedido", "billing_payments", "normal"),
    ("同じ注文で二回請求されました", "billing_payments", "high"),
    ("同一个订单被扣了两次款", "billing_payments", "normal"),
    ("I cannot log in, my password reset email never arrives", "account_security", "normal"),
    ("Ich kann mich nicht einloggen, das Passwort geht nicht", "account_security", "normal"),
    ("Someone hacked my account and changed my email", "account_security", "urgent"),
    ("Alguien entró en mi cuenta sin permiso", "account_security", "urgent"),
    ("アカウントにログインできません", "account_security", "normal"),
    ("我的账号被盗了", "account_security", "urgent"),
    ("The app crashes every time I open the cart", "technical_support", "normal"),
    ("Die App stürzt beim Bezahlen ab", "technical_support", "normal"),
    ("Le chargeur a pris feu, c'est dangereux", "technical_support", "urgent"),
    ("La aplicación se cierra sola al pagar", "technical_support", "normal"),
    ("アプリが起動しません", "technical_support", "low"),
    ("应用一打开就闪退", "technical_support", "normal"),
    ("Does this jacket come in size XL?", "pre_sales", "low"),
    ("Gibt es die Jacke auch in Größe XL?", "pre_sales", "low"),
    ("Cette veste existe-t-elle en taille XL ?", "pre_sales", "low"),
    ("¿Tienen esta chaqueta en talla XL?", "pre_sales", "low"),
    ("このジャケットのXLサイズはありますか", "pre_sales", "low"),
    ("这件外套有XL码吗", "pre_sales", "low"),
    ("Your service is terrible, I am very disappointed", "complaints", "high"),
    ("Ihr Kundenservice ist eine Katastrophe", "complaints", "high"),
    ("Je vais contacter mon avocat, c'est inadmissible", "complaints", "urgent"),
    ("Es el peor servicio que he recibido", "complaints", "normal"),
    ("対応が最悪です。がっかりしました", "complaints", "high"),
    ("你们的服务太差了", "complaints", "normal"),
    ("Do you have a newsletter I can sign up for?", "general", "low"),
    ("Habt ihr einen Newsletter?", "general", "low"),
    ("Quels sont vos horaires d'ouverture ?", "general", "low"),
    ("¿Cuál es el horario de atención?", "general", "low"),
    ("営業時間を教えてください", "general", "low"),
    ("你们的营业时间是几点", "general", "low"),
]
DEPARTMENTS = sorted({d for _, d, _ in MESSAGES})
URGENCIES = sorted({u for _, _, u in MESSAGES})

ARTICLES = [
    Article("where-is-my-order", "orders_shipping", "Where is my order",
            {"en": "Hi {customer_name}, your order is on its way. Tracking: {tracking_url}",
             "de": "Hallo {customer_name}, Ihre Bestellung ist unterwegs. Sendung: {tracking_url}"},
            {"en": ["where is my parcel", "tracking has not moved"],
             "de": ["wo ist mein Paket"]}),
    Article("refund-request", "returns_refunds", "Return and refund",
            {"en": "Hi {customer_name}, start your return in your account; refunds take 5 days.",
             "fr": "Bonjour {customer_name}, lancez votre retour depuis votre compte."},
            {"en": ["I want a refund", "return these shoes"], "fr": ["retourner cet article"]}),
    Article("double-charge", "billing_payments", "Charged twice",
            {"en": "Hi {customer_name}, the second charge is a pre-authorisation and disappears."},
            {"en": ["charged twice", "double charge on my card"]}),
    Article("password-reset", "account_security", "Password reset",
            {"en": "Hi {customer_name}, use the reset link; it is valid for 10 minutes."},
            {"en": ["cannot log in", "password reset email never arrives"]}),
    Article("size-guide", "pre_sales", "Size guide",
            {"en": "Hi {customer_name}, see the size guide on the product page.",
             "es": "Hola {customer_name}, consulta la guía de tallas."},
            {"en": ["does this come in XL", "which size should I take"]}),
]


@pytest.fixture(scope="session", autouse=True)
def _shared_langdetect_profiles() -> Iterator[None]:
    """Each service loads langdetect's 55 profiles (~0.8 s) and these tests start dozens of apps,
    so default-seeded detectors share one loaded factory (same seed, hence the same answers)."""
    from triage.language import LanguageDetector

    factory = LanguageDetector()._get_factory()
    load = LanguageDetector._get_factory

    def shared(self: LanguageDetector) -> object:
        return factory if self.seed == 0 else load(self)

    patch = pytest.MonkeyPatch()
    patch.setattr(LanguageDetector, "_get_factory", shared)
    yield
    patch.undo()


def _train(out: Path, version: str) -> Path:
    data = LabelledData([t for t, _, _ in MESSAGES],
                        {"department": [d for _, d, _ in MESSAGES],
                         "urgency": [u for _, _, u in MESSAGES]})
    train_bundle(data, out, config=TrainingConfig(encoder="fake:64"), kb_articles=ARTICLES,
                 kb_negatives=["what is the meaning of life", "tell me a joke"], version=version)
    return out


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry: two bundles side by side and CURRENT naming the first."""
    root = tmp_path_factory.mktemp("models")
    _train(root / "test-v1", "test-v1")
    _train(root / "test-v2", "test-v2")
    (root / "CURRENT").write_text("test-v1\n")
    return root


@pytest.fixture(scope="session")
def bundle_dir(models_root: Path) -> Path:
    return models_root / "test-v1"


@pytest.fixture
def make_settings(bundle_dir: Path, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_dir": bundle_dir,
            "database_url": f"sqlite:///{tmp_path / 'db' / 'triage.db'}",
            "api_keys": f"{ADMIN_KEY}:admin,{AGENT_KEY}:agent",
            "reload_poll_seconds": 0,
            "store_raw_text": True,
        }
        values.update(overrides)
        return Settings(**values)

    return make


def assert_error(r: Response, status: int, code: str, mentions: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["request_id"] == r.headers["X-Request-ID"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    assert mentions in body["error"]["message"] + json.dumps(body["error"]["details"])
    return body


def wait_ready(client: TestClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.01)
    raise AssertionError(f"not ready after {timeout}s: {client.get('/readyz').json()}")


class RecordingEmbedder:
    """Wraps an embedder: records every encode_queries batch and can hold calls until released."""

    def __init__(self, inner: TextEmbedder) -> None:
        self.inner = inner
        self.spec, self.dim = inner.spec, inner.dim
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def warm_up(self) -> None:
        self.inner.warm_up()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        assert self.release.wait(10), "test never released the encoder"
        return self.inner.encode_queries(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_documents(texts)


def hold_encoder(client: TestClient) -> RecordingEmbedder:
    """Swap the served model's embedder for a recording one that holds calls until released."""
    svc = client.app.state.runtime.served.service  # type: ignore[attr-defined]
    recorder = RecordingEmbedder(svc.model.embedder)
    recorder.release.clear()
    svc.model.embedder = recorder
    return recorder


def wait_until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


class AppRunner:
    """Starts apps (lifespan included, model loaded) and stops whatever is still running."""

    def __init__(self, make_settings: Callable[..., Settings]) -> None:
        self.make_settings = make_settings
        self.running: list[TestClient] = []

    def __call__(self, settings: Settings | None = None, raise_server_exceptions: bool = True,
                 ready: bool = True, **overrides: Any) -> TestClient:
        client = TestClient(create_app(settings or self.make_settings(**overrides)),
                            raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        self.running.append(client)
        if ready:
            wait_ready(client)
        return client

    def stop(self, client: TestClient) -> None:
        self.running.remove(client)
        client.__exit__(None, None, None)

    def stop_all(self) -> None:
        while self.running:
            self.stop(self.running[-1])


@pytest.fixture
def start_app(make_settings: Callable[..., Settings]) -> Iterator[AppRunner]:
    runner = AppRunner(make_settings)
    yield runner
    runner.stop_all()


@pytest.fixture
def client(start_app: Callable[..., TestClient]) -> TestClient:
    return start_app()
