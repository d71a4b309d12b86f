"""The outermost ASGI layer: request ids, HTTP metrics, and body checks done before any parsing.

Body checks live here rather than in routes so every endpoint answers the same way: 413 over the
size limit (read in chunks, never buffered past it), 415 for a non-JSON body, 400 for invalid UTF-8.
"""

from __future__ import annotations

import email.message
import logging
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response
from .metrics import ServiceMetrics

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
REQUEST_ID_HEADER = "X-Request-ID"


def is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    msg = email.message.Message()
    msg["content-type"] = value
    subtype = msg.get_content_subtype()
    return msg.get_content_maintype() == "application" and (subtype == "json"
                                                            or subtype.endswith("+json"))


class RequestGuard:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500  # stays 500 when the app raises before responding

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            if scope["method"] in BODY_METHODS:
                rejection, receive = await self._read_body(scope, receive, request_id)
                if rejection is not None:
                    await rejection(scope, receive, send_with_id)
                    return
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(scope["method"], template, status, elapsed)
            log.debug("request %s %s %s -> %d in %.1f ms", request_id, scope["method"], template,
                      status, elapsed * 1000)

    async def _read_body(self, scope: Scope, receive: Receive,
                         request_id: str) -> tuple[Any, Receive]:
        """Read the body (up to the limit); return (error response or None, replaying receive)."""
        headers = dict(scope.get("headers") or [])
        limit = self.max_body_bytes
        too_large = error_response(
            413, f"request body is larger than the limit of {limit} bytes", request_id,
            "payload_too_large")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return too_large, receive
        chunks: list[bytes] = []
        size = 0
        disconnected: Message | None = None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return too_large, receive
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if not is_json_content_type(content_type):
                return error_response(
                    415, "send the body as application/json "
                         f"(got {content_type or 'no content type'!r})",
                    request_id, "unsupported_media_type"), receive
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                return error_response(
                    400, f"request body is not valid UTF-8 (byte {exc.start})", request_id,
                    "invalid_utf8"), receive
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if disconnected is not None:
                return disconnected
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return None, replay
