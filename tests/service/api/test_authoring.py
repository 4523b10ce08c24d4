"""Exercise authoring: validation, the worker's dry run, versions; nothing saved on failure."""

from __future__ import annotations

from typing import Any

import yaml
from flask.testing import FlaskClient

from tests.service.api.helpers import ok, problem
from tests.service.api.world import World, authored_spec


def url(world: World, tail: str = "") -> str:
    return f"/api/v1/courses/{world.course}/exercises{tail}"


def post_yaml(api: FlaskClient, world: World, path: str, data: Any, method: str = "POST") -> Any:
    text = data if isinstance(data, str) else yaml.safe_dump(data)
    headers = {**world.headers("instructor"), "Content-Type": "application/yaml"}
    return api.open(path, method=method, data=text, headers=headers)


def test_dry_run_returns_the_worked_examples_reference_and_graph(
    api: FlaskClient, world: World
) -> None:
    run = ok(post_yaml(api, world, url(world, "/dry-run"), authored_spec("fresh-neuron")))
    assert run["status"] == "done" and run["problems"] == []
    values = run["result"]["reference"]["values"]
    assert abs(values["w"] - -3.31703e-06) < 1e-9, values
    graph = run["result"]["graph"]
    assert {n["op"] for n in graph["nodes"]} >= {"SigmoidBackward0", "AccumulateGrad"}
    assert graph["edges"] and graph["output"]
    problem(api.get(url(world, "/fresh-neuron"), headers=world.headers("instructor")), 404)
    again = ok(
        api.get(
            f"/api/v1/courses/{world.course}/exercise-dry-runs/{run['id']}",
            headers=world.headers("instructor"),
        )
    )
    assert again["result"] == run["result"]


def test_a_wrong_worked_example_fails_the_dry_run_and_saves_nothing(
    api: FlaskClient, world: World
) -> None:
    data = authored_spec(
        "wrong-neuron", worked_example={"w": 1.0, "b": -1.65852e-06, "x": -4.97555e-06}
    )
    run = ok(post_yaml(api, world, url(world, "/dry-run"), data))
    assert run["status"] == "failed"
    assert [p["field"] for p in run["problems"]] == ["worked_example.w"]
    body = problem(post_yaml(api, world, url(world), data), 422)
    assert body["errors"][0]["field"] == "worked_example.w"
    problem(api.get(url(world, "/wrong-neuron"), headers=world.headers("instructor")), 404)


def test_create_then_update_makes_versions(api: FlaskClient, world: World) -> None:
    data = authored_spec("versioned-neuron")
    made = ok(post_yaml(api, world, url(world), data), 201)
    assert made["outcome"] == "created" and made["version"] == 1
    problem(post_yaml(api, world, url(world), data), 409)
    data["sig_figs"] = 4
    changed = ok(post_yaml(api, world, url(world, "/versioned-neuron"), data, method="PUT"))
    assert changed["outcome"] == "updated" and changed["version"] == 2
    same = ok(post_yaml(api, world, url(world, "/versioned-neuron"), data, method="PUT"))
    assert same["outcome"] == "unchanged" and same["version"] == 2
    detail = ok(api.get(url(world, "/versioned-neuron"), headers=world.headers("ta")))
    assert [v["number"] for v in detail["versions"]] == [1, 2] and detail["spec"]["sig_figs"] == 4
    listed = ok(api.get("/api/v1/exercises", headers=world.headers("learner")))["items"]
    assert "versioned-neuron" in {e["slug"] for e in listed}
    outsiders = ok(api.get("/api/v1/exercises", headers=world.headers("other_instructor")))["items"]
    assert "versioned-neuron" not in {e["slug"] for e in outsiders}


def test_json_form_of_the_file_works_too(api: FlaskClient, world: World) -> None:
    resp = api.post(
        url(world), json=authored_spec("json-neuron"), headers=world.headers("instructor")
    )
    assert ok(resp, 201)["outcome"] == "created"


def test_invalid_exercise_files_name_each_problem(api: FlaskClient, world: World) -> None:
    cases: list[tuple[Any, int, str]] = [
        ("slug: [unclosed", 400, "YAML"),
        ("- just\n- a list\n", 422, "mapping"),
        ("a: &x [1]\nb: *x\n", 400, "aliases"),
        ({**authored_spec("bad-kind"), "kind": "no_such_kind"}, 422, "kind"),
        ({**authored_spec("bad-forward"), "forward": "z = w * x + b\nimport os\n"}, 422, "forward"),
        (
            {**authored_spec("bad-part"), "parts": [{"name": "w", "label": "w", "wrt": "q"}]},
            422,
            "parts.0.wrt",
        ),
        ({**authored_spec("bad-extra"), "colour": "red"}, 422, "colour"),
        ({**authored_spec("Bad Slug")}, 422, "slug"),
    ]
    for data, status, needle in cases:
        body = problem(post_yaml(api, world, url(world), data), status)
        text = body["detail"] + " ".join(e["field"] for e in body.get("errors", []))
        assert needle in text, (data, body)
    resp = api.post(
        url(world), data="x", headers={**world.headers("instructor"), "Content-Type": "text/plain"}
    )
    problem(resp, 415)
    assert (
        ok(api.get(url(world), headers=world.headers("instructor")))["items"][0]["slug"]
        == world.exercise
    )
    assert len(ok(api.get(url(world), headers=world.headers("instructor")))["items"]) == 1


def test_update_checks_the_slug_and_ownership(api: FlaskClient, world: World) -> None:
    problem(
        post_yaml(
            api, world, url(world, "/sigmoid-neuron"), authored_spec("sigmoid-neuron"), "PUT"
        ),
        404,
    )
    problem(
        post_yaml(api, world, url(world, f"/{world.exercise}"), authored_spec("other-slug"), "PUT"),
        422,
    )
    problem(post_yaml(api, world, url(world), authored_spec("sigmoid-neuron")), 409)
