"""Writes ``claims/lexicon/antonyms.tsv``: the direct antonyms of WordNet 3.0.

Reads the WordNet database files of the Debian package ``wordnet-base``
(``/usr/share/wordnet/data.{adj,adv,noun,verb}``) and keeps every lexical
antonym pointer (``!``): a word sense and the word sense it is the opposite
of, as "word, part of speech, antonym" rows (multi-word lemmas with spaces,
lower case, each pair in both directions, sorted). Nothing of WordNet but
these pairs is kept; its licence, which allows redistribution with its
notice, is written beside the table (``claims/lexicon/WORDNET_LICENSE``).

    apt-get install wordnet-base
    python bench/wordnet_antonyms.py [--wordnet /usr/share/wordnet]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POS = {"adj": "a", "adv": "r", "noun": "n", "verb": "v"}
_MARKER = re.compile(r"\((a|ip|p)\)$")  # adjective position markers, e.g. "galore(ip)"
NOTICE = Path("/usr/share/doc/wordnet-base/copyright")


def _words(fields: list[str]) -> tuple[list[str], int]:
    """The synset's words and the index where its pointers start."""
    count = int(fields[3], 16)
    words = [_MARKER.sub("", fields[4 + 2 * i]).replace("_", " ").lower() for i in range(count)]
    return words, 4 + 2 * count


def read(folder: Path) -> set[tuple[str, str, str]]:
    synsets: dict[tuple[str, str], list[str]] = {}
    pointers: list[tuple[str, str, int, str, str, int]] = []
    for name, pos in POS.items():
        with (folder / f"data.{name}").open(encoding="latin-1") as handle:
            for line in handle:
                if line.startswith("  "):  # the licence header
                    continue
                fields = line.split(" | ")[0].split()
                offset = fields[0]
                words, at = _words(fields)
                synsets[offset, pos] = words
                for k in range(int(fields[at])):
                    symbol, target, target_pos, numbers = fields[at + 1 + 4 * k : at + 5 + 4 * k]
                    if symbol != "!":
                        continue
                    source, goal = int(numbers[:2], 16), int(numbers[2:], 16)
                    pointers.append(
                        (offset, pos, source, target, target_pos.replace("s", "a"), goal)
                    )
    pairs: set[tuple[str, str, str]] = set()
    for offset, pos, source, target, target_pos, goal in pointers:
        word = synsets[offset, pos][source - 1]
        other = synsets[target, target_pos][goal - 1]
        if word != other:
            pairs.add((word, pos, other))
            pairs.add((other, target_pos, word))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path, default=ROOT / "claims" / "lexicon")
    args = parser.parse_args()
    if not (args.wordnet / "data.adj").is_file():
        sys.exit(f"{args.wordnet}/data.adj not found: apt-get install wordnet-base")
    pairs = sorted(read(args.wordnet))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "antonyms.tsv").open("w", encoding="utf-8") as out:
        out.write("# Direct antonyms of WordNet 3.0 (Princeton University), see WORDNET_LICENSE;\n")
        out.write("# written by bench/wordnet_antonyms.py. word\tpos (a, r, n, v)\tantonym\n")
        for word, pos, other in pairs:
            out.write(f"{word}\t{pos}\t{other}\n")
    if NOTICE.is_file():
        text = NOTICE.read_text(encoding="utf-8")
        start = text.index("License: WordNet3.0")
        end = text.index("Files: debian/*")
        body = "\n".join(
            "" if line.strip() == "." else line[1:] if line.startswith(" ") else line
            for line in text[start:end].strip().splitlines()[1:]
        )
        (args.out / "WORDNET_LICENSE").write_text(
            "The antonym table antonyms.tsv is derived from WordNet 3.0.\n\n" + body + "\n",
            encoding="utf-8",
        )
    print(f"{len(pairs)} antonym rows -> {args.out / 'antonyms.tsv'}")


if __name__ == "__main__":
    main()
