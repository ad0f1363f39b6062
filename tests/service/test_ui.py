"""The triage page's files: served without a key, with headers that keep other code out.

The page itself is driven in Chromium by tests/e2e/test_triage_ui.py.
"""

from __future__ import annotations

from tests.factories import Api, assert_problem


def test_the_page_and_its_files_are_served_with_security_headers(api: Api) -> None:
    page = api.client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/ui.js" defer></script>' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    script = api.client.get("/ui/ui.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text  # text from the service goes in as text only
    assert api.client.get("/ui/ui.css").status_code == 200
    assert_problem(api.client.get("/ui/..%2fapp.py"), 404)
    assert_problem(api.client.get("/ui/secrets.txt"), 404, "not_found")


def test_every_html_page_gets_the_headers(api: Api) -> None:
    for path in ("/docs", "/redoc", "/ui"):
        page = api.client.get(path)
        assert page.headers["content-type"].startswith("text/html"), path
        assert page.headers["x-frame-options"] == "DENY", path
        assert page.headers["x-content-type-options"] == "nosniff", path
        assert page.headers["referrer-policy"] == "no-referrer", path
    assert "x-frame-options" not in api.client.get("/healthz").headers  # JSON is left alone
