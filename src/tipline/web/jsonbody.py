"""Reading a JSON request body by hand: a size cap and a message that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from tipline.errors import InvalidInput, TooLarge
from tipline.i18n import _

MAX_JSON_BYTES = 1_000_000


async def read_json(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise InvalidInput(_("Send the body as application/json."), field="body")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise TooLarge(_("The JSON body is larger than 1 MB."), field="body")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(_("The body is not valid JSON: %(error)s") % {"error": str(exc)},
                           field="body") from exc
