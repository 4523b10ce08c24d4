"""Two web processes (granian) on PostgreSQL and Redis: a token revoked through one stops
working on both at once (the hot caches hear each other's changes), although each
process keeps its lookups far longer than the test runs (HOT_CACHE_SECONDS=600)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.stack import Stack, start_web_only, wait_http


def _codes(stack: Stack, token: str, n: int) -> list[int]:
    """n calls of GET /me, each on a new connection, 8 at a time (both processes take some)."""

    def one(_: int) -> int:
        with httpx.Client(base_url=stack.base_url, timeout=10) as http:
            return http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.integration
def test_a_revoked_token_stops_at_once_on_every_web_process(
    tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    stack = start_web_only(
        tmp_path, pg_url, redis_prefix + "cache-test:", {"HOT_CACHE_SECONDS": "600"}
    )
    try:
        wait_http(stack.base_url + "/login")
        assert _codes(stack, stack.token, 64) == [200] * 64  # both processes cache the token
        with stack.client() as http:
            (mine,) = http.get("/api/v1/tokens").json()["items"]
            assert http.delete(f"/api/v1/tokens/{mine['id']}").status_code == 204
        assert _codes(stack, stack.token, 64) == [401] * 64, stack.log_tail()
    finally:
        stack.stop("web")
