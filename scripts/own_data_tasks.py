"""Data for the own-data benchmark (bench/own_data.sh): tasks as a user would bring them, as TSV.

    .venv/bin/python scripts/own_data_tasks.py runs/own-data/tasks

writes, under the folder given:
- g2p/{train,valid,test}.tsv: CMUdict spelling -> phonemes, the g2p recipe's own split;
- p2g/{train,valid,test}.tsv: the same pairs turned around, phonemes -> spelling;
- reverse/{train,valid,test}.tsv: the toy_reverse recipe's synthetic splits;
- dates/dates.tsv: 20,000 dates written as people write them (14 English formats, from Python's
  own calendar names) -> ISO 8601, one file, for ``seq2seqkit train`` to hold out valid and test;
- squad/{train,valid,test}.jsonl: our SQuAD v1.1 splits (../shared/data/squad, when present) as
  JSON lines with fields question, context and answer, a line for each answer of a question.
"""

from __future__ import annotations

import datetime
import json
import random
import sys
from pathlib import Path

from seq2seqkit.data.vocab import FIELD_SEPARATOR
from seq2seqkit.recipes import load_config
from seq2seqkit.tasks import read_split
from seq2seqkit.tasks.g2p import cmudict_pairs
from seq2seqkit.tasks.qa import squad_pairs

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad"

DATE_FORMATS = [
    "%d %B %Y", "%B %d, %Y", "%A, %B %d, %Y", "%d.%m.%Y", "%m/%d/%Y", "%a %d %b %Y", "%d %b %Y",
    "%b %d %Y", "%A %d %B %Y", "%Y/%m/%d", "%d-%b-%Y", "%B %Y, day %d", "%a, %b %d, %Y", "%d %B, %Y",
]  # fmt: skip


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{src}\t{tgt}\n" for src, tgt in rows), encoding="utf-8")


def write_squad_jsonl(path: Path, squad_json: Path) -> None:
    """One line per answer: the question, its paragraph and the answer, fields in that order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for pair in squad_pairs(squad_json):
            question, context = pair.src.split(f" {FIELD_SEPARATOR} ", 1)
            record = {"question": question, "context": context, "answer": pair.tgt}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def human_date(day: datetime.date, rng: random.Random) -> str:
    """A date in a random one of DATE_FORMATS, day numbers with or without a leading zero, and
    sometimes lower-cased."""
    form = rng.choice(DATE_FORMATS)
    if rng.random() < 0.5:
        form = form.replace("%d", str(day.day))
    text = day.strftime(form)
    return text.lower() if rng.random() < 0.3 else text


def main(out: Path) -> None:
    for split in ("train", "valid", "test"):
        g2p = [(p.src, p.tgt) for p in cmudict_pairs(split)]
        write_tsv(out / "g2p" / f"{split}.tsv", g2p)
        write_tsv(out / "p2g" / f"{split}.tsv", [(tgt, src) for src, tgt in g2p])
        toy = read_split(load_config("toy_reverse"), split)
        write_tsv(out / "reverse" / f"{split}.tsv", [(p.src, p.tgt) for p in toy])
    rng = random.Random(1)
    first, days = datetime.date(1900, 1, 1), (datetime.date(2099, 12, 31) - datetime.date(1900, 1, 1)).days
    dates = [first + datetime.timedelta(days=rng.randrange(days)) for _ in range(20000)]
    write_tsv(out / "dates" / "dates.tsv", [(human_date(d, rng), d.isoformat()) for d in dates])
    if SQUAD.is_dir():
        for split in ("train", "valid", "test"):
            write_squad_jsonl(out / "squad" / f"{split}.jsonl", SQUAD / f"{split}-v1.1.json")
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/own-data/tasks"))
