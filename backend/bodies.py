"""What each route of the backend accepts: the request bodies of v1 and v2, and parsing a
raw body into one.

The handlers read their bodies themselves (one parse, so a bad body is a 422 that names
each field, in the API's error shape: backend/errors.py); v2 adds `priority`, and v1
refuses it as an unknown field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
)

from backend.errors import ValidationFailed, validation_response

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Priority = Literal["low", "normal", "high"]
MAX_IDEMPOTENCY_KEY = 255
# SQLite's INTEGER: a larger id in the path is a 422, never an OverflowError (500)
TaskId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


class TaskCreateV1(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title


class TaskCreateV2(TaskCreateV1):
    priority: Priority = "normal"


class TaskPatchV1(BaseModel):
    """Only the fields sent are changed; an explicit null is refused."""

    model_config = ConfigDict(extra="forbid")
    title: Title | None = None
    done: StrictBool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


class TaskPatchV2(TaskPatchV1):
    priority: Priority | None = None


class ReadyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ready: StrictBool


class LiveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    live: StrictBool


def parse_body(model: type[BaseModel], raw: bytes, version: str) -> BaseModel:
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise ValidationFailed(validation_response(list(exc.errors()), version)) from None
