"""Credentials never leave the process: URIs are shown and stored with their secrets masked."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

MASK = "***"
SECRET_KEYS = re.compile(r"pass|secret|token|key|sig|credential|auth", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """`uri` with the password of its userinfo and secret-looking query values masked:
    postgresql://gansweep:PASS@db:5432/optuna -> postgresql://gansweep:***@db:5432/optuna."""
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:  # not a URL after all: show the scheme only
        return uri.split("://", 1)[0] + "://" + MASK
    out = uri
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        masked = f"{user}:{MASK}@{host}" if ":" in userinfo else parts.netloc
        out = out.replace(parts.netloc, masked, 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(SECRET_KEYS.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if SECRET_KEYS.search(k) else v) for k, v in pairs],
                              safe="*")
            out = out.replace("?" + parts.query, "?" + query, 1)
    return out
