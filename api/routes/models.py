"""GET /v1/model (what is served) and POST /v1/admin/reload (swap in another bundle)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from api.deps import AdminDep, AgentDep, RuntimeDep, ServiceDep
from api.errors import error_responses
from api.schemas import ModelPublic, ReloadPublic, ReloadRequest

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", response_model=ModelPublic, responses=error_responses(401, 403, 503),
            summary="The served model")
async def model_info(_: AgentDep, runtime: RuntimeDep, service: ServiceDep) -> dict[str, Any]:
    """Version, encoder, label sets, the manifest's metrics and the live knowledge base."""
    m = service.manifest
    kb = service.kb
    served = runtime.served
    articles = list(kb.articles.values()) if kb is not None else []  # a snapshot: edits go on
    return {
        "version": service.version,
        "encoder": service.embedder.spec,
        "created_at": m.get("created_at"),
        "label_sets": service.model.label_sets,
        "metrics": m.get("metrics") or {},
        "n_training_rows": m.get("n_training_rows"),
        "parent_version": m.get("parent_version"),
        "kb": {"articles": len(articles),
               "languages": sorted({lang for a in articles for lang in a.replies}),
               "threshold": round(kb.threshold, 4)} if kb is not None else None,
        "source": "registry" if served.pointer is not None else "bundle",
        "loaded_at": served.loaded_at,
    }


@router.post("/admin/reload", response_model=ReloadPublic,
             responses=error_responses(400, 401, 403, 413, 415, 422, 503),
             summary="Load a model bundle and swap it in (admin)")
async def reload_model(_: AdminDep, runtime: RuntimeDep,
                       body: ReloadRequest | None = None) -> dict[str, Any]:
    """Loads the bundle completely (and replays KB edits) before swapping; requests in flight
    finish on the old model and none fails. Without `model_dir`, re-reads the configured
    directory (for a registry: the version CURRENT names). 422 when loading fails; the old
    model keeps serving."""
    model_dir = Path(body.model_dir) if body and body.model_dir else None
    return asdict(await runtime.served.reload(model_dir))
