"""Knowledge-base articles: read (agent) and edit at run time (admin), persisted and replayed."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from api.deps import AdminDep, AgentDep, RuntimeDep, ServiceDep, SingleValuedQuery
from api.errors import ApiError, error_responses
from api.schemas import (
    ARTICLE_ID_PATTERN,
    ArticleCreate,
    ArticleList,
    ArticlePublic,
    ArticleQuery,
    ArticleUpdate,
)
from triage.kb import Article, ArticleError
from triage.service import TriageService

router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])
ArticleIdPath = Annotated[str, Path(pattern=ARTICLE_ID_PATTERN, max_length=100,
                                    description="Article id.")]
READ_ERRORS = error_responses(401, 403, 404, 422, 503)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)


def _article(service: TriageService, article_id: str, body: ArticleUpdate) -> Article:
    departments = service.model.label_sets.get("department")
    if departments is not None and body.department not in departments:
        raise ApiError(422, f"unknown department {body.department!r}", details=[{
            "loc": ["body", "department"], "type": "unknown_label", "allowed": departments,
            "msg": f"use one of: {', '.join(departments)}"}])
    data: dict[str, Any] = {"id": article_id, **body.model_dump(exclude={"id"})}
    try:
        return Article.from_dict(data)
    except ArticleError as exc:
        raise ApiError(422, str(exc)) from exc


def _get(service: TriageService, article_id: str) -> Article:
    article = service.kb.articles.get(article_id) if service.kb is not None else None
    if article is None:
        raise ApiError(404, f"no article {article_id!r}", "article_not_found")
    return article


@router.get("/articles", response_model=ArticleList, responses=READ_ERRORS,
            summary="List the served articles", dependencies=[SingleValuedQuery])
async def list_articles(_: AgentDep, service: ServiceDep,
                        query: Annotated[ArticleQuery, Query()]) -> dict[str, Any]:
    """The bundle's articles with run-time edits applied, sorted by id."""
    articles = sorted((service.kb.articles.values() if service.kb else []), key=lambda a: a.id)
    if query.department is not None:
        articles = [a for a in articles if a.department == query.department]
    page = articles[query.offset:query.offset + query.limit]
    return {"items": [a.to_dict() for a in page], "total": len(articles), "limit": query.limit,
            "offset": query.offset}


@router.get("/articles/{article_id}", response_model=ArticlePublic, responses=READ_ERRORS,
            summary="Get one article")
async def get_article(_: AgentDep, service: ServiceDep,
                      article_id: ArticleIdPath) -> dict[str, Any]:
    return _get(service, article_id).to_dict()


@router.post("/articles", response_model=ArticlePublic, status_code=status.HTTP_201_CREATED,
             responses=WRITE_ERRORS, summary="Add an article (admin)")
async def create_article(_: AdminDep, runtime: RuntimeDep, service: ServiceDep,
                         body: ArticleCreate) -> dict[str, Any]:
    """Stored in the database, searchable by /v1/suggest as soon as this returns, and replayed
    over the bundle's KB after restarts and reloads. 409 when the id exists."""
    article = _article(service, body.id, body)
    # Edits run on the encoder thread: they embed, and they never interleave with a search.
    loop = asyncio.get_running_loop()
    created = await loop.run_in_executor(runtime.executor, runtime.served.create_article, article)
    if not created:
        raise ApiError(409, f"article {article.id!r} exists; PUT /v1/kb/articles/{article.id} "
                            "replaces it", "article_exists")
    return article.to_dict()


@router.put("/articles/{article_id}", response_model=ArticlePublic, responses={
    201: {"model": ArticlePublic, "description": "Created."}, **WRITE_ERRORS},
    summary="Create or replace an article (admin)")
async def put_article(_: AdminDep, runtime: RuntimeDep, service: ServiceDep,
                      article_id: ArticleIdPath, body: ArticleUpdate,
                      response: Response) -> dict[str, Any]:
    """200 when an article was replaced, 201 when it was created."""
    article = _article(service, article_id, body)
    loop = asyncio.get_running_loop()
    created = await loop.run_in_executor(runtime.executor, runtime.served.upsert_article, article)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return article.to_dict()


@router.delete("/articles/{article_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, responses=error_responses(401, 403, 404, 422, 503),
               summary="Delete an article (admin)")
async def delete_article(_: AdminDep, runtime: RuntimeDep, service: ServiceDep,
                         article_id: ArticleIdPath) -> Response:
    # On the encoder thread, like every analysis: an article never vanishes mid-suggestion.
    loop = asyncio.get_running_loop()
    deleted = await loop.run_in_executor(runtime.executor, runtime.served.delete_article, article_id)
    if not deleted:
        raise ApiError(404, f"no article {article_id!r}", "article_not_found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
