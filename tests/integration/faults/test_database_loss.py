"""PostgreSQL crashed and restarted during a burst: 503s (not 500s), nothing accepted is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, Response

from service.app import create_app
from service.config import Settings
from service.data.session import get_engine
from tests.integration.faults.harness import prepare, query
from tests.integration.faults.scenarios import database_restarts
from tests.integration.faults.servers import PrivatePostgres, PrivateRedis


@pytest.mark.integration
def test_a_database_restart_answers_503_and_loses_no_accepted_submission(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis, private_pg: PrivatePostgres
) -> None:
    report = database_restarts(
        tmp_path, database_url, private_redis, private_pg, submissions=120, outage=2.0
    )
    figures, notes = report.tally, report.notes
    context = f"{figures}\n{notes}\n{report.logs}"
    codes = report.codes()
    # The burst ran into the outage, and was told to come back, never that the server broke.
    assert codes[503] > 0, context
    assert set(codes) <= {202, 200, 503}, context
    assert all(o.retry_after for o in report.outcomes if 503 in o.codes), context
    # Every path answers 503 with Retry-After while the database is down: API and portal.
    for probe in notes["probes while down"]:
        assert probe.status == 503 and probe.retry_after, (probe, context)
    assert {p.content_type.split(";")[0] for p in notes["probes while down"]} == {
        "application/problem+json",
        "text/html",
    }, context
    # ... and recovers by itself (no process was restarted).
    assert [p.status for p in notes["probes after"]] == [200, 200, 202, 200, 200], context
    assert notes["unhandled errors in web log"] == 0, context
    # Every learner's submission was accepted in the end, once, and graded once.
    assert all(o.accepted for o in report.outcomes), context
    assert report.settled, context
    assert figures.submissions == figures.rows == 121, context
    assert figures.lost == 0 and figures.wrong == 0 and figures.graded == 121, context
    assert figures.duplicated == 0, context


@pytest.fixture
def web_app(database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The web app in this process, on the private database; and the learner's API token."""
    (token,) = prepare(database_url)
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        secret_key="fault-secret",
        data_dir=tmp_path,
        dev=True,
    )
    yield create_app(settings, TESTING=True, WTF_CSRF_ENABLED=False), token
    get_engine(database_url).dispose()


def _crash_database_once(app: Flask, pg: PrivatePostgres, hook: str) -> dict[str, bool]:
    """Stop PostgreSQL (immediate) from inside the next request, at `hook`."""
    armed = {"armed": False}

    def crash(response: Response | None = None) -> Response | None:
        if armed["armed"]:
            armed["armed"] = False
            pg.stop("immediate")
        return response

    if hook == "before_request":
        app.before_request(crash)  # runs after the portal has loaded the logged-in user
    else:
        app.after_request(crash)  # the answer is made; only closing the session is left
    return armed


@pytest.mark.integration
def test_the_database_lost_in_the_middle_of_a_portal_page_answers_503(
    web_app: tuple[Flask, str], private_pg: PrivatePostgres
) -> None:
    app, _ = web_app
    armed = _crash_database_once(app, private_pg, "before_request")
    client = app.test_client()
    (email,) = query(app.config["GRADSCHOOL"].database_url, "SELECT email FROM users")[0]
    assert (
        client.post("/login", data={"email": email, "password": "correct-horse"}).status_code == 302
    )
    armed["armed"] = True
    page = client.get("/")  # the error page must not reload the user from the lost database
    private_pg.start()
    assert page.status_code == 503 and page.headers["Retry-After"], page.text
    assert page.mimetype == "text/html"
    assert client.get("/").status_code == 200  # and the next request reconnects by itself


@pytest.mark.integration
def test_the_database_lost_after_the_answer_is_made_does_not_turn_it_into_a_500(
    web_app: tuple[Flask, str], private_pg: PrivatePostgres
) -> None:
    app, token = web_app
    armed = _crash_database_once(app, private_pg, "after_request")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    armed["armed"] = True
    answer = client.get("/api/v1/exercises", headers=headers)
    private_pg.start()
    assert answer.status_code == 200, answer.text
    assert client.get("/api/v1/exercises", headers=headers).status_code == 200
