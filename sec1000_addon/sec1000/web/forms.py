"""Reading a posted form: a body no parser can read is the sender's error (400), in words."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

_LOGGER = logging.getLogger(__name__)

UNREADABLE = (
    "the form could not be read: send UTF-8 form data "
    "(application/x-www-form-urlencoded or multipart/form-data with named fields)"
)


async def read_form(request: web.Request) -> MultiDictProxy[Any]:
    """The posted fields; raises HTTPBadRequest for a body that is not a readable form."""
    try:
        form = await request.post()
    except web.HTTPException:
        raise
    except Exception as err:  # UnicodeDecodeError, LookupError (charset), ValueError, …
        _LOGGER.info("unreadable form on %s: %s", request.path, type(err).__name__)
        raise web.HTTPBadRequest(text=UNREADABLE) from None
    if any(not key for key in form):
        raise web.HTTPBadRequest(text=UNREADABLE)
    return form
