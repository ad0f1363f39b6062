"""Every route answers 401 without a key and 403 to a key whose role may not use it.

The roles a route allows are the ones its dependency declares (``service.deps.require``);
the test fails for a /v1 or integration route that declares none and is not listed as open.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

from tests.factories import Api, assert_problem

OPEN = {
    "/integrations/label-studio/health",
    "/integrations/label-studio/config",
}
ROLES = ("admin", "trainer", "pipeline")


def declared(dependant: Any) -> tuple[str, ...] | None:
    """The roles named by the first role check among a route's dependencies."""
    for sub in dependant.dependencies:
        roles = getattr(sub.call, "roles", None)
        if roles is not None:
            return tuple(roles)
        found = declared(sub)
        if found is not None:
            return found
    return None


def api_routes(app: Any) -> list[APIRoute]:
    """Every endpoint of the app (FastAPI keeps an included router's routes inside it)."""
    out = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "effective_route_contexts"):
            out += [
                c.original_route
                for c in route.effective_route_contexts()
                if isinstance(c.original_route, APIRoute)
            ]
    return out


def guarded_routes(api: Api) -> list[tuple[str, str, tuple[str, ...]]]:
    out = []
    for route in api_routes(api.client.app):  # type: ignore[attr-defined]
        if not route.path.startswith(("/v1", "/integrations")) or route.path in OPEN:
            continue
        roles = declared(route.dependant)
        assert roles is not None, f"{route.path} checks no key"
        # Path parameters that name nothing, so that no allowed call changes anything.
        path = re.sub(r"\{key_id\}", "999999", route.path)
        path = re.sub(r"\{[^}]+\}", "nothing-here", path)
        out += [(method, path, roles) for method in sorted(route.methods)]
    return out


def test_every_route_answers_401_without_a_key_and_403_to_other_roles(api: Api) -> None:
    routes = guarded_routes(api)
    documented = [
        (method.upper(), path)
        for path, operations in api.client.get("/openapi.json").json()["paths"].items()
        for method in operations
        if path.startswith(("/v1", "/integrations")) and path not in OPEN
    ]
    assert len(routes) == len(documented) >= 35, (len(routes), len(documented))
    checked = 0
    for method, path, roles in routes:
        bare = api.client.request(method, path)
        assert_problem(bare, 401, "missing_credentials")
        for role in ROLES:
            answer = api.client.request(method, path, headers=api.headers(role))
            if role == "admin" or role in roles:
                assert answer.status_code not in (401, 403), (method, path, role, answer.text)
            else:
                assert_problem(answer, 403, "forbidden_role")
            checked += 1
    assert checked == 3 * len(routes)


def test_the_open_routes_need_no_key(api: Api) -> None:
    for path in (*OPEN, "/healthz", "/readyz", "/metrics", "/ui"):
        assert api.client.get(path).status_code == 200, path
