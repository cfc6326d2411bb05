"""Checks on paths a command reads or will write to, made before the command does any work."""

from __future__ import annotations

from pathlib import Path

from gsco_common.errors import ConfigError


def check_output_folder(flag: str, folder: Path | None) -> None:
    """:class:`ConfigError` (naming ``flag``) when ``folder`` could not be created or used later.

    That is when it, or a folder above it, exists as a file or is a broken link, or cannot be
    looked at; a long command would otherwise fail at its end, having written nothing.
    """
    if folder is None:
        return
    for path in (folder, *folder.parents):
        try:
            if path.is_symlink() and not path.exists():
                raise ConfigError(f"{flag}: {path} is a broken link", hint=f"pick another {flag}")
            if path.exists() and not path.is_dir():
                raise ConfigError(
                    f"{flag} must name a folder: {path.name!r} is a file", hint=f"pick another {flag}"
                )
        except OSError as exc:
            raise ConfigError(f"{flag}: {path} cannot be looked at ({exc.strerror})") from None


def not_there(path: Path, want: str) -> str:
    """Why ``path`` is no ``want`` (``"file"`` or ``"folder"``): ``"does not exist"`` or what it is instead.

    For messages such as ``f"the image file {not_there(image, 'file')}"``, so that a folder given
    for a file (or the reverse) is not reported as missing.
    """
    if not path.exists():
        return "does not exist"
    return f"is a {'file' if want == 'folder' else 'folder'}, not a {want}"
