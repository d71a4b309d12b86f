"""Request and response models, named by role (``XCreate`` in, ``XPublic`` out).

The limits here are the documented API limits; they appear in the OpenAPI schema and in every
422 message that enforces them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

MAX_TEXT_CHARS = 20_000
MAX_SUBJECT_CHARS = 1_000
MAX_BATCH_MESSAGES = 64
MAX_CONTEXT_KEYS = 50
MAX_CONTEXT_VALUE_CHARS = 500
ARTICLE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"

LanguageCode = Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)]
ArticleId = Annotated[str, StringConstraints(pattern=ARTICLE_ID_PATTERN)]
TicketId = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                            pattern=r"^[^\x00-\x1f\x7f]+$")]
ContextKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
# Strict scalars: in lax mode a long string of digits would slip through the union as a float.
ContextValue = (Annotated[str, StringConstraints(max_length=MAX_CONTEXT_VALUE_CHARS)]
                | StrictInt | StrictFloat | StrictBool | None)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- analyze ------------------------------------------------------------------------------------
class AnalyzeRequest(_In):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS,
                      description=f"The customer's message; 1-{MAX_TEXT_CHARS} characters, not "
                                  "only whitespace.")
    subject: str | None = Field(
        None, max_length=MAX_SUBJECT_CHARS,
        description=f"Subject line (at most {MAX_SUBJECT_CHARS} characters); read with the text.")
    ticket_id: TicketId | None = Field(
        None, description="Your ticket id. The same ticket id with the same text (and subject) "
                          "returns the stored answer (`idempotent_replay: true`).")
    customer_language: LanguageCode | None = Field(
        None, description="ISO 639-1 hint used when detection is unsure; not the reply language.")
    reply_language: LanguageCode | None = Field(
        None, description="Language of suggested replies (default: the detected language).")
    channel: str | None = Field(None, pattern=r"^[a-z][a-z0-9_-]{0,31}$",
                                description="email, chat, form, ...: stored with the decision and "
                                            "exported with feedback; not used by the model.")
    context: dict[ContextKey, ContextValue] = Field(
        default_factory=dict, max_length=MAX_CONTEXT_KEYS,
        description=f"Values for reply placeholders such as `customer_name`: at most "
                    f"{MAX_CONTEXT_KEYS} keys; strings or numbers of at most "
                    f"{MAX_CONTEXT_VALUE_CHARS} characters.")
    top_k: StrictInt = Field(3, ge=1, le=10, description="Number of reply suggestions (1-10).")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text must not be empty or only whitespace")
        return v

    @field_validator("context")
    @classmethod
    def _short_values(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key, value in v.items():
            if isinstance(value, int | float) and len(str(value)) > MAX_CONTEXT_VALUE_CHARS:
                raise ValueError(f"context value {key!r} is longer than "
                                 f"{MAX_CONTEXT_VALUE_CHARS} characters")
        return v


class AnalyzeBatchRequest(_In):
    messages: list[AnalyzeRequest] = Field(
        min_length=1, max_length=MAX_BATCH_MESSAGES,
        description=f"1-{MAX_BATCH_MESSAGES} messages, analysed with one encoder call.")


class Alternative(BaseModel):
    label: str
    confidence: float
    source: str | None = Field(None, description="`model` when an urgency signal overrode it.")


class HeadPublic(BaseModel):
    label: str
    confidence: float = Field(description="Calibrated probability (1.0 when a never-miss "
                                          "urgency signal set the label).")
    band: Literal["high", "medium", "low"] = Field(description="`low` means needs review.")
    alternatives: list[Alternative]


class UrgencySignalPublic(BaseModel):
    signal: str
    floor: str
    language: str


class LanguagePublic(BaseModel):
    code: str = Field(description="ISO 639-1 code, or `und`.")
    confidence: float
    method: str


class SuggestionPublic(BaseModel):
    article_id: str
    title: str
    department: str
    score: float
    language: str
    fallback: bool = Field(description="True when the article has no reply in the wanted language.")
    text: str = Field(description="The reply with context placeholders filled.")
    missing_placeholders: list[str]


class SuggestionsPublic(BaseModel):
    confident: bool
    best_score: float
    threshold: float
    reason: str | None
    items: list[SuggestionPublic]


class _DecisionPublic(BaseModel):
    request_id: str = Field(description="Id of this decision; send it with feedback.")
    ticket_id: str | None
    model_version: str
    created_at: str
    idempotent_replay: bool = Field(False, description="True when answered from the decision log.")


class TriagePublic(_DecisionPublic):
    department: HeadPublic | None = Field(description="Null when the model has no department head.")
    urgency: HeadPublic | None = Field(description="Null when the model has no urgency head.")
    urgency_signals: list[UrgencySignalPublic]
    language: LanguagePublic
    needs_review: bool
    review_reasons: list[str]


class AnalyzePublic(TriagePublic):
    suggestions: SuggestionsPublic | None = Field(
        description="Null when the model has no knowledge base.")


class SuggestPublic(_DecisionPublic):
    language: LanguagePublic
    suggestions: SuggestionsPublic | None


class AnalyzeBatchPublic(BaseModel):
    items: list[AnalyzePublic]


# -- feedback -----------------------------------------------------------------------------------
class ReplyFeedback(_In):
    decision: Literal["accepted", "edited", "rejected"]
    article_id: ArticleId | None = Field(None, description="Required for accepted and edited.")
    final_text: str | None = Field(None, min_length=1, max_length=MAX_TEXT_CHARS,
                                   description="The reply as sent; required for edited.")

    @model_validator(mode="after")
    def _complete(self) -> ReplyFeedback:
        if self.decision in ("accepted", "edited") and not self.article_id:
            raise ValueError(f"article_id is required when the reply was {self.decision}")
        if self.decision == "edited" and not (self.final_text and self.final_text.strip()):
            raise ValueError("final_text is required when the reply was edited")
        return self


class FeedbackCreate(_In):
    request_id: str | None = Field(None, min_length=1, max_length=100,
                                   description="The decision's request_id (404 when unknown).")
    ticket_id: TicketId | None = Field(
        None, description="Without request_id: the ticket's latest decision.")
    department: str | None = Field(None, min_length=1, max_length=100,
                                   description="Correct department (one of the model's labels).")
    urgency: str | None = Field(None, min_length=1, max_length=100,
                                description="Correct urgency (one of the model's labels).")
    reply: ReplyFeedback | None = None
    agent_id: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _useful(self) -> FeedbackCreate:
        if not self.request_id and not self.ticket_id:
            raise ValueError("give request_id or ticket_id")
        if self.department is None and self.urgency is None and self.reply is None:
            raise ValueError("give at least one of department, urgency or reply")
        return self


class FeedbackPublic(BaseModel):
    id: int
    request_id: str
    ticket_id: str | None
    created_at: str


# -- knowledge base -----------------------------------------------------------------------------
Reply = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
Question = Annotated[str, StringConstraints(min_length=1, max_length=2_000)]


class ArticleUpdate(_In):
    department: str = Field(min_length=1, max_length=100,
                            description="One of the model's departments.")
    title: str | None = Field(None, max_length=300)
    replies: dict[LanguageCode, Reply] = Field(
        min_length=1, max_length=50,
        description="Reply per language; `{placeholder}` names are filled from `context`.")
    questions: dict[LanguageCode, Annotated[list[Question], Field(max_length=100)]] = Field(
        default_factory=dict, max_length=50,
        description="Example customer questions per language (improve retrieval).")


class ArticleCreate(ArticleUpdate):
    id: ArticleId = Field(description="1-100 of a-z, 0-9, - and _; starts with a letter or digit.")


class ArticlePublic(BaseModel):
    id: str
    department: str
    title: str
    replies: dict[str, str]
    questions: dict[str, list[str]]
    placeholders: list[str]


class ArticleQuery(_In):
    """Query parameters of GET /v1/kb/articles (unknown parameters are rejected)."""

    department: str | None = Field(None, min_length=1, max_length=100,
                                   description="Only this department's articles.")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class ArticleList(BaseModel):
    items: list[ArticlePublic]
    total: int
    limit: int
    offset: int


# -- model and health ---------------------------------------------------------------------------
class KbInfo(BaseModel):
    articles: int
    languages: list[str]
    threshold: float


class ModelPublic(BaseModel):
    version: str
    encoder: str
    created_at: str | None
    label_sets: dict[str, list[str]]
    metrics: dict[str, Any] = Field(description="Metrics recorded in the bundle manifest.")
    n_training_rows: int | None
    parent_version: str | None
    kb: KbInfo | None = Field(description="The served knowledge base, run-time edits included.")
    source: Literal["registry", "bundle"]
    loaded_at: str | None


class ReloadRequest(_In):
    model_dir: str | None = Field(
        None, min_length=1, max_length=4096,
        description="Bundle or registry directory under TRIAGE_MODELS_ROOT (default: the "
                    "configured one, re-read).")

    @field_validator("model_dir")
    @classmethod
    def _a_path(cls, v: str | None) -> str | None:
        if v is not None and any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in v):
            raise ValueError("model_dir must be a path without NUL bytes or lone surrogates")
        return v


class ReloadPublic(BaseModel):
    previous_version: str | None
    version: str
    model_dir: str
    seconds: float


class HealthPublic(BaseModel):
    status: Literal["ok"]


class ReadyPublic(BaseModel):
    status: Literal["ready"]
    model_version: str
