"""The real thing: `claimsieve serve` in a subprocess, real models, real HTTP, the README's curl."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.processes import ROOT, free_port, serve, stop, wait_ready


def readme_curl() -> str:
    """The README's first `curl … /v1/checks` example, verbatim."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^curl -s -X POST http://127\.0\.0\.1:8000/v1/checks .*$", readme, re.M)
    assert match, "the README lost its curl example"
    return match.group(0)


REPEATED = (
    '"RuntimeError" is raised if the frame is currently executing. len: Return the number of '
    "items in a container. exec: Execute the given source in the context of globals and locals. "
    "RuntimeWarning: Base class for warnings about dubious runtime behavior. This is equivalent "
    "to (real + imag*1j) where imag defaults to 0. In a given pattern, a given name can only be "
    "bound once. If only globals is given, locals defaults to it. In the second form, the "
    "callable is called until it returns the sentinel. Changed in version 3.6: Added the \"'_'\" "
    "option (see also **PEP 515**). Changed in version 3.6: Added the \"'_'\" option (see also "
    "**PEP 515**). The *conversion* field causes a type coercion before formatting. This table "
    'lists the sequence operations sorted in ascending priority. The "global" statement must '
    'precede all uses of the listed names. Raising "0.0" to a negative power results in a '
    '"ZeroDivisionError". This form may only be used at the module level.'
)


@pytest.mark.models
def test_readme_example_against_the_real_server_and_a_restart(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "server.log"
    server = serve(tmp_path / "data", port, log, "--no-auth")
    try:
        wait_ready(server, port, log, limit=600)
        assert "building corpus python-reference" in log.read_text()
        command = readme_curl().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        sent = json.loads(shlex.split(command)[-1])["text"]
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120)
        check = json.loads(done.stdout)
        assert check["corpus"]["name"] == "python-reference"
        assert check["claims"], check
        for claim in check["claims"]:
            assert (
                "".join(sent[s["start"] : s["end"]] for s in claim["spans"]) == claim["source_text"]
            )
        assert check["claims"][0]["verdict"] == "SUPPORTED"
        assert check["claims"][0]["evidence"][0]["document_id"] == "topic:for"
        # The README's false claim flips one word of the evidence: refuted, and the
        # reason points at the word on both sides.
        flipped = check["claims"][1]
        assert flipped["source_text"] == "Python lists are immutable"
        assert flipped["verdict"] == "REFUTED", flipped
        antonym = flipped["reasons"][0]
        assert antonym["code"] == "antonym", flipped["reasons"]
        span = antonym["claim"]["span"]
        assert flipped["text"][span["start"] : span["end"]] == "immutable"
        cited = antonym["evidence"]
        passage = next(e for e in flipped["evidence"] if e["passage_id"] == cited["passage_id"])
        span = cited["span"]
        assert passage["text"][span["start"] : span["end"]].lower() == "mutable"
        true = httpx.post(
            f"http://127.0.0.1:{port}/v1/checks",
            json={"text": "Python lists are mutable."},
            timeout=120,
        ).json()
        assert [c["verdict"] for c in true["claims"]] == ["SUPPORTED"], true
        # A sentence found in passages under several headings (bench/bulk.py's item r94
        # once answered 500: its contrast context had not been parsed).
        repeated = httpx.post(
            f"http://127.0.0.1:{port}/v1/checks",
            json={"text": REPEATED, "store": False},
            timeout=120,
        )
        assert repeated.status_code == 200 and repeated.json()["claims"], repeated.text

        # A user's own corpus from an uploaded file, embedded by the real MiniLM.
        base = f"http://127.0.0.1:{port}/v1/corpora"
        assert httpx.post(base, json={"name": "handbook"}, timeout=30).status_code == 201
        handbook = b"# Leave\n\nEmployees get 25 days of paid leave a year.\n"
        added = httpx.post(
            f"{base}/handbook/documents", files={"file": ("leave.md", handbook)}, timeout=120
        )
        assert added.status_code == 201, added.text
        hits = httpx.get(
            f"{base}/handbook/search", params={"q": "how many holidays", "k": 1}, timeout=30
        ).json()["results"]
        assert (hits[0]["document_id"], hits[0]["title"]) == ("leave.md", "Leave")
    finally:
        stop(server)

    log.write_text("")
    server = serve(tmp_path / "data", port, log, "--no-auth")
    try:
        wait_ready(server, port, log, limit=120)
        assert "building corpus" not in log.read_text()
        again = httpx.get(f"http://127.0.0.1:{port}/v1/checks/{check['id']}", timeout=30)
        assert again.status_code == 200
        assert again.json()["claims"] == check["claims"]
    finally:
        stop(server)
