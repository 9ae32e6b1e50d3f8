"""Cursor pagination for every list of the API."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja.errors import ValidationError
from ninja.pagination import CursorPagination as NinjaCursorPagination
from pydantic import ValidationError as PydanticValidationError


class CursorPagination(NinjaCursorPagination):
    """ninja's cursor pagination, where a cursor that was not handed out by this list (forged,
    truncated, or from another list) is invalid input (422 naming `cursor`), not a 500."""

    def paginate_queryset(
        self, queryset: QuerySet[Any], pagination: Any, request: HttpRequest, **params: Any
    ) -> Any:
        try:
            return super().paginate_queryset(queryset, pagination, request, **params)
        except (DjangoValidationError, PydanticValidationError, ValidationError):
            raise ValidationError(
                [
                    {
                        "loc": ("query", "cursor"),
                        "msg": "not a cursor of this list: ask for the first page again",
                    }
                ]
            ) from None
