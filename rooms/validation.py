"""pydantic's refusals in the words clients read, and JSON request bodies
parsed into models, shared by the protocol and the HTTP endpoints."""

from __future__ import annotations

from typing import TypeVar

from django.http import HttpRequest
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def validation_problems(error: ValidationError, *, whole: str, skip: int = 0) -> str:
    """``"field: message; ..."``; ``whole`` names the object itself, and the
    first ``skip`` parts of each location (a union's tag) are left out."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc'][skip:]) or whole}: {item['msg']}"
        for item in error.errors(include_url=False)
    )


class BodyInvalid(Exception):
    """A request body that is not the JSON object its endpoint takes."""

    def __init__(self, problems: str) -> None:
        super().__init__(problems)
        self.problems = problems


def json_body(request: HttpRequest, model: type[Model]) -> Model:
    """The request's JSON body as ``model`` (an empty body is ``{}``), or BodyInvalid."""
    try:
        return model.model_validate_json(request.body or b"{}")
    except ValidationError as error:
        raise BodyInvalid(validation_problems(error, whole="body")) from None
