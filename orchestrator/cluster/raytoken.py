"""Ray token authentication, from the client's side.

Ray 2.60 protects clusters started by `ray.init()` with a token and will protect every cluster
from 2.61 on. A client sends its token only when RAY_AUTH_MODE=token. gansweep finds the token
where Ray's own tools look (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token): `submit`
sends it to the Jobs API (a server without auth ignores it), and `launch --address` turns token
mode on when the user named a token (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH). Not for
~/.ray/auth_token alone: Ray writes that file for every local `ray.init()`, and a driver in token
mode on a cluster without auth loses its actors (they cannot call back into it). A head that
refuses the client gets one line saying what to set.
"""

from __future__ import annotations

import os
from pathlib import Path

MODE_VAR = "RAY_AUTH_MODE"
HOW_TO_SET = ("set RAY_AUTH_TOKEN to the cluster's token (on the head: `ray get-auth-token`), "
              "or RAY_AUTH_TOKEN_PATH to a file holding it")


def find_token() -> str | None:
    """The user's Ray token, where Ray looks for it; None when there is none."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.expanduser().read_text().strip() or None
    except OSError:
        return None


def use_token_auth() -> bool:
    """Before connecting to a cluster by address: token mode when the user named a token
    (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH) and set no mode. An explicit RAY_AUTH_MODE is the
    user's choice and is kept."""
    mode = os.environ.get(MODE_VAR)
    if mode is not None:
        return mode.lower() == "token"
    named = os.environ.get("RAY_AUTH_TOKEN", "").strip() or os.environ.get("RAY_AUTH_TOKEN_PATH")
    if not named or find_token() is None:
        return False
    os.environ[MODE_VAR] = "token"
    try:  # Ray caches its config: re-read it, as ray.init does when it turns token auth on
        # (private: checked against ray 2.60.0; tests/orchestrator/test_private_apis.py)
        from ray._raylet import Config

        Config.initialize("")
    except ImportError:
        pass
    return True


def auth_headers() -> dict[str, str]:
    """HTTP headers for Ray's dashboard / Jobs API: the bearer token, when there is one."""
    token = find_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def auth_problem(exc: BaseException) -> str | None:
    """What to set, when `exc` is a head refusing this client's token (401 / 403)."""
    text = str(exc)
    if "Missing authentication token" in text or "no authentication token" in text:
        return f"the Ray cluster requires a token and none was sent: {HOW_TO_SET}"
    if "Invalid authentication token" in text or "token is invalid" in text or \
            "InvalidAuthToken" in text:
        return f"the Ray cluster refused this token: {HOW_TO_SET}"
    return None
