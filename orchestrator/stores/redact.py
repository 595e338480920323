"""Credentials are not shown: URIs in messages and hints have their secrets masked."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

MASK = "***"
SECRET_KEYS = re.compile(r"pass|secret|token|key|sig|credential|auth", re.IGNORECASE)
ROOT_SECRET = ("holds a credential, and a checkpoint root is written into the launch record "
               "and every checkpoint: give credentials through the environment "
               "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the node's role) instead")
USERINFO = re.compile(r"^([A-Za-z][\w+.-]*://)([^:/@]*)(?::(.*))?@(?=[^@]*$)")


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
    userinfo = USERINFO.match(uri)  # as SQLAlchemy reads it: the password runs to the last @
    if userinfo and userinfo.group(3) is not None:
        out = f"{userinfo.group(1)}{userinfo.group(2)}:{MASK}@{uri[userinfo.end():]}"
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(SECRET_KEYS.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if SECRET_KEYS.search(k) else v) for k, v in pairs],
                              safe="*")
            out = out.replace("?" + parts.query, "?" + query, 1)
    return out


URI_IN_TEXT = re.compile(r"[A-Za-z][\w+.-]*://[^\s'\"]+")


def redact_text(text: str) -> str:
    """`text` with every URI in it redacted (`redact_uri`): the last guard of a message that
    quotes a library's error, whatever URI that error quotes."""
    def redact(match: re.Match) -> str:
        found = match.group(0)
        uri = found.rstrip(":,.;)")  # the sentence's punctuation, not the URI's
        return redact_uri(uri) + found[len(uri):]
    return URI_IN_TEXT.sub(redact, text)


def storage_flag(storage: str | None) -> str:
    """` --storage X` to paste into a next command; the variable's name where X holds a
    secret (a masked URI would not run)."""
    if not storage:
        return ""
    return (f" --storage {storage}" if redact_uri(storage) == storage
            else ' --storage "$GANSWEEP_STORAGE"')


def mask_secrets(text: str, uri: str) -> str:
    """`text` with every secret `uri` holds masked: a library's error may quote the URI."""
    try:
        parts = urlsplit(uri)
        pairs = [item.partition("=")[::2] for item in parts.query.split("&")]
        secrets = [v for k, v in pairs if SECRET_KEYS.search(k)] + [parts.password or ""]
    except ValueError:  # not a URL after all: hide the whole of it
        secrets = [uri]
    for secret in filter(None, secrets):  # as written, and percent-decoded
        text = text.replace(secret, MASK).replace(unquote(secret), MASK)
    return text
