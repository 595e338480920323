"""Ray's token, from the client's side: found where Ray's own tools look, sent to the Jobs API,
and a refusal turned into what to set."""

from __future__ import annotations

from orchestrator.cluster.raytoken import auth_headers, auth_problem, find_token, use_token_auth


def test_the_token_comes_from_the_variable_else_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    assert find_token() is None and auth_headers() == {}
    (tmp_path / "token").write_text("from-file\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    assert find_token() == "from-file"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert auth_headers() == {"Authorization": "Bearer from-env"}


def test_token_mode_is_the_users_choice_or_off_without_a_named_token(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert use_token_auth() is False  # ~/.ray/auth_token alone: Ray writes it for every init
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "t")
    assert use_token_auth() is False  # an explicit mode is kept


def test_a_refused_token_says_what_to_set():
    assert "requires a token and none was sent" in auth_problem(
        RuntimeError("Missing authentication token"))
    assert "refused this token" in auth_problem(RuntimeError("InvalidAuthToken: no"))
    assert auth_problem(RuntimeError("connection refused")) is None
