"""The workshop course: the notebooks of ``notebooks/``, copied to a folder for a class.

A pip-installed alfaviz has no repository checkout, so the notebooks ship inside the package
(``alfaviz/_course/``, mapped from the repository's ``notebooks/`` folder by ``pyproject.toml``);
in a checkout (an editable install) they are read from ``notebooks/`` itself.
:func:`copy_course` (what ``alfaviz course [DIR]`` runs) copies them, solutions included, and
never overwrites a file unless asked to.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from alfaviz.errors import AlfavizInputError

__all__ = ["DEFAULT_DIR", "copy_course", "course_dir", "course_files"]

DEFAULT_DIR = "alfaviz-course"
"""Where ``alfaviz course`` copies the notebooks when no folder is given."""

_PACKAGED = Path(__file__).resolve().parent / "_course"
_CHECKOUT = Path(__file__).resolve().parents[1] / "notebooks"
_PATTERNS = ("*.ipynb", "solutions/*.ipynb")


def course_dir() -> Path:
    """The folder holding the course notebooks (in the installed package, or the checkout).

    Raises
    ------
    FileNotFoundError
        When neither holds a notebook (a broken installation).
    """
    for folder in (_PACKAGED, _CHECKOUT):
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    raise FileNotFoundError(
        f"the course notebooks are missing from this installation (looked in {_PACKAGED} and "
        f"{_CHECKOUT}); reinstall alfaviz"
    )


def course_files() -> list[Path]:
    """The course's files, relative to :func:`course_dir`, in course order."""
    root = course_dir()
    found = {p.relative_to(root) for pattern in _PATTERNS for p in root.glob(pattern)}
    return sorted(found, key=lambda p: (len(p.parts), p.as_posix()))


def copy_course(dest: str | os.PathLike[str] = DEFAULT_DIR, *, force: bool = False) -> list[Path]:
    """Copy the course notebooks (and their solutions) into ``dest``.

    Parameters
    ----------
    dest : path
        The folder to copy into; it is made if missing. Files of the same name already there
        are refused unless ``force``; other files in it are left alone.
    force : bool
        Overwrite the course's files in ``dest``.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    AlfavizInputError
        When ``dest`` is a file, or holds course files already and ``force`` is false.
    """
    target = Path(dest).expanduser()
    if target.exists() and not target.is_dir():
        raise AlfavizInputError(f"{target} is a file; give a folder to copy the course into.")
    root = course_dir()
    files = course_files()
    clash = [rel for rel in files if (target / rel).exists()]
    if clash and not force:
        names = ", ".join(rel.as_posix() for rel in clash[:3])
        more = f" and {len(clash) - 3} more" if len(clash) > 3 else ""
        raise AlfavizInputError(
            f"{target} already holds {names}{more}; choose another folder, or pass --force "
            "to overwrite them."
        )
    written = []
    for rel in files:
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, out)
        written.append(out)
    return written
