"""scripts/manpages_de.py: German manual pages rendered, cut into sentences of prose, deduplicated,
with every held-out (valid and test) sentence removed, and one-line errors for what is missing."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pysbd")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "manpages_de.py"
needs_groff = pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed")

PAGE = r""".TH DEMO 1 "2026" "demo 1.0" "Dienstprogramme"
.SH BEZEICHNUNG
demo \- ein Beispiel
.SH BESCHREIBUNG
Dieses Programm zeigt, wie eine Handbuchseite gelesen wird. Es ist nur ein Beispiel für die Prüfung.
.PP
Dieser Satz steht in der Testmenge und darf nicht bleiben.
.TP
\fB\-a\fR, \fB\-\-all\fR
Alle Einträge anzeigen, auch die versteckten Dateien im Verzeichnis.
.PP
Eine Datei mit der Endung .conf wird gelesen, wenn sie im Verzeichnis liegt.
.PP
Dieses Programm zeigt, wie eine Handbuchseite gelesen wird.
.SH BEISPIEL
.nf
demo \-a /etc/passwd | sort > out.txt
.fi
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@needs_groff
def test_pages_become_unique_prose_sentences_without_held_out_ones(tmp_path: Path) -> None:
    pages = tmp_path / "man" / "man1"
    pages.mkdir(parents=True)
    (pages / "demo.1.gz").write_bytes(gzip.compress(PAGE.encode("utf-8")))
    (pages / "copy.1").write_text(PAGE, encoding="utf-8")  # the same page again, uncompressed
    held_out = tmp_path / "test.de"
    held_out.write_text("Dieser Satz steht in der Testmenge und darf nicht bleiben.\n", encoding="utf-8")
    output = tmp_path / "mono.de"
    result = run("--man-dir", str(tmp_path / "man"), "--held-out", str(held_out), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_text(encoding="utf-8").splitlines() == [
        "Dieses Programm zeigt, wie eine Handbuchseite gelesen wird.",
        "Es ist nur ein Beispiel für die Prüfung.",
        "Alle Einträge anzeigen, auch die versteckten Dateien im Verzeichnis.",
    ]
    assert "3 sentences kept from 2 of 2 pages" in result.stdout
    assert "2 in the held-out sets" in result.stdout  # once per page


@needs_groff
def test_missing_pages_and_held_out_files_get_one_line_errors(tmp_path: Path) -> None:
    empty = run("--man-dir", str(tmp_path / "none"), "--output", str(tmp_path / "out.de"))
    assert empty.returncode != 0 and "apt-get install -y manpages-de" in empty.stderr
    (tmp_path / "man").mkdir()
    (tmp_path / "man" / "demo.1").write_text(PAGE, encoding="utf-8")
    missing = run("--man-dir", str(tmp_path / "man"), "--held-out", str(tmp_path / "valid.de"))
    assert missing.returncode != 0 and "valid.de: no such file (--held-out)" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
