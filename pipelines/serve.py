"""The online scoring service (FastAPI): ``POST /score``, ``GET /health``, ``GET /entities/{id}``.

Requests are scored one at a time (the event loop runs each to its end), so two requests for one
entity never interleave; each request's states are committed together or not at all. Every error
is a JSON ``{"error": "<one line>"}`` with a 4xx status, and the service goes on serving:

- 400: malformed JSON, a missing column, a value of the wrong type, an unparseable time;
- 409: an event earlier than its entity's latest scored event (unless ``--allow-late``);
- 413: more events than ``--max-batch``, or a body larger than ``MAX_BODY_BYTES``.
"""
from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from encoder.errors import InputError

from .online import BatchTooLarge, LateEvent, OnlineScorer

MAX_BODY_BYTES = 32 << 20


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0] if message else "failed"}, status_code=status)


def create_app(scorer: OnlineScorer) -> FastAPI:
    """The service around ``scorer``."""
    app = FastAPI(title="seqae scoring service", version="1")

    @app.post("/score")
    async def score(request: Request):
        """One event (a JSON object with the event table's columns), or a batch: a list of events or
        ``{"events": [...]}``. Returns the event's result, or ``{"results": [...]}`` in order."""
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"request body of {len(body)} bytes is larger than {MAX_BODY_BYTES}")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, or an integer of too many digits
            return _error(400, f"malformed JSON: {exc}")
        except RecursionError:
            return _error(400, "malformed JSON: nested too deeply")
        single = isinstance(payload, dict) and "events" not in payload
        records = [payload] if single else payload.get("events") if isinstance(payload, dict) else payload
        try:
            results = scorer.score(records)
        except LateEvent as exc:
            return _error(409, str(exc))
        except BatchTooLarge as exc:
            return _error(413, str(exc))
        except InputError as exc:
            return _error(400, str(exc))
        except Exception as exc:  # a bug, not bad input: nothing was committed
            return _error(500, f"internal error: {type(exc).__name__}: {exc}")
        if single:
            return results[0]
        return {"results": results, "encoder_id": scorer.encoder_id, "classifier_id": scorer.classifier_id}

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
