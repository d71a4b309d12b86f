"""Tests for the never-miss urgency signals (triage/urgency.py + resources/urgency_signals.yaml).

No model needed: these exercise the multilingual regex patterns only.

- every signal has patterns for all 11 languages and the expected floor;
- for every signal and language (Chinese in Simplified and Traditional script) one realistic
  message fires exactly that signal;
- ordinary support messages in all languages, including words that look like triggers in another
  language ("issue", "Firefox", "court shoes", "llama" = calls, "дымчатый", "고소한 맛", "دينار"),
  fire nothing;
- apply_floor raises, never lowers, and leaves unknown labels alone.
"""

from __future__ import annotations

import re
import time

import pytest
import yaml

from triage.urgency import SIGNALS_FILE, URGENCY_LEVELS, SignalHit, UrgencySignals

LANGUAGES = {"en", "zh", "de", "fr", "es", "ja", "pt", "it", "ko", "ru", "ar"}
EXPECTED_FLOORS = {
    "legal_threat": "urgent",
    "fraud_account_takeover": "urgent",
    "chargeback": "urgent",
    "safety_hazard": "urgent",
    "data_protection": "high",
}


@pytest.fixture(scope="module")
def signals() -> UrgencySignals:
    return UrgencySignals()


def fired(signals: UrgencySignals, text: str) -> set[str]:
    return {hit.signal for hit in signals.find(text)}


# --------------------------------------------------------------------------------------------
# File structure
# --------------------------------------------------------------------------------------------


def test_every_signal_has_patterns_for_all_languages() -> None:
    raw = yaml.safe_load(SIGNALS_FILE.read_text(encoding="utf-8"))
    assert set(raw["signals"]) == set(EXPECTED_FLOORS)
    for name, spec in raw["signals"].items():
        assert set(spec["patterns"]) == LANGUAGES, name
        for lang, patterns in spec["patterns"].items():
            assert patterns, f"{name}/{lang} has no patterns"
            assert all(isinstance(p, str) and p.strip() for p in patterns), f"{name}/{lang}"


def test_loaded_signals_cover_all_languages(signals: UrgencySignals) -> None:
    assert signals.names == list(EXPECTED_FLOORS)
    assert signals.languages() == LANGUAGES


def test_floors() -> None:
    raw = yaml.safe_load(SIGNALS_FILE.read_text(encoding="utf-8"))
    assert {name: spec["floor"] for name, spec in raw["signals"].items()} == EXPECTED_FLOORS


def test_each_pattern_compiles_on_its_own() -> None:
    """urgency.py joins a language's patterns with '|'; check each one alone so errors are local."""
    raw = yaml.safe_load(SIGNALS_FILE.read_text(encoding="utf-8"))
    for name, spec in raw["signals"].items():
        for lang, patterns in spec["patterns"].items():
            for i, pattern in enumerate(patterns):
                try:
                    re.compile(pattern, re.IGNORECASE)
                except re.error as exc:  # pragma: no cover - only on a broken file
                    pytest.fail(f"{name}/{lang}[{i}] does not compile: {exc}: {pattern!r}")


# --------------------------------------------------------------------------------------------
# Positives: one realistic message per signal and language, firing exactly that signal
# --------------------------------------------------------------------------------------------

POSITIVES: dict[str, dict[str, str]] = {
    "legal_threat": {
        "en": "My solicitor will be in touch; I'm taking this to the small claims court.",
        "zh": "再不退款我就去法院起诉你们。",
        "zh-Hant": "如果再不處理，我會請律師提告。",
        "de": "Wenn bis Freitag nichts passiert, schalte ich meine Rechtsanwältin ein.",
        "fr": "Sans reponse sous huit jours, je saisis mon avocat et je vais porter plainte.",
        "es": "Si no me devuelven el dinero, pondré una demanda y acudiré a la OMIC.",
        "ja": "返金されない場合は弁護士に相談して法的措置を取ります。",
        "pt": "Se não resolverem até sexta, vou entrar na justiça e registrar queixa no Procon.",
        "it": "Se non ricevo il rimborso entro lunedì mi rivolgo a un avvocato.",
        "ko": "환불 안 해주시면 변호사 선임해서 소송 진행하겠습니다.",
        "ru": "Если не вернёте деньги до пятницы, я подам на вас в суд.",
        "ar": "إذا لم تردوا المبلغ سأرفع دعوى قضائية ضد متجركم.",
    },
    "fraud_account_takeover": {
        "en": "Someone hacked my account and placed two orders I didn't make.",
        "zh": "我的账号被盗了，有人用我的账号下了两个订单。",
        "zh-Hant": "我的帳號被盜了，密碼被人改掉了！",
        "de": "Mein Konto wurde gehackt, jemand hat mein Passwort geändert.",
        "fr": "Mon compte a été piraté, il y a des commandes que je n'ai jamais passées.",
        "es": "Me han hackeado la cuenta y alguien cambió mi contraseña.",
        "ja": "アカウントが乗っ取られて、身に覚えのない注文があります。",
        "pt": "Minha conta foi hackeada e tem compras que eu não fiz.",
        "it": "Il mio account è stato hackerato, ci sono ordini che non ho mai fatto.",
        "ko": "계정이 해킹당해서 제가 하지 않은 주문이 들어가 있어요.",
        "ru": "Мой аккаунт взломали, кто-то оформил заказ на мою карту.",
        "ar": "تم اختراق حسابي وفيه طلبات لم أقم بها.",
    },
    "chargeback": {
        "en": "I have opened a chargeback with my bank for this order.",
        "zh": "我已经向银行申请拒付这笔款项。",
        "zh-Hant": "我已經向信用卡公司提出爭議款項。",
        "de": "Ich habe die Zahlung bei meiner Bank zurückbuchen lassen.",
        "fr": "Je vais demander une retrofacturation a ma banque.",
        "es": "He abierto una disputa en PayPal por este pedido.",
        "ja": "カード会社にチャージバックを申請しました。",
        "pt": "Vou contestar a compra no cartão junto ao banco.",
        "it": "Ho avviato la procedura di chargeback con la mia banca.",
        "ko": "카드사에 이의제기 신청했습니다.",
        "ru": "Я открыл спор в PayPal и оспорю платёж через банк.",
        "ar": "فتحت نزاعاً مع البنك على هذه العملية.",
    },
    "safety_hazard": {
        "en": "The charger started smoking and the plug melted.",
        "zh": "充电宝充电时冒烟了，还有烧焦的味道。",
        "zh-Hant": "電暖器冒煙了，還有燒焦味。",
        "de": "Der Akku ist aufgebläht und das Ladegerät hat geschmort.",
        "fr": "La batterie a gonfle et il y a une odeur de brule.",
        "es": "El cargador echó humo y me quemé la mano.",
        "ja": "充電中にバッテリーが膨らんで煙が出ました。",
        "pt": "O carregador pegou fogo em cima da mesa.",
        "it": "Il caricabatterie ha fatto scintille e c'era odore di bruciato.",
        "ko": "충전기에서 연기가 나고 타는 냄새가 나요.",
        "ru": "Зарядка задымилась, и запахло гарью.",
        "ar": "الشاحن طلع منه دخان وريحة حريق.",
    },
    "data_protection": {
        "en": "Under GDPR I request that you delete all my personal data.",
        "zh": "根据个人信息保护法，请删除我的个人信息。",
        "zh-Hant": "請依個資法刪除我的個人資料。",
        "de": "Gemäß DSGVO bitte ich um Löschung meiner personenbezogenen Daten.",
        "fr": "Conformement au RGPD, je demande la suppression de mes donnees personnelles.",
        "es": "Según el RGPD, solicito que borren todos mis datos personales.",
        "ja": "個人情報保護法に基づき、私の個人情報を削除してください。",
        "pt": "Com base na LGPD, peço a exclusão dos meus dados pessoais.",
        "it": "Ai sensi del GDPR chiedo la cancellazione dei miei dati personali.",
        "ko": "개인정보보호법에 따라 제 개인정보를 삭제해 주세요.",
        "ru": "Прошу удалить мои персональные данные в соответствии с 152-ФЗ.",
        "ar": "أطلب حذف بياناتي الشخصية وفق نظام حماية البيانات الشخصية.",
    },
}


def test_positive_table_covers_every_signal_and_language() -> None:
    assert set(POSITIVES) == set(EXPECTED_FLOORS)
    for name, by_lang in POSITIVES.items():
        # "zh" is Simplified, "zh-Hant" Traditional; both use the zh patterns.
        assert {lang.split("-")[0] for lang in by_lang} == LANGUAGES, name
        assert "zh-Hant" in by_lang, name


@pytest.mark.parametrize(
    ("signal", "text"),
    [
        pytest.param(signal, text, id=f"{signal}-{lang}")
        for signal, by_lang in POSITIVES.items()
        for lang, text in by_lang.items()
    ],
)
def test_positive_fires_exactly_that_signal(signals: UrgencySignals, signal: str, text: str) -> None:
    assert fired(signals, text) == {signal}


@pytest.mark.parametrize(
    ("signal", "text"),
    [
        # inflections, accent-less and casual typing, mixed case, mixed language
        ("legal_threat", "I WILL SUE YOU if this isn't fixed."),
        ("legal_threat", "Unsere Anwälte sind bereits informiert."),
        ("legal_threat", "je contacte un avocat demain"),
        ("legal_threat", "Придётся судиться с вашим магазином."),
        ("legal_threat", "Reported to Trading Standards today."),
        ("fraud_account_takeover", "new login from Chrome on Windows - not me"),
        ("fraud_account_takeover", "There are 3 payments on my card that I did not make!"),
        ("fraud_account_takeover", "I clicked the link in the SMS and entered my card number. Was that you?"),
        ("fraud_account_takeover", "Das war ich nicht! Jemand ist in meinem Konto."),
        ("chargeback", "my bank said they'll chargeback the double payment if it's not fixed"),
        ("chargeback", "Я оспариваю платёж через банк."),
        ("safety_hazard", "the hair straightener gave me an electric shock when I touched it"),
        ("safety_hazard", "My son swallowed a magnet from the kit, we are at A&E."),
        ("safety_hazard", "Il caricabatterie si è surriscaldato e scotta."),
        ("data_protection", "Please send me a copy of all personal data you hold about me (Art. 15 GDPR)."),
        ("data_protection", "Ich möchte Auskunft über meine gespeicherten Daten nach Art. 15 DSGVO."),
    ],
)
def test_variants_fire(signals: UrgencySignals, signal: str, text: str) -> None:
    assert signal in fired(signals, text)


def test_signal_hit_carries_floor_and_language(signals: UrgencySignals) -> None:
    hits = signals.find("Мой аккаунт взломали")
    assert [h.to_dict() for h in hits] == [
        {"signal": "fraud_account_takeover", "floor": "urgent", "language": "ru"}
    ]


def test_several_signals_can_fire_together(signals: UrgencySignals) -> None:
    text = "My account was hacked, and I have already opened a chargeback with my bank."
    assert fired(signals, text) == {"fraud_account_takeover", "chargeback"}


# --------------------------------------------------------------------------------------------
# Negatives: ordinary messages, and words that only look like triggers, fire nothing
# --------------------------------------------------------------------------------------------

NEGATIVES = [
    # en
    "My order is late, can you tell me when it will arrive?",
    "I want a refund for the jacket, it doesn't fit.",
    "The battery lasts 2 hours, is that normal for this model?",
    "Can I change my password? I forgot the old one.",
    "The parcel was damaged when it arrived, the box was crushed.",
    "Do you sell court shoes in size 5?",
    "There's an issue with my suede boots, the stitching came loose.",
    "Does the Fire TV stick work in the UK?",
    "My firewall blocks your website in Firefox.",
    "Is the smoke grey colour back in stock?",
    "I'm allergic to wool, is this jumper 100% cotton?",
    "These shoes hurt my feet, can I exchange them for a bigger size?",
    "The colour bleeds in the wash, I want to return it.",
    "The chocolate melted in the heat during delivery.",
    "My bank has no record of the refund yet, can you send me the reference?",
    "I was charged twice for the same order, please refund one payment.",
    "Hi, this is Sue from Brighton, do you ship to Ireland?",
    "Please send the invoice to Sue in accounts, thanks.",
    "Just a heads-up: I got a phishing email with your logo. I didn't click anything.",
    "Can you delete my account? I don't use it anymore.",
    "My account was suspended for suspicious activity, but it was me, please unlock it.",
    "I'm in hospital next week, can you hold the parcel at the depot?",
    "Is the SPF 50 sunscreen waterproof?",
    "Do you have the art deco lamp in brass?",
    "Do you sell a fire blanket and fire extinguishers for the kitchen?",
    "Is the jacket from a smoke-free home?",
    "I got a shock when I saw the delivery price to Norway.",
    "Can someone check my account? The order history is empty.",
    "Someone got in touch about my return but didn't leave a reference.",
    "The seal on the face cream was compromised when it arrived.",
    "You charged me for express shipping but I didn't order express.",
    "What information do you have on my parcel's location?",
    "Does the burnt orange hand towel come in a set?",
    # zh (Simplified and Traditional)
    "我的订单什么时候发货？",
    "我想退款，衣服尺码不合适。",
    "电池能用两个小时，正常吗？",
    "怎么修改密码？",
    "包裹到的时候外箱破损了。",
    "請問這款有沒有黑色？我想改一下收件地址。",
    "我对羊毛过敏，这件是纯棉的吗？",
    "我还没下单，想先问一下运费。",
    "说好的优惠券还没到，又被骗了一次。",
    "这个手表自称防水，结果进水了。",
    "快递员未经同意就把包裹放在门口了。",
    "我查阅资料发现这个型号有两个版本。",
    "灭火器有货吗？这款有过热保护吗？",
    # de
    "Meine Bestellung ist noch nicht angekommen, wann kommt sie?",
    "Ich möchte mein Passwort ändern, wie geht das?",
    "Gibt es die Jacke auch in Rauchgrau?",
    "Das Paket wurde beschädigt geliefert, ich möchte eine Erstattung.",
    "Ich habe eine gift card gekauft, welche Marke ist das Ladegerät?",
    "Meine Lastschrift kam zurück, weil das Konto nicht gedeckt war. Kann ich per PayPal zahlen?",
    "Ich habe mit PayPal bezahlt, auf jeden Fall kam keine Bestätigung.",
    "Ist das Spielzeug gefährlich für Kleinkinder?",
    # fr
    "Ma commande est en retard, pouvez-vous vérifier ?",
    "Je voudrais un remboursement, la taille ne convient pas.",
    "Quelle police d'écriture utilisez-vous sur vos étiquettes ?",
    "Je souhaite changer mon mot de passe.",
    "Plainte contre le traitement de mon dossier : personne ne me répond.",
    "Vous avez le service à fondue en rouge ?",
    "La batterie se décharge très vite, c'est normal ?",
    "J'attends le feu vert de ma femme avant de commander.",
    # es
    "Mi pedido llega tarde, ¿cuándo lo recibiré?",
    "Nadie me llama y llevo una semana esperando.",
    "La caja llegó con un golpe pero el producto está bien.",
    "Quiero cambiar mi contraseña.",
    "¿El reloj mide el oxígeno en sangre?",
    "¿La manta es resistente al fuego?",
    "Me rechazaron el pago con tarjeta, ¿qué hago?",
    "Quiero actualizar mis datos personales en el perfil.",
    # pt
    "Meu pedido está atrasado, quando chega?",
    "Como se chama essa cor?",
    "Quero trocar a senha da minha conta.",
    "O meu carregador queimou, vocês vendem um compatível?",
    "Vocês vão processar o reembolso hoje?",
    "Tenho 500 pontos no cartão fidelidade, posso usar?",
    "O vidro aguenta choque térmico?",
    # it
    "Il mio ordine è in ritardo, quando arriva?",
    "A causa del ritardo vorrei annullare l'ordine.",
    "Ero ricoverata in ospedale, posso fare il reso lo stesso?",
    "Il kit contiene sostanze pericolose?",
    "Vorrei cambiare la password del mio account.",
    "Il tè sciolto è biologico? E che fuso orario usate per le consegne?",
    "Fa un caldo soffocante, potete consegnare la sera?",
    # ja
    "注文した商品はいつ届きますか？",
    "パスワードを変更したいです。",
    "バッテリーは2時間持ちます。",
    "サイズが合わないので返品したいです。",
    "燃えるゴミで捨てられますか？",
    "このおもちゃは危険ですか？",
    # ko
    "주문한 상품 배송이 연기됐나요?",
    "비밀번호를 변경하고 싶어요.",
    "고소한 맛 과자 있나요?",
    "복사기 토너 재고 있나요?",
    "배송 상자가 찢어졌어요.",
    "아이가 다치지 않게 모서리 보호대 있나요?",
    "불꽃놀이 세트 재고 있어요?",
    # ru
    "Мой заказ задерживается, когда доставят?",
    "Судя по трекингу, посылка уже в городе.",
    "Хочу вернуть кровать, она не подошла по размеру.",
    "Искренне благодарю за помощь!",
    "Как поменять пароль?",
    "По закону о защите прав потребителей прошу вернуть деньги за возврат.",
    "Мне привезли чужой заказ, что с ним делать?",
    "Куртка очень греет, спасибо!",
    # ar
    "طلبي متأخر، متى يصل؟",
    "أريد استرداد المبلغ لأن المقاس غير مناسب.",
    "كم سعر الشحن إلى الكويت بالدينار؟",
    "كيف أغير كلمة المرور؟",
    "ذابت الشوكولاتة بسبب الحر أثناء التوصيل.",
    "البنك وقف العملية يقول مشبوهة، ايش أسوي؟",
]


def test_enough_negatives() -> None:
    assert len(NEGATIVES) >= 40
    assert len(set(NEGATIVES)) == len(NEGATIVES)


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_message_fires_nothing(signals: UrgencySignals, text: str) -> None:
    assert signals.find(text) == []


def test_long_input_is_matched_in_reasonable_time(signals: UrgencySignals) -> None:
    """Guard against catastrophic backtracking: patterns are linear, so 20k characters of
    near-miss text take well under a second on a laptop (a backtracking blow-up would not)."""
    texts = [
        "someone my account was hacked and " * 600,
        "a " * 10_000,
        "1." * 10_000,
        "有人用我的账号" * 3_000,
    ]
    start = time.perf_counter()
    for text in texts:
        signals.find(text)
    assert time.perf_counter() - start < 10


# --------------------------------------------------------------------------------------------
# apply_floor
# --------------------------------------------------------------------------------------------

URGENT = SignalHit("legal_threat", "urgent", "en")
HIGH = SignalHit("data_protection", "high", "en")


def test_apply_floor_raises_normal_to_urgent() -> None:
    assert UrgencySignals.apply_floor("normal", [URGENT]) == "urgent"


def test_apply_floor_raises_low_to_high() -> None:
    assert UrgencySignals.apply_floor("low", [HIGH]) == "high"


def test_apply_floor_takes_the_highest_floor() -> None:
    assert UrgencySignals.apply_floor("low", [HIGH, URGENT]) == "urgent"
    assert UrgencySignals.apply_floor("low", [URGENT, HIGH]) == "urgent"


@pytest.mark.parametrize("label", ["high", "urgent"])
def test_apply_floor_never_lowers(label: str) -> None:
    assert UrgencySignals.apply_floor(label, [HIGH]) == label


@pytest.mark.parametrize("label", URGENCY_LEVELS)
def test_apply_floor_without_hits_keeps_label(label: str) -> None:
    assert UrgencySignals.apply_floor(label, []) == label


def test_apply_floor_passes_unknown_labels_through() -> None:
    assert UrgencySignals.apply_floor("P1", [URGENT]) == "P1"
    assert UrgencySignals.apply_floor("", [URGENT]) == ""


def test_apply_floor_ignores_hits_with_unknown_floor() -> None:
    assert UrgencySignals.apply_floor("normal", [SignalHit("x", "critical", "en")]) == "normal"


def test_apply_floor_with_custom_levels() -> None:
    levels = ("p3", "p2", "p1")
    assert UrgencySignals.apply_floor("p3", [SignalHit("x", "p1", "en")], levels=levels) == "p1"
    # the default "urgent" floor is not a level here, so it is ignored
    assert UrgencySignals.apply_floor("p3", [URGENT], levels=levels) == "p3"


def test_end_to_end_find_then_floor(signals: UrgencySignals) -> None:
    assert signals.apply_floor("low", signals.find("I'm going to sue you.")) == "urgent"
    assert signals.apply_floor("low", signals.find("Bitte löschen Sie meine Daten gemäß DSGVO.")) == "high"
    assert signals.apply_floor("urgent", signals.find("Bitte löschen Sie meine Daten gemäß DSGVO.")) == "urgent"
    assert signals.apply_floor("normal", signals.find("Where is my parcel?")) == "normal"
