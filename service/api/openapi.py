"""The API's OpenAPI 3.1 document, generated from the views by spectree, and its docs page.

Each view is declared with `@operation(...)`: its pydantic request models (the `json`
and `query` parameters of the view) are validated before it runs, with failures
answered as problem+json naming the field; its response model is validated on the way
out; and everything lands in /api/v1/openapi.json. The docs page serves Swagger UI from
the installed `swagger-ui-bundle-v2` package, never from a CDN.
"""

from __future__ import annotations

import copy
import functools
import json
import typing
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request, send_from_directory
from pydantic import BaseModel, ConfigDict
from spectree import Response as SpecResponse
from spectree import SecurityScheme, SpecTree
from spectree.models import SecureType, SecuritySchemeData

from service.api.blueprint import bp, json_body
from service.api.idempotent import idempotent
from service.errors import ValidationFailed

BODY_METHODS = ("POST", "PUT", "PATCH")
# Every authenticated operation may answer these; each is a problem+json document.
COMMON_ERRORS = (400, 401, 403, 404, 422, 429)
BODY_ERRORS = (413, 415)


class FieldProblem(BaseModel):
    """One field's problem."""

    field: str
    message: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def _raise_problem(
    req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any
) -> None:
    """spectree's `before` hook: a request that does not validate is a 422 naming each field."""
    if error is None:
        return
    errors = [
        {"field": _location(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in error.errors()  # type: ignore[attr-defined]
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ValidationFailed(f"{first['field']}: {first['message']}{more}", errors=errors)


api_spec = SpecTree(
    "flask",
    mode="strict",
    title="gradschool API",
    version="1",
    description=(
        "Grading of gradient exercises against PyTorch autograd: courses, enrolment, "
        "assignments, exercise authoring, submissions, regrades, gradebooks and analytics. "
        "Authenticate with `Authorization: Bearer <token>`. Errors are RFC 9457 "
        "`application/problem+json`."
    ),
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    validation_error_status=422,
    validation_error_model=Problem,
    before=_raise_problem,
    security_schemes=[
        SecurityScheme(
            name="bearerAuth", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer")
        )
    ],
    security={"bearerAuth": []},
    page_templates={},
    annotations=False,
)

# Per operation id: what spectree does not express (other media types, headers, public).
_EXTRAS: dict[str, dict[str, Any]] = {}


def operation(
    *,
    tags: list[str],
    ok: int = 200,
    also_ok: tuple[int, ...] = (),
    resp: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    public: bool = False,
    creates: bool = False,
    key_header: bool = False,
    request_body: dict[str, Any] | None = None,
    response_content: dict[str, Any] | None = None,
    response_headers: dict[int, dict[str, Any]] | None = None,
    schemas: tuple[type[BaseModel], ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view as an API operation (see the module docstring).

    The decorated view returns a response model (or a tuple with status and headers); the
    result is a Flask view.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        op_id = view.__name__
        for model in schemas:
            api_spec._add_model(model)  # referenced by `request_body`
        hints = typing.get_type_hints(view)
        json_model, query_model = hints.get("json"), hints.get("query")
        has_json = json_model is not None
        codes: dict[int, type[BaseModel] | None] = {code: resp for code in (ok, *also_ok)}
        for code in (() if public else COMMON_ERRORS) + errors:
            codes.setdefault(code, Problem)
        if has_json or request_body:
            for code in BODY_ERRORS:
                codes.setdefault(code, Problem)
        spec_resp = SpecResponse(
            *[f"HTTP_{c}" for c, m in codes.items() if m is None],
            **{f"HTTP_{c}": m for c, m in codes.items() if m is not None},
        )

        @functools.wraps(view)
        def call(*args: Any, **kwargs: Any) -> Any:
            # The validated models, as the view's `json` and `query` arguments.
            context = request.context  # type: ignore[attr-defined]
            if json_model is not None:
                kwargs["json"] = context.json
            if query_model is not None:
                kwargs["query"] = context.query
            return view(*args, **kwargs)

        inner: Callable[..., Any] = idempotent(call) if creates else call
        validated = api_spec.validate(
            json=json_model, query=query_model, resp=spec_resp, tags=tags, operation_id=op_id
        )(inner)

        @functools.wraps(validated)
        def strict_json(*args: Any, **kwargs: Any) -> Any:
            if has_json and request.method in BODY_METHODS:
                json_body()  # 400 for a body that is not a JSON object, before validation
            return validated(*args, **kwargs)

        _EXTRAS[op_id] = {
            "ok": ok,
            "public": public,
            "creates": creates or key_header,
            "request_body": request_body,
            "response_content": response_content,
            "response_headers": response_headers or {},
        }
        return strict_json

    return decorate


PARAMETERS = {
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes a retry safe: a second request with the same key (and the same body) "
            "replays the first answer instead of creating again. 1 to 200 characters."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    }
}
HEADERS = {
    "Location": {"description": "The URL of what was created.", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string"},
    },
}


def build_document() -> dict[str, Any]:
    """The OpenAPI document of the current app's API (call inside an app context)."""
    doc = copy.deepcopy(api_spec._generate_spec())
    for methods in doc["paths"].values():
        for op in methods.values():
            _complete(op, _EXTRAS.get(op["operationId"], {}))
    doc["components"]["parameters"] = PARAMETERS
    doc["components"]["headers"] = HEADERS
    doc["info"]["x-problem-types"] = "https://gradschool.dev/problems/{code}"
    return doc


def _complete(op: dict[str, Any], extra: dict[str, Any]) -> None:
    responses = op["responses"]
    for code, response in responses.items():
        content = response.get("content", {})
        if int(code) >= 400 and "application/json" in content:
            response["content"] = {"application/problem+json": content["application/json"]}
        if code in ("429", "503"):
            response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    for code, headers in extra.get("response_headers", {}).items():
        responses[str(code)].setdefault("headers", {}).update(headers)
    if extra.get("response_content"):
        responses[str(extra["ok"])]["content"] = extra["response_content"]
    if extra.get("request_body"):
        op["requestBody"] = extra["request_body"]
    if extra.get("creates"):
        op["parameters"].append({"$ref": "#/components/parameters/IdempotencyKey"})
        location = {"Location": {"$ref": "#/components/headers/Location"}}
        responses[str(extra["ok"])].setdefault("headers", {}).update(location)
    if extra.get("public"):
        op["security"] = []
    for parameter in op["parameters"]:
        if parameter.get("in") == "path" and parameter["schema"].get("type") == "integer":
            # Ids are digits (Flask's int converter); beyond 2**31 - 1 they are 404s.
            parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
        if not parameter.get("description"):
            parameter.pop("description", None)


def document() -> dict[str, Any]:
    """The document, built once per app."""
    cached: dict[str, Any] | None = current_app.extensions.get("gradschool.openapi")
    if cached is None:
        cached = build_document()
        current_app.extensions["gradschool.openapi"] = cached
    return cached


DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>gradschool API</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="icon" href="{assets}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{assets}/swagger-ui-standalone-preset.js"></script>
  <script src="{init}"></script>
</body>
</html>
"""

INIT_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: %s,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    persistAuthorization: false
  });
});
"""

# Swagger UI sets inline styles; everything else keeps the site's policy.
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


@bp.get("/openapi.json")
@operation(
    tags=["meta"],
    public=True,
    response_content={"application/json": {"schema": {"type": "object"}}},
)
def openapi_json() -> Response:
    """The OpenAPI 3.1 document of this API."""
    return current_app.response_class(json.dumps(document(), indent=1), mimetype="application/json")


@bp.get("/docs")
def docs() -> Response:
    """Browsable API docs (Swagger UI, served from this server)."""
    prefix = bp.url_prefix
    html = DOCS_HTML.format(assets=f"{prefix}/docs/assets", init=f"{prefix}/docs/init.js")
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = DOCS_CSP
    return resp


@bp.get("/docs/init.js")
def docs_init() -> Response:
    """The script that starts Swagger UI on this API's document."""
    body = INIT_JS % json.dumps(f"{bp.url_prefix}/openapi.json")
    return Response(body, mimetype="text/javascript")


@bp.get("/docs/assets/<path:filename>")
def docs_asset(filename: str) -> Response:
    """Swagger UI's files, from the installed package."""
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
