"""Reading an HTTP answer's body within a byte limit and a deadline.

``read_body`` streams a ``requests`` answer (asked for with ``stream=True``) and stops as soon
as the body passes its limit or its deadline: a server that declares a huge body, sends an
endless chunked one, or drips a byte at a time cannot hold a sync or fill its memory. Each read
takes what one read of the socket gives (``read1``), so the deadline is checked between
arrivals of data, however slowly they come; the socket's own timeout bounds the wait for each.
Decoding (gzip, deflate) happens chunk by chunk, so the limit is on the decoded bytes.
"""

from __future__ import annotations

import time

import requests

CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body passed the limit (or declared it would)."""


class BodyTooSlow(Exception):
    """The body was not complete by the deadline; ``received`` bytes had come."""

    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


def read_body(response: requests.Response, limit: int, until: float,
              cut: bool = False) -> bytearray:
    """The body of ``response``, at most ``limit`` bytes, complete by ``until`` (on
    ``time.monotonic``'s clock). Past the limit: BodyTooLarge, or with ``cut`` the first
    ``limit`` bytes (enough of an error page to quote). Past ``until``: BodyTooSlow.
    The transport's own errors (urllib3's) pass through."""
    length = response.headers.get("Content-Length", "").strip()
    if not cut and length.isdigit() and int(length) > limit:
        raise BodyTooLarge
    raw = response.raw
    read = raw.read1 if hasattr(raw, "read1") else raw.read  # read1: urllib3 2.3 and later
    body = bytearray()
    while chunk := read(CHUNK, decode_content=True):
        body += chunk
        if len(body) > limit:
            if cut:
                del body[limit:]
                return body
            raise BodyTooLarge
        if time.monotonic() > until:
            raise BodyTooSlow(len(body))
    return body
