"""The documentation links only to what the repository holds: every relative link of the READMEs
and docs/ resolves to a file or directory inside it (and an #anchor to a heading there), so a
reader of a clone or of the published repository never meets a dead link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    {
        ROOT / "README.md",
        ROOT / "bench" / "README.md",
        ROOT / "deploy" / "README.md",
        ROOT / "clients" / "python" / "README.md",
        *(ROOT / "docs").glob("*.md"),
    }
)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, ...


def prose(text: str) -> str:
    """The text without code blocks, where brackets and parentheses are code, not links."""
    return _FENCE.sub("", text)


def links(path: Path) -> list[str]:
    return _LINK.findall(_INLINE_CODE.sub("", prose(path.read_text(encoding="utf-8"))))


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    found = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_the_documents_are_there() -> None:
    assert (ROOT / "docs" / "contract.md").is_file()
    assert all(path.is_file() for path in DOCUMENTS), DOCUMENTS


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(document: Path) -> None:
    broken = []
    for link in links(document):
        if _EXTERNAL.match(link):
            continue
        target, _, anchor = link.partition("#")
        resolved = (document.parent / target).resolve() if target else document
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{link}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{link}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{link}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert broken == []


def test_the_link_check_sees_links_and_catches_one_outside() -> None:
    assert "docs/contract.md" in links(ROOT / "README.md")
    assert "../shared/CONTRACT.md" not in links(ROOT / "README.md")
    assert (ROOT / "../shared/CONTRACT.md").resolve().is_relative_to(ROOT) is False
