"""Behind a reverse proxy: TRUST_PROXY_HOPS makes the client's address the one rate limits
and logs see; without it, X-Forwarded-For is ignored (any client could send one)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from flask import request

from service.app import create_app
from service.config import Settings, load_settings
from service.errors import ConfigError

PROXY = "10.0.0.2"  # the proxy's address: what the web sees as the peer


def _wrong_logins(settings: Settings, clients: list[str]) -> tuple[list[int], str]:
    """One failed login per entry, each from a client the proxy names in X-Forwarded-For;
    then who the app takes a request from 198.51.100.7 to be ("address scheme")."""
    app = create_app(settings, TESTING=True)
    app.add_url_rule("/_whoami", "whoami", lambda: f"{request.remote_addr} {request.scheme}")
    web = app.test_client()
    page = web.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    codes = []
    for client in clients:
        resp = web.post(
            "/login",
            data={"email": "nobody@example.test", "password": "wrong", "csrf_token": token[1]},
            headers={
                "X-Forwarded-For": client,
                "X-Forwarded-Proto": "https",
                "Referer": "https://localhost/login",  # CSRF checks it over HTTPS
            },
            environ_base={"REMOTE_ADDR": PROXY},
        )
        codes.append(resp.status_code)
    seen = web.get(
        "/_whoami",
        headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": PROXY},
    )
    return codes, seen.get_data(as_text=True)


def test_trust_proxy_hops_puts_the_client_address_behind_the_proxy_in_rate_limits(
    settings: Settings,
) -> None:
    assert load_settings({"SECRET_KEY": "x"}).trust_proxy_hops == 0
    assert load_settings({"SECRET_KEY": "x", "TRUST_PROXY_HOPS": "1"}).trust_proxy_hops == 1
    with pytest.raises(ConfigError, match="TRUST_PROXY_HOPS"):
        load_settings({"SECRET_KEY": "x", "TRUST_PROXY_HOPS": "yes"})

    # Login allows 10 wrong passwords a minute per client address.
    eleven = ["203.0.113.1"] * 10 + ["203.0.113.2"]
    # Default: the headers are ignored; every learner behind the proxy shares its budget.
    codes, whoami = _wrong_logins(settings, eleven)
    assert codes == [401] * 10 + [429]
    assert whoami == f"{PROXY} http"
    # One trusted hop: each client has its own budget, and is who the app (and its logs) see.
    behind = dataclasses.replace(settings, trust_proxy_hops=1)
    codes, whoami = _wrong_logins(behind, eleven)
    assert codes == [401] * 11
    assert whoami == "198.51.100.7 https"
