"""Route dependencies as ``Annotated`` aliases: runtime, served model, storage and auth roles."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from triage.service import TriageService

from .auth import KeyRing, Principal
from .batching import MicroBatcher
from .decision_log import DecisionLog
from .errors import ApiError
from .metrics import ServiceMetrics
from .serving import ServedModel
from .settings import Settings
from .storage import Storage


@dataclass
class Runtime:
    """Everything the lifespan builds, held on ``app.state.runtime`` while the app runs."""

    settings: Settings
    metrics: ServiceMetrics
    storage: Storage
    keys: KeyRing
    served: ServedModel
    batcher: MicroBatcher
    executor: ThreadPoolExecutor
    decision_log: DecisionLog


# Dependencies are ``async def`` although they never await: FastAPI runs a sync dependency on the
# thread pool, and three thread hops per request cost more than everything they do.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ApiError(503, "the service is starting", "not_ready", headers={"Retry-After": "2"})
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_service(runtime: RuntimeDep) -> TriageService:
    return runtime.served.require()


async def get_storage(runtime: RuntimeDep) -> Storage:
    return runtime.storage


ServiceDep = Annotated[TriageService, Depends(get_service)]
StorageDep = Annotated[Storage, Depends(get_storage)]

_bearer = HTTPBearer(
    auto_error=False, scheme_name="ApiKey",
    description="`Authorization: Bearer <key>`; keys have the role agent or admin.",
)


async def get_principal(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    principal = runtime.keys.authenticate(credentials.credentials if credentials else None)
    if principal is None:
        raise ApiError(401, "missing or unknown API key; send 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    return principal


async def require_agent(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    return principal  # every valid key is at least an agent


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.may("admin"):
        raise ApiError(403, "this endpoint needs an admin key")
    return principal


AgentDep = Annotated[Principal, Depends(require_agent)]
AdminDep = Annotated[Principal, Depends(require_admin)]


async def single_valued_query(request: Request) -> None:
    """Reject a repeated query parameter: no endpoint takes lists, and FastAPI would silently
    keep the last value of ``?department=a&department=b``."""
    keys = [k for k, _ in request.query_params.multi_items()]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ApiError(422, f"query parameter {repeated[0]!r} is given {keys.count(repeated[0])} "
                            "times; give it once", "repeated_query_parameter")


SingleValuedQuery = Depends(single_valued_query)
