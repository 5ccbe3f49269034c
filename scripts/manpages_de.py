"""In-domain monolingual German for back-translation: Debian's German manual pages as sentences.

    apt-get install -y manpages-de groff-base     # Debian's German manual pages, and groff
    python scripts/manpages_de.py --output runs/back-translation/manpages.de

Every page under /usr/share/man/de (manpages-de, and any other package's German pages) is rendered
to plain text with groff, one paragraph per line; the prose paragraphs are cut into sentences with
pysbd, sentences that are not prose (option lists, commands, tables) are left out, and the rest are
deduplicated. Every sentence of our valid and test German (the Debian en-de folder) is removed, so
that a model trained on their back-translations has not seen its evaluation text. Prints how many
pages, sentences and removals there were.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

MAN_DIR = Path("/usr/share/man/de")
DEBIAN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "debian" / "en-de"
MIN_WORDS, MAX_WORDS = 4, 80  # the Debian pairs keep segments of up to 80 English words
HEADING = re.compile(r"^\S")  # section names and the page's header and footer start in column 0
PROSE = re.compile(r"^[A-ZÄÖÜ0-9»„\"(].*[.!?:»“\")]$")  # a capital to start, an end mark to end
# code, options, paths, markup, and a sentence cut at a file name's dot ("mit der Endung .")
NOT_PROSE = re.compile(r"[{};<>|\\$=]|\s-{1,2}\w|\.\w+\(|/\w+/|\s[.!?:]$")


def render(page: Path) -> str:
    """A manual page as plain UTF-8 text, one paragraph per line (a very long line length)."""
    opener = gzip.open if page.suffix == ".gz" else open
    with opener(page, "rb") as handle:
        source = handle.read()
    result = subprocess.run(
        ["groff", "-k", "-mandoc", "-Tutf8", "-P-cbou", "-rLL=10000n", "-rHY=0"],
        input=source,
        capture_output=True,
        timeout=60,
    )
    return result.stdout.decode("utf-8", errors="replace") if result.returncode == 0 else ""


def paragraphs(text: str) -> Iterator[str]:
    """The indented text lines of a rendered page (not its headings, header or footer)."""
    for line in text.splitlines():
        if line.strip() and not HEADING.match(line):
            yield " ".join(line.split())


def is_prose(sentence: str) -> bool:
    """A German sentence of running text: enough words, mostly letters, no code or option names."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or "\ufffd" in sentence:
        return False
    letters = sum(ch.isalpha() or ch.isspace() for ch in sentence)
    lower_words = sum(word.isalpha() and word.islower() for word in words)
    return (
        letters >= 0.85 * len(sentence)
        and lower_words >= len(words) / 3
        and bool(PROSE.match(sentence))
        and not NOT_PROSE.search(sentence)
    )


def sentences(texts: Iterable[str], segmenter: object) -> Iterator[str]:
    for paragraph in texts:
        for sentence in segmenter.segment(paragraph):  # type: ignore[attr-defined]
            yield " ".join(sentence.split())


def key(sentence: str) -> str:
    """What two sentences that count as the same share: case and spacing aside."""
    return " ".join(sentence.lower().split())


def build(pages: list[Path], held_out: list[str], segmenter: object) -> tuple[list[str], dict[str, int]]:
    """The kept sentences, in page order, and counts of what was read and left out."""
    banned = {key(s) for s in sentences(held_out, segmenter)} | {key(line) for line in held_out}
    kept: dict[str, str] = {}
    counts = dict(pages=len(pages), rendered=0, sentences=0, not_prose=0, duplicates=0, held_out=0)
    for page in pages:
        text = render(page)
        counts["rendered"] += bool(text)
        for sentence in sentences(paragraphs(text), segmenter):
            counts["sentences"] += 1
            if not is_prose(sentence):
                counts["not_prose"] += 1
            elif key(sentence) in banned:
                counts["held_out"] += 1
            elif key(sentence) in kept:
                counts["duplicates"] += 1
            else:
                kept[key(sentence)] = sentence
    return list(kept.values()), counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/back-translation/manpages.de"))
    parser.add_argument("--man-dir", type=Path, default=MAN_DIR, help="German pages (default %(default)s)")
    parser.add_argument(
        "--held-out",
        type=Path,
        nargs="*",
        default=[DEBIAN / "valid.de", DEBIAN / "test.de"],
        help="German whose sentences must not be kept (default: the Debian en-de valid and test sets)",
    )
    args = parser.parse_args(argv)
    if shutil.which("groff") is None:
        sys.exit("manpages_de: groff is missing; install it: apt-get install -y groff-base")
    pages = sorted(p for p in args.man_dir.rglob("*") if p.is_file()) if args.man_dir.is_dir() else []
    if not pages:
        sys.exit(f"manpages_de: no manual pages under {args.man_dir}; apt-get install -y manpages-de")
    missing = [str(path) for path in args.held_out if not path.is_file()]
    if missing:
        sys.exit(f"manpages_de: {', '.join(missing)}: no such file (--held-out)")
    try:
        import pysbd
    except ImportError:
        sys.exit("manpages_de: needs pysbd (pip install pysbd, or the dev extra)")
    held_out = [line.strip() for path in args.held_out for line in path.read_text("utf-8").splitlines()]
    kept, counts = build(pages, held_out, pysbd.Segmenter(language="de", clean=False))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("".join(sentence + "\n" for sentence in kept), encoding="utf-8")
    print(
        f"{args.output}: {len(kept):,} sentences kept from {counts['rendered']:,} of {counts['pages']:,} "
        "pages "
        f"({counts['sentences']:,} sentences read; left out: {counts['not_prose']:,} not prose, "
        f"{counts['duplicates']:,} duplicates, {counts['held_out']:,} in the held-out sets)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
