"""How a training run's memory grew: peak RSS at 10%, 50% and 100% of its steps, from its log.

    .venv/bin/python bench/memory_over_run.py runs/mt-debian-en-de/train.log [more logs]

Reads the periodic reports of ``seq2seqkit train`` (``step N ... peak memory M MB``) and prints per
log one line ``memory: 10%=.. MB 50%=.. MB 100%=.. MB growth=..x`` (growth: the peak at the end
over the peak at 10% of the steps), the figure for a run that must stay flat over hours.
bench/speed.py prints the same line for the runs it trains.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FRACTIONS = (0.1, 0.5, 1.0)
REPORT = re.compile(r"step (\d+) epoch \d+ .* peak memory (\d+) MB")


def memory_over_run(log_text: str) -> dict[float, tuple[int, int]]:
    """fraction of the run -> (step, peak RSS in MB at the last report at or before it)."""
    reports = [(int(step), int(mb)) for step, mb in REPORT.findall(log_text)]
    if not reports:
        raise ValueError("no 'step N ... peak memory M MB' reports in the log")
    last_step = reports[-1][0]
    found = {}
    for fraction in FRACTIONS:
        before = [report for report in reports if report[0] <= fraction * last_step] or reports[:1]
        found[fraction] = before[-1]
    return found


def memory_line(log_text: str) -> str:
    found = memory_over_run(log_text)
    figures = " ".join(f"{fraction:.0%}={mb} MB" for fraction, (_, mb) in found.items())
    return f"memory: {figures} growth={found[1.0][1] / found[0.1][1]:.2f}x (steps {found[1.0][0]:,})"


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for name in sys.argv[1:]:
        try:
            print(f"{name}: {memory_line(Path(name).read_text(encoding='utf-8'))}")
        except (OSError, ValueError) as err:
            sys.exit(f"{name}: {err}")


if __name__ == "__main__":
    main()
