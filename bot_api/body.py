"""A request body read with a size limit, before anything else looks at it."""

from __future__ import annotations

from fastapi import HTTPException, Request


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, or 413 as soon as it is larger than ``limit`` bytes (declared or
    streamed): webhooks check signatures on exactly these bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"body larger than {limit} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise HTTPException(413, detail=f"body larger than {limit} bytes")
    return bytes(body)
