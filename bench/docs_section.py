"""Replace one ``## Section`` of a markdown file in docs/ (or append it), leaving the others alone."""

from __future__ import annotations

from pathlib import Path


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
