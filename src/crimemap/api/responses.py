"""Responses serialised with orjson (fast, and byte-for-byte predictable JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse


class JSONResponse(StarletteJSONResponse):
    """``application/json`` rendered with orjson; what every crimemap endpoint answers.

    A subclass of starlette's ``JSONResponse``, so that FastAPI documents each
    route's ``response_model`` as its 200 body in the OpenAPI document.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
