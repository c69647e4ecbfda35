"""The project's documents stand alone: every document the code cites is in the repository
(the conv kernels once cited a DESIGN.md that is not part of the project)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CITED = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")
SOURCES = ("engine", "server", "static", "templates", "docs")
SUFFIXES = {".py", ".json", ".js", ".html", ".css", ".md"}


def cited_documents():
    for folder in SOURCES:
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and "vendor" not in path.parts:
                for name in CITED.findall(path.read_text(encoding="utf-8", errors="replace")):
                    yield path.relative_to(REPO), name


def test_every_document_the_code_cites_is_in_the_repository():
    missing = [(str(path), name) for path, name in cited_documents()
               if not (REPO / name).is_file()]
    assert missing == []


def test_the_engine_page_holds_what_the_conv_kernels_cite():
    text = (REPO / "docs" / "engine.md").read_text()
    assert "## What made the difference inside Numba" in text
    assert 'docs/engine.md, "What made the difference inside Numba"' in " ".join(
        (REPO / "engine" / "kernels" / "conv.py").read_text().split())
