"""The scoring service's typed API: request and response models built from the encoder's event schema.

The encoder's manifest says which column is the entity key, which the time (a timestamp string or a
number, as at training), which are numeric and which categorical; ``event_model`` turns that into a
pydantic model, so ``/openapi.json`` documents every field a client must send. The service still
reads the body itself (``OnlineScorer.frame`` checks it, and says which event and column is wrong
in one line); the models describe what it accepts and answers, and a schemathesis run in the tests
holds the service to them.
"""
from __future__ import annotations

from typing import Annotated, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, constr, create_model

from encoder.events import Schema
from pipelines.scoring.online import MAX_CATEGORY_CHARS, MAX_NUMBER

Key = Union[StrictStr, StrictInt]  # an entity or event id: a string or an integer
Number = Union[StrictInt, StrictFloat]
Feature = Annotated[float, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]  # float32's range: the model's


def event_model(schema: Schema, event_id: str | None = None) -> type[BaseModel]:
    """One event as the service takes it: the key, the time, every feature column (null for a
    missing value), the event id column when the service keys retries by one; other columns (a
    label, say) may ride along and are ignored. An encoder saved before its manifest recorded the
    time's kind documents either kind."""
    fields: dict = {}

    def add(column: str, annotation, description: str, extra: dict | None = None) -> None:
        fields[f"f{len(fields)}"] = (annotation, Field(..., alias=column, description=description,
                                                       json_schema_extra=extra))

    add(schema.id_col, Key, "entity key (account, card, machine)")
    if schema.time_kind == "number":
        add(schema.time_col, Number, "event time, a number in the units of the training table")
    elif schema.time_kind is None:
        add(schema.time_col, Union[StrictStr, Number], "event time, of the kind the training table had")
    else:
        add(schema.time_col, StrictStr, "event time, an ISO 8601 timestamp (with a zone, or UTC)",
            {"format": "date-time"})
    for c in schema.numeric:
        add(c, Optional[Feature], "numeric feature (null: missing)")
    for c in schema.categorical:
        add(c, Optional[Union[constr(strict=True, max_length=MAX_CATEGORY_CHARS), StrictInt, StrictFloat, StrictBool]],
            f"categorical feature (null: missing; strings up to {MAX_CATEGORY_CHARS} characters)")
    if event_id is not None and event_id not in (schema.id_col, schema.time_col, *schema.features):
        add(event_id, Key, "event id: a retry with the same id gets the stored answer")
    return create_model("Event", __config__=ConfigDict(extra="allow", populate_by_name=False), **fields)


class Result(BaseModel):
    """The answer for one event."""

    id: Key = Field(description="the event's entity key")
    time: Union[StrictStr, Number] = Field(description="the event's time, as sent")
    score: float = Field(description="the classifier's score (probability of the positive class)")
    decision: Optional[bool] = Field(description="score above the classifier's threshold (binary tasks)")
    prediction: Union[StrictStr, StrictInt, StrictFloat, StrictBool, None] = Field(description="predicted class")
    encoder_id: str
    classifier_id: str
    duplicate: bool = Field(False, description="a retry of an event already scored: its stored answer")


class BatchResult(BaseModel):
    """The answers for a batch, in request order."""

    results: list[Result]
    encoder_id: str
    classifier_id: str


class Error(BaseModel):
    """Any refusal: one line saying what is wrong and where."""

    error: str


class Health(BaseModel):
    status: str
    encoder_id: str
    classifier_id: str
    entities: int = Field(description="entities with stored state")


ERRORS = {"400": "not a valid event or batch (the line names the event and column)",
          "401": "missing or wrong bearer token", "409": "an event earlier than its entity's latest scored one",
          "413": "body or batch too large", "500": "internal error; nothing was committed",
          "503": "a scoring worker process died; nothing was committed"}


def openapi_schema(base: dict, event: type[BaseModel], max_batch: int) -> dict:
    """``base`` (FastAPI's generated document) with the request and response models of each route."""
    components = base.setdefault("components", {}).setdefault("schemas", {})
    for model in (event, Result, BatchResult, Error, Health):
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(js.pop("$defs", {}))
        components[model.__name__] = js

    def ref(name: str) -> dict:
        return {"$ref": f"#/components/schemas/{name}"}

    def answer(schema: dict, description: str, media: str = "application/json") -> dict:
        return {"description": description, "content": {media: {"schema": schema}}}

    events = {"type": "array", "items": ref("Event"), "minItems": 1, "maxItems": max_batch}
    paths = base["paths"]
    score = paths["/score"]["post"]
    score["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"anyOf": [
        ref("Event"), events, {"type": "object", "properties": {"events": events}, "required": ["events"]}]}}}}
    score["responses"] = {"200": answer({"anyOf": [ref("Result"), ref("BatchResult")]},
                                        "one event's result, or a batch's results in order"),
                          **{code: answer(ref("Error"), text) for code, text in ERRORS.items()}}
    unauthorised = {"401": answer(ref("Error"), ERRORS["401"])}
    paths["/health"]["get"]["responses"] = {"200": answer(ref("Health"), "the service is up")}
    entity = paths["/entities/{entity_id}"]["get"]
    entity["responses"] = {"200": answer({"type": "object"}, "the entity's stored state"),
                           "404": answer(ref("Error"), "no stored state for this entity"), **unauthorised}
    paths["/metrics"]["get"]["responses"] = {"200": answer({"type": "string"}, "Prometheus text format",
                                                           "text/plain"), **unauthorised}
    return base
