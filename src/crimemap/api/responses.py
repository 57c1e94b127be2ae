"""Responses serialised with orjson (fast, and byte-for-byte predictable JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


class JSONResponse(Response):
    """``application/json`` rendered with orjson; what every crimemap endpoint answers."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
