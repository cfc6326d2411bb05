"""Replace one ``## Section`` of a markdown file in docs/ (or append it), leaving the others alone."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def replace_section(path: Path, heading: str, text: str, title: str) -> Path:
    """Put ``text`` (which starts with ``heading``) in place of that section of ``path``."""
    current = path.read_text() if path.is_file() else f"# {title}\n"
    start = current.find(heading)
    if start < 0:
        updated = current.rstrip() + "\n\n" + text
    else:
        end = current.find("\n## ", start + len(heading))
        updated = current[:start] + text.rstrip() + "\n" + (current[end:] if end >= 0 else "")
    path.parent.mkdir(exist_ok=True)
    path.write_text(updated.rstrip() + "\n")
    return path


def publish(lines: list[str], doc: str, title: str, *, write: bool) -> None:
    """Print a benchmark's section (``lines[0]`` is its heading); with ``write`` also store it.

    It goes in place of that section of ``docs/<doc>``, a new file starting with ``# <title>``.
    """
    text = "\n".join(lines)
    print(text)
    if write:
        print(f"written to {replace_section(DOCS / doc, lines[0], text, title)}")
