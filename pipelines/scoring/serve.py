"""The online scoring service (FastAPI): ``POST /score``, ``GET /health``, ``GET /entities/{id}``,
``GET /metrics`` (Prometheus text format).

Requests are scored off the event loop, on worker threads or (``--workers N``) worker processes,
so ``/health`` and ``/metrics`` answer while a large batch is scored; requests for different
entities score at once, those for one entity in turn (``OnlineScorer``'s entity locks, shared by
the processes); each request's states are committed together or not at all. Every error
is a JSON ``{"error": "<one line>"}`` with a 4xx status, and the service goes on serving:

- 400: malformed JSON, a missing column, a value of the wrong type, an unparseable time;
- 409: an event earlier than its entity's latest scored event (unless ``--allow-late``);
- 401: a token is required (``token``) and the request does not carry it;
- 413: more events than ``--max-batch``, or a body larger than ``MAX_BODY_BYTES``;
- 503: a scoring worker process died.
"""
from __future__ import annotations

import hmac
import json
import time

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from encoder.io.errors import InputError
from pipelines.scoring.online import BatchTooLarge, LateEvent, OnlineScorer
from pipelines.scoring.service_schema import event_model, openapi_schema
from pipelines.scoring.workers import WorkerDied

MAX_BODY_BYTES = 32 << 20


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0] if message else "failed"}, status_code=status)


def _refused(status: int, message: str) -> tuple[JSONResponse, None]:
    return _error(status, message), None


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self, scorer: OnlineScorer):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        self.registry = r = CollectorRegistry()
        self.requests = Counter("seqae_requests", "Scoring requests by HTTP status", ["status"], registry=r)
        self.latency = Histogram("seqae_request_seconds", "Scoring request latency", registry=r,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.events = Counter("seqae_events_scored", "Events scored (duplicates not counted)", registry=r)
        self.duplicates = Counter("seqae_duplicate_events", "Retried events answered from the store", registry=r)
        self.late = Counter("seqae_late_events_refused", "Requests refused for an event earlier than its entity's "
                            "latest", registry=r)
        self.scores = Histogram("seqae_scores", "Scores of the events scored", registry=r,
                                buckets=tuple(i / 10 for i in range(1, 11)))
        entities = Gauge("seqae_entities", "Entities with a stored state", registry=r)
        entities.set_function(scorer.store.count)

    def answered(self, status: int, seconds: float, results: list | None = None) -> None:
        self.requests.labels(str(status)).inc()
        self.latency.observe(seconds)
        for result in results or ():
            if result.get("duplicate"):
                self.duplicates.inc()
            else:
                self.events.inc()
                self.scores.observe(result["score"])

    def text(self) -> bytes:
        from prometheus_client import generate_latest
        return generate_latest(self.registry)


class BearerToken:
    """ASGI middleware: every HTTP request but ``/health`` must carry ``Authorization: Bearer <token>``
    (a plain ASGI layer: no per-request task, unlike ``@app.middleware``)."""

    def __init__(self, app, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/health":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await _error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(scorer: OnlineScorer, token: str | None = None, pool=None) -> FastAPI:
    """The service around ``scorer``; with ``token``, every request but ``/health`` must carry
    ``Authorization: Bearer <token>``. With ``pool`` (a ``workers.ScoringPool`` over the same models
    and store), requests are scored on its worker processes; ``scorer`` answers the rest."""
    app = FastAPI(title="seqae scoring service", version="1", on_shutdown=[pool.close] if pool is not None else [])
    metrics = Metrics(scorer)
    event = event_model(scorer.schema, scorer.event_id)

    def openapi() -> dict:  # the routes read the body themselves: the models are documented here
        if app.openapi_schema is None:
            base = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = openapi_schema(base, event, scorer.max_batch)
        return app.openapi_schema
    app.openapi = openapi

    if token is not None:
        app.add_middleware(BearerToken, token=token)

    @app.get("/metrics")
    async def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST
        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/score")
    async def score(request: Request):
        """One event (a JSON object with the event table's columns), or a batch: a list of events or
        ``{"events": [...]}``. Returns the event's result, or ``{"results": [...]}`` in order."""
        started = time.perf_counter()
        answer, results = await _score(request)
        metrics.answered(answer.status_code, time.perf_counter() - started, results)
        if answer.status_code == 409:
            metrics.late.inc()
        return answer

    async def _score(request: Request) -> tuple[Response, list | None]:
        """The answer to a scoring request, and its results when it succeeded."""
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _refused(413, f"request body of {len(body)} bytes is larger than {MAX_BODY_BYTES}")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, or an integer of too many digits
            return _refused(400, f"malformed JSON: {exc}")
        except RecursionError:
            return _refused(400, "malformed JSON: nested too deeply")
        single = isinstance(payload, dict) and "events" not in payload
        records = [payload] if single else payload.get("events") if isinstance(payload, dict) else payload
        try:
            results = await run_in_threadpool(scorer.score if pool is None else pool.score, records)
        except WorkerDied:
            return _refused(503, "a scoring worker process died; restart the service")
        except LateEvent as exc:
            return _refused(409, str(exc))
        except BatchTooLarge as exc:
            return _refused(413, str(exc))
        except InputError as exc:
            return _refused(400, str(exc))
        except Exception as exc:  # a bug, not bad input: nothing was committed
            return _refused(500, f"internal error: {type(exc).__name__}: {exc}")
        if single:  # a JSONResponse goes out as it is, without FastAPI's encoder walking the answer
            return JSONResponse(results[0]), results
        return JSONResponse({"results": results, "encoder_id": scorer.encoder_id,
                             "classifier_id": scorer.classifier_id}), results

    @app.get("/health")
    async def health():
        return {"status": "ok", "encoder_id": scorer.encoder_id, "classifier_id": scorer.classifier_id,
                "entities": scorer.store.count()}

    @app.get("/entities/{entity_id}")
    async def entity(entity_id: str):
        found = scorer.entity(entity_id)
        if found is None:
            return _error(404, f"entity {entity_id!r} has no stored state (never seen, or expired)")
        return found

    return app
