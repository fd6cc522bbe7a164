"""HTTP Basic credentials decoded as UTF-8 (RFC 7617 ``charset="UTF-8"``).

FastAPI's ``HTTPBasic`` decodes them as ASCII, so a Cyrillic user name or password was
refused (401) with the right password. Same scheme in the OpenAPI document, same
behaviour otherwise.
"""

from __future__ import annotations

import binascii
from base64 import b64decode

from fastapi import HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.security.utils import get_authorization_scheme_param


class Utf8HTTPBasic(HTTPBasic):
    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
        credentials = None
        if scheme.lower() == "basic":
            try:
                decoded = b64decode(param, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError, binascii.Error):
                decoded = ""
            username, separator, password = decoded.partition(":")
            if separator:
                credentials = HTTPBasicCredentials(username=username, password=password)
        if credentials is None and self.auto_error:
            raise HTTPException(
                401, detail="Not authenticated", headers={"WWW-Authenticate": "Basic"}
            )
        return credentials
