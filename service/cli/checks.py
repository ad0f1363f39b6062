"""``claimsieve check`` and ``extract``: one response, verified or only split into claims."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from service.settings import Settings


def add(commands: Any) -> None:
    check = commands.add_parser("check", help="check a text and print the verdicts")
    check.add_argument("text")
    check.add_argument("--prompt")
    check.add_argument("--corpus")
    check.add_argument("--json", action="store_true", help="print the API's JSON")
    check.add_argument("--no-store", action="store_true", help="do not keep the check")
    check.set_defaults(run=_check)

    extract = commands.add_parser(
        "extract", help="split a text into claims with spans (no corpus, no verdicts)"
    )
    extract.add_argument("text", nargs="?", help="the response text")
    extract.add_argument("--prompt", help="the prompt the text answers (antecedents)")
    extract.add_argument("--json", action="store_true", help="print JSON")
    extract.add_argument(
        "--jsonl",
        metavar="IN.jsonl",
        help='rows {"id", "response", "prompt"?} ("-" for stdin); one JSON row out per row in',
    )
    extract.set_defaults(run=_extract)


def _claim_rows(check: dict[str, Any]) -> str:
    lines = []
    for number, claim in enumerate(check["claims"], start=1):
        verdict = claim["verdict"] or f"(not checked: {claim['checkworthy_reason']})"
        confidence = f"{claim['confidence']:.2f}" if claim["confidence"] is not None else "-"
        flag = "  FLAGGED" if claim["flagged"] else ""
        lines.append(f"{number:>3}. {claim['text']}")
        lines.append(f"     {verdict}  confidence {confidence}{flag}")
        if claim["evidence"]:
            best = claim["evidence"][0]
            sentence = best["text"][best["span"]["start"] : best["span"]["end"]]
            lines.append(
                f"     evidence [{best['title']}]: "
                + textwrap.shorten(sentence, 110, placeholder=" …")
            )
        for reason in claim["reasons"]:
            if reason["code"] not in ("aligned",):
                lines.append(f"     reason {reason['code']}: {reason['message']}")
    summary = check["summary"]
    factuality = summary["factuality"]
    lines.append("")
    lines.append(
        f"{summary['checkworthy']} checkworthy of {summary['claims']} claims; "
        f"flagged {summary['flagged']}; factuality "
        + (f"{factuality:.2f}" if factuality is not None else "n/a")
        + f"  (corpus {check['corpus']['name']} v{check['corpus']['version']})"
    )
    return "\n".join(lines)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from service import components
    from service.schemas import CheckOut
    from service.store import checks as check_store

    built = components.build(settings)
    with built.sessions() as db:
        result = built.checker.check(args.text, prompt=args.prompt, corpus=args.corpus, db=db)
        check = (
            CheckOut.from_result(result)
            if args.no_store
            else CheckOut.from_row(check_store.record(db, result, created_by="cli"))
        )
    out = check.model_dump(mode="json")
    print(json.dumps(out, indent=2, ensure_ascii=False) if args.json else _claim_rows(out))
    return 0


def _claim_json(claim: Any) -> dict[str, Any]:
    return {
        "text": claim.text,
        "spans": [{"start": s.start, "end": s.end} for s in claim.spans],
        "checkworthy": claim.checkworthy,
        "reason": claim.reason,
    }


def _extract_rows(path: str, extractor: Any) -> int:
    """One output row per input row; a bad row is reported and skipped, the rest go on."""
    from tqdm import tqdm

    from claims.errors import ClaimsError

    source = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    failed = 0
    with source, tqdm(desc="extract", unit="response", file=sys.stderr) as bar:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("response"), str):
                    raise ValueError("a row needs a string 'response'")
                prompt = row.get("prompt")
                if prompt is not None and not isinstance(prompt, str):
                    raise ValueError("'prompt' must be a string")
                result = extractor.extract(row["response"], prompt=prompt)
            except (ValueError, ClaimsError) as exc:
                failed += 1
                message = exc.message if isinstance(exc, ClaimsError) else str(exc)
                print(f"error: {path}:{number}: {message}", file=sys.stderr)
                continue
            out: dict[str, Any] = {"id": row.get("id", number), "claims": []}
            out["claims"] = [_claim_json(c) for c in result.claims]
            if result.notices:
                out["warnings"] = [{"code": n.code, "message": n.message} for n in result.notices]
            print(json.dumps(out, ensure_ascii=False))
            bar.update()
    return 1 if failed else 0


def _extract(args: argparse.Namespace, settings: Settings) -> int:
    from claims.extraction import ParseExtractor
    from claims.nlp import load_spacy
    from service.components import make_extractor

    parse = ParseExtractor(load_spacy(settings.spacy_model), settings.max_text_chars)
    extractor = make_extractor(settings, parse)
    if args.jsonl:
        return _extract_rows(args.jsonl, extractor)
    if args.text is None:
        print("error: give a TEXT or --jsonl FILE", file=sys.stderr)
        return 2
    result = extractor.extract(args.text, prompt=args.prompt)
    if args.json:
        body = {
            "extractor": result.made_by,
            "claims": [_claim_json(c) for c in result.claims],
            "warnings": [{"code": n.code, "message": n.message} for n in result.notices],
        }
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    for notice in result.notices:
        print(f"warning ({notice.code}): {notice.message}", file=sys.stderr)
    for number, claim in enumerate(result.claims, start=1):
        where = ", ".join(f"{s.start}-{s.end}" for s in claim.spans)
        mark = "" if claim.checkworthy else f"   (not checked: {claim.reason})"
        print(f"{number:>3}. {claim.text}{mark}\n     [{where}] {claim.source_text!r}")
    return 0
