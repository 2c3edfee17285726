"""Front-end modules that every widget of a served page shares (``alfaviz serve``).

A plotly FigureWidget and a jupyter-scatter canvas each carry their library's whole front-end
module in their state (5 MB and 2 MB), and the page evaluates it once per widget. anywidget
gives each widget model 2 s from its creation in the page to load its module and initialise;
a model that misses this never takes another message from the kernel, so its view is drawn
once and then stays as it was. A Voila page creates every model of the dashboard at once, and
on 2 busy cores some missed the limit.

Under ``alfaviz serve`` the server hands the modules out as static files instead (see
:func:`alfaviz.serve.write_voila_template`), the page's head starts loading them before any
widget exists, and each widget carries only a few lines (:func:`shim`) that import the file.
A browser evaluates one module URL once per page, so every widget shares that one copy.

The served kernels learn the files' names from :data:`SHARED_MODULES_ENV`; anywhere else
(a notebook, the tests) the widgets keep their own modules.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "MODULES",
    "SHARED_MODULES_ENV",
    "SharedModule",
    "served_names",
    "share_module_of",
    "shared_class",
    "shim",
]

log = logging.getLogger(__name__)

SHARED_MODULES_ENV = "ALFAVIZ_SHARED_MODULES"
"""Set by ``alfaviz serve`` for its kernels: a JSON object from a :class:`SharedModule` key to
the module's file name under the server's ``voila/static/``."""

_FILE_NAME = re.compile(r"alfaviz-[a-z]+-[0-9a-f]{12}\.js")


@dataclass(frozen=True)
class SharedModule:
    """One library's front-end module, as ``alfaviz serve`` hands it out.

    Parameters
    ----------
    key : str
        The name in :data:`SHARED_MODULES_ENV` (``"plotly"``, ``"jscatter"``).
    package : str
        The Python package that ships the module.
    path : str
        The module's file, relative to the package's folder.
    """

    key: str
    package: str
    path: str

    def source(self) -> Path | None:
        """The module's file in the installed package, or ``None`` if it is not installed."""
        try:
            pkg = importlib.import_module(self.package)
        except ImportError:
            return None
        path = Path(pkg.__file__ or "").parent / self.path
        return path if path.is_file() else None

    def file_name(self, source: Path) -> str:
        """The static file's name: the key and a digest of the content (a new one whenever
        the library changes, so that no browser keeps a stale copy)."""
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        return f"alfaviz-{self.key}-{digest}.js"


MODULES = (
    SharedModule("plotly", "plotly", "package_data/widgetbundle.js"),
    SharedModule("jscatter", "jscatter", "bundle.js"),
)
"""The modules that ``alfaviz serve`` hands out."""

_SHIM = """// alfaviz serve: this library's front-end module, loaded once per page from the server
const config = document.getElementById("jupyter-config-data");
let base = "/";
try {{ base = JSON.parse(config.textContent).baseUrl || "/"; }} catch (e) {{ /* "/" */ }}
const shared = await import(new URL(base + "voila/static/" + {name}, location.href).href);
export default shared.default;
"""


def shim(file_name: str) -> str:
    """The front-end module of a served widget: it imports ``voila/static/<file_name>`` from
    the page's own server (whose base URL it reads from the page's Jupyter config)."""
    if not _FILE_NAME.fullmatch(file_name):
        raise ValueError(f"not a shared module's file name: {file_name!r}")
    return _SHIM.format(name=json.dumps(file_name))


def served_names() -> dict[str, str]:
    """The shared modules' file names from :data:`SHARED_MODULES_ENV` (empty when not set or
    not valid, which leaves every widget its own module)."""
    text = os.environ.get(SHARED_MODULES_ENV, "")
    if not text:
        return {}
    try:
        names = json.loads(text)
    except ValueError:
        names = None
    keys = {m.key for m in MODULES}
    if not isinstance(names, dict) or not all(
        k in keys and isinstance(v, str) and _FILE_NAME.fullmatch(v) for k, v in names.items()
    ):
        log.warning("ignoring %s=%r: not a map of shared module names", SHARED_MODULES_ENV, text)
        return {}
    return names


@lru_cache(maxsize=8)
def _subclass(cls: type, file_name: str) -> type:
    return type(cls.__name__, (cls,), {"_esm": shim(file_name), "__module__": __name__})


def shared_class(cls: type, key: str) -> type:
    """``cls`` (an anywidget class), or under ``alfaviz serve`` a subclass whose front-end
    module is :func:`shim` of the shared module ``key``."""
    name = served_names().get(key)
    return _subclass(cls, name) if name else cls


def share_module_of(cls: Any, key: str) -> None:
    """Under ``alfaviz serve``, make ``cls`` (an anywidget class that a library instantiates
    itself, such as jupyter-scatter's) load the shared module ``key``; elsewhere do nothing.

    Only a served kernel, which exists to show one dashboard, changes the class.
    """
    name = served_names().get(key)
    if name and getattr(cls, "_esm", None) != shim(name):
        cls._esm = shim(name)
