"""Property-based fuzzing of every operation in the OpenAPI schema: no 5xx, responses as documented.

``schema.parametrize()`` needs the schema at import time, before the session's test bundle exists,
so the app is built here on paths that the module fixture fills in (the bundle, a fresh database)
before the app's lifespan starts.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import schemathesis
from conftest import ADMIN, ADMIN_KEY, AGENT_KEY
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings

from api.main import create_app
from api.settings import Settings

FUZZ_DIR = Path(tempfile.mkdtemp(prefix="triage-fuzz-"))
atexit.register(shutil.rmtree, FUZZ_DIR, ignore_errors=True)
APP = create_app(Settings(model_dir=FUZZ_DIR / "models" / "test-v1",
                          database_url=f"sqlite:///{FUZZ_DIR / 'triage.db'}",
                          api_keys=f"{ADMIN_KEY}:admin,{AGENT_KEY}:agent",
                          reload_poll_seconds=0, store_raw_text=True))
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # as from_asgi does: requests (and the checks' probes) go to the app in-process


@pytest.fixture(scope="module")
def fuzz_app(bundle_dir: Path) -> FastAPI:
    shutil.copytree(bundle_dir, FUZZ_DIR / "models" / "test-v1")
    return APP


@pytest.fixture(autouse=True)
def _model_loaded(fuzz_app: FastAPI) -> None:
    """Schemathesis ends the app's lifespan after every test: start it and wait for the model."""
    from schemathesis.python import asgi

    with asgi.get_client(fuzz_app):
        pass
    deadline = time.monotonic() + 10
    while fuzz_app.state.runtime is None or fuzz_app.state.runtime.served.service is None:
        assert time.monotonic() < deadline, "the model did not load"
        time.sleep(0.005)


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_responses(case: schemathesis.Case,
                                                   fuzz_app: FastAPI) -> None:
    # Every check runs except positive_data_acceptance: schema-valid data may still break a
    # documented business rule (a department the model does not know, a model_dir that holds no
    # bundle, an unknown request_id), which is a 404/422 by design.
    response = case.call_and_validate(
        headers=ADMIN, excluded_checks=[schemathesis.checks.positive_data_acceptance])
    assert response.status_code < 500
