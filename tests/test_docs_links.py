"""The documentation's links resolve, and the README stays a front page.

Every relative Markdown link and image link in README.md and docs/*.md must point at an existing
file and, where it has a ``#anchor``, at a heading of that file (GitHub's slugs: lowercase, spaces
to '-', punctuation other than '-' and '_' dropped, repeated headings numbered -1, -2, ...).
Links inside fenced code blocks and inline code are not links. Absolute URLs are not checked.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_BYTES = 15_000

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); the target may be wrapped in <...>
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+[\"'(][^)]*)?\s*\)"
)
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_LINK = re.compile(r"<(?:a|img)\s[^>]*?(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def doc_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
                continue
            if marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
                continue
        if fence is None:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and '_' (Unicode too)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path: Path):
    """(line number, target) of every link in the file's prose."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        bare = INLINE_CODE.sub("", line)
        for match in INLINE_LINK.finditer(bare):
            yield number, match.group(1).strip("<>")
        match = REFERENCE_DEF.match(bare)
        if match:
            yield number, match.group(1).strip("<>")
        for match in HTML_LINK.finditer(bare):
            yield number, match.group(1)


def broken_links(path: Path) -> list[str]:
    problems = []
    anchor_cache: dict[Path, set[str]] = {}
    for number, target in links(path):
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        dest = path if not file_part else (path.parent / file_part).resolve()
        if not dest.exists():
            problems.append(f"{where} (no such file)")
            continue
        try:
            dest.relative_to(ROOT)
        except ValueError:
            problems.append(f"{where} (outside the repository)")
            continue
        if anchor:
            if dest.is_dir() or dest.suffix.lower() != ".md":
                problems.append(f"{where} (an anchor into a file that is not Markdown)")
                continue
            if dest not in anchor_cache:
                anchor_cache[dest] = anchors(dest)
            if unquote(anchor).lower() not in anchor_cache[dest]:
                problems.append(f"{where} (no heading '#{anchor}' in {dest.relative_to(ROOT)})")
    return problems


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_readme_is_a_front_page():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size:,} bytes; move detail into docs/"


def test_docs_exist():
    assert (ROOT / "docs").is_dir() and len(doc_files()) > 1


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Apply a trained model: `rocksr enhance`", "apply-a-trained-model-rocksr-enhance"),
        ("The study on DRP-251", "the-study-on-drp-251"),
        ("Dataset build at the study's geometry", "dataset-build-at-the-studys-geometry"),
        ("rocksr — micro-CT → SEM", "rocksr--micro-ct--sem"),
        ("Refining a prior: which checkpoint?", "refining-a-prior-which-checkpoint"),
        ("snake_case and [a link](x.md)", "snake_case-and-a-link"),
    ],
)
def test_slug_follows_github(heading, expected):
    assert slug(heading) == expected


def test_checker_finds_broken_links(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n## A section\n\n"
        "[ok](#a-section) [ok](other.md#other) ![ok](other.md) [web](https://example.org/x)\n"
        "[bad](missing.md) [bad](other.md#nowhere) [bad](#nowhere)\n"
        "`[not a link](missing.md)`\n\n```\n[not a link](missing.md)\n# not a heading\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "docs" / "other.md").write_text("# Other\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert all("bad" not in p for p in problems)  # each problem names the target, not the text
