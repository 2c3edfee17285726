"""``alfaviz serve RUN_DIR``: the dashboard of one run in a browser, through Voila.

The dashboard notebook ships inside the package (``alfaviz/app/dashboard.ipynb``) and holds one
call, :func:`served_dashboard`, which reads the run directory from the environment variable
:data:`RUN_ENV` that :func:`serve` sets. Voila runs that notebook in a kernel per page.

What keeps the page safe:

- Voila's kernel manager accepts only widget (comm) messages and kernel info from the page,
  never ``execute_request``: a page can move sliders and click buttons, not send code;
  tracebacks are not shown and the notebook's source is stripped;
- the run path given on the command line is checked before anything starts (a run directory
  with a ``config.json``), and again in the kernel;
- the run is opened with :func:`alfaviz.open_run`, which executes nothing from the folder
  (its config is checked field by field, weights load as plain tensors);
- the server binds 127.0.0.1 unless told otherwise; any other address needs
  ``allow_remote=True`` (``--allow-remote``), prints a warning that the page can label the run,
  and is protected by a random token in the URL.

Idle kernels (a closed tab) are culled after :data:`CULL_IDLE_S` seconds: Voila does not shut
a kernel down when its page unloads.

The page uses the Voila template :data:`TEMPLATE` (Voila's ``lab`` template plus two changes),
written by :func:`write_voila_template` into a folder of its own for the life of the server:

- the widgets' front-end modules (plotly's, 5 MB, and jupyter-scatter's, 2 MB) are served as
  static files that the page's head starts loading at once, and every widget imports those
  files instead of carrying its own copy (see :mod:`alfaviz.widgets._modules`): the page
  loads one copy of each, and every widget initialises within anywidget's 2 s limit;
- the two Font Awesome style sheets that the ``lab`` template requests from a CDN are left
  out: the page makes no request beyond its own server (Voila bundles the icons);
- anywidget's 2 s limit for a widget model to initialise is raised to
  :data:`ANYWIDGET_INIT_S` on the page (a model that misses it never takes another update).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alfaviz.errors import AlfavizInputError

__all__ = [
    "CULL_IDLE_S",
    "RUN_ENV",
    "TEMPLATE",
    "check_address",
    "check_run_dir",
    "dashboard_notebook",
    "free_port",
    "make_demo_run",
    "serve",
    "served_dashboard",
    "voila_argv",
    "write_voila_template",
]

RUN_ENV = "ALFAVIZ_SERVE_RUN"
"""Environment variable naming the run directory the served notebook opens."""

REFILL_DELAY_S = 20.0
"""Seconds Voila waits after a page takes the preheated kernel before it builds the next one."""

CULL_IDLE_S = 600
"""Seconds after which a kernel with no page connected is shut down."""

TEMPLATE = "alfaviz"
"""The name of the Voila template :func:`serve` uses (see :func:`write_voila_template`)."""

_CONFIG = "config.json"

_CDN_LINKS = (  # what Voila's lab template asks a CDN for
    '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5'
    '/css/all.min.css" type="text/css" />',
    '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5'
    '/css/v4-shims.min.css" type="text/css" />',
)

_INDEX = """{{%- extends 'lab/index.html.j2' -%}}
{{#- alfaviz serve: Voila's lab template, with the widgets' shared front-end modules loading
    from the head (one copy for every widget of the page) and no style sheet from a CDN -#}}
{{%- block html_head_js -%}}
{{{{ super() }}}}
{init_limit}
{scripts}
{{%- endblock html_head_js -%}}
{{%- block notebook_css -%}}
{{{{ super(){drop} }}}}
{{%- endblock notebook_css -%}}
"""
_SCRIPT = '<script type="module" async src="{base}voila/static/{name}"></script>'

ANYWIDGET_INIT_S = 20
"""Seconds a widget model of the served page gets to initialise (anywidget's own limit: 2)."""

# anywidget 0.11 gives a widget model AbortSignal.timeout(2000) to load its module and
# initialise, and a model that misses it drops every later message from the kernel (its view
# is drawn once and never again). A Voila page creates all the dashboard's models at once while
# it is busiest, and on 2 cores the map's canvases sometimes missed it even with the modules
# shared and preloaded. This page-local script, run before anything else, gives exactly that
# 2,000 ms timeout ANYWIDGET_INIT_S instead; every other timeout is left as it is.
_INIT_LIMIT = (
    "<script>(() => {{ const timeout = AbortSignal.timeout.bind(AbortSignal);"
    " AbortSignal.timeout = (ms) => timeout(ms === 2000 ? {ms} : ms); }})();</script>"
)


def dashboard_notebook() -> Path:
    """The dashboard notebook that ships inside the package."""
    path = Path(__file__).with_name("app") / "dashboard.ipynb"
    if not path.is_file():  # pragma: no cover - a broken install
        raise AlfavizInputError(
            f"the dashboard notebook {path} is missing from the installed package; reinstall "
            "alfaviz with: pip install 'alfaviz[widgets]'"
        )
    return path


def check_run_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as an absolute run directory, or a clear error.

    Raises
    ------
    AlfavizInputError
        When the path is empty, does not exist, is not a folder, or holds no ``config.json``.
    """
    text = os.fspath(path) if not isinstance(path, str) else path
    if not text or "\x00" in text:
        raise AlfavizInputError(f"RUN_DIR must be a run directory; got {text!r}.")
    p = Path(text).expanduser()
    if not p.exists():
        raise AlfavizInputError(
            f"{p} does not exist; pass a run directory made by `alfaviz run` or an Experiment "
            "(or use --demo for a fresh digits run)."
        )
    if not p.is_dir():
        raise AlfavizInputError(f"{p} is a file, not a run directory (a folder with {_CONFIG}).")
    if not (p / _CONFIG).is_file():
        raise AlfavizInputError(
            f"{p} is not an alfaviz run: it has no {_CONFIG}. Pass the folder `alfaviz run` "
            "printed (for example runs/digits-alfamix-0)."
        )
    return p.resolve()


def check_address(ip: str, allow_remote: bool = False) -> str:
    """The address to bind: a loopback address, or any address with ``allow_remote``.

    Raises
    ------
    AlfavizInputError
        For a malformed address, or a non-loopback one without ``allow_remote``.
    """
    text = str(ip).strip()
    if text == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise AlfavizInputError(
            f"--ip must be an IP address such as 127.0.0.1; got {ip!r}."
        ) from None
    if not addr.is_loopback and not allow_remote:
        raise AlfavizInputError(
            f"--ip {text} would let anyone who can reach this machine open the page and label "
            "the run; add --allow-remote to do this on purpose, or leave --ip at 127.0.0.1."
        )
    return text


def free_port(ip: str = "127.0.0.1") -> int:
    """A TCP port free on ``ip`` right now."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise AlfavizInputError(f"--port must be an integer from 1 to 65535; got {port!r}.")
    return port


def write_voila_template(root: str | os.PathLike[str]) -> dict[str, str]:
    """Write the Voila template :data:`TEMPLATE` under ``root``, a Jupyter data folder.

    ``root/voila/templates/alfaviz`` gets ``conf.json`` (based on ``lab``), ``index.html.j2``
    and ``static/``, which holds the shared front-end modules of
    :data:`alfaviz.widgets._modules.MODULES` (plotly's, and jupyter-scatter's when it is
    installed) under names with a digest of their content. Voila finds the template when
    ``root`` is on ``JUPYTER_PATH``.

    Parameters
    ----------
    root : path
        A folder, created if missing.

    Returns
    -------
    dict of str to str
        Each module's key and file name under ``voila/static/``: the kernels' value of
        :data:`alfaviz.widgets._modules.SHARED_MODULES_ENV`.
    """
    from alfaviz.widgets._modules import MODULES

    folder = Path(root) / "voila" / "templates" / TEMPLATE
    (folder / "static").mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for module in MODULES:
        source = module.source()
        if source is None:
            continue  # not installed: no widget of the page needs it
        names[module.key] = module.file_name(source)
        shutil.copyfile(source, folder / "static" / names[module.key])
    (folder / "conf.json").write_text(json.dumps({"base_template": "lab"}) + "\n")
    drop = "".join(f" | replace({json.dumps(link)}, '')" for link in _CDN_LINKS)
    base = "{{ resources.base_url }}"  # Jinja: the server's base URL
    scripts = "\n".join(_SCRIPT.format(base=base, name=n) for n in names.values())
    init_limit = _INIT_LIMIT.format(ms=int(ANYWIDGET_INIT_S * 1000))
    (folder / "index.html.j2").write_text(
        _INDEX.format(scripts=scripts, drop=drop, init_limit=init_limit)
    )
    return names


def voila_argv(
    notebook: Path,
    port: int,
    ip: str,
    *,
    token: str = "",
    preheat: bool = True,
    template: str | None = None,
) -> list[str]:
    """The Voila command-line arguments of :func:`serve` (without the program name).

    ``template`` names a Voila template (:data:`TEMPLATE` for :func:`serve`; Voila's ``lab``
    when None).
    """
    argv = [
        str(notebook),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={ip}",
        f"--Voila.token={token}",
        "--VoilaConfiguration.show_tracebacks=False",
        "--VoilaConfiguration.strip_sources=True",
        f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_S}",
        "--MappingKernelManager.cull_interval=60",
    ]
    if template is not None:
        argv.append(f"--template={template}")
    if preheat:
        # the pool refills only after a page has had time to draw: a refill builds a whole
        # dashboard, which on 2 cores would otherwise halve the speed of the page just served
        argv += [
            "--preheat_kernel=True", "--pool_size=1",
            f"--VoilaKernelManager.fill_delay={REFILL_DELAY_S}",
        ]  # fmt: skip
    return argv


def make_demo_run(out: str | os.PathLike[str]) -> Path:
    """A fresh digits run labelled by a person, one round written, for ``serve --demo``."""
    from alfaviz.session import Experiment

    exp = Experiment(
        "digits", "auto", "alfamix", initial_size=20, budget=10, seed=0,
        projection="umap", out=out, labelling="human",
    )  # fmt: skip
    exp.step()
    return exp.path


def _url(ip: str, port: int, token: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}/" + (f"?token={token}" if token else "")


def serve(
    run_dir: str | os.PathLike[str] | None,
    *,
    port: int | None = None,
    ip: str = "127.0.0.1",
    allow_remote: bool = False,
    demo: bool = False,
    preheat: bool = True,
    argv_only: bool = False,
) -> list[str] | int:
    """Serve the dashboard of ``run_dir`` with Voila until interrupted.

    Parameters
    ----------
    run_dir : path or None
        A run directory; with ``demo``, where to make the demo run (a temporary folder when
        None).
    port : int, optional
        A free port by default (printed).
    ip : str
        The address to bind (127.0.0.1); any other needs ``allow_remote``.
    allow_remote : bool
        Allow a non-loopback ``ip``: prints a warning, and the URL carries a random token.
    demo : bool
        Make a fresh digits run on the spot and serve it.
    preheat : bool
        Keep one kernel that has already built the dashboard waiting for the next page.
    argv_only : bool
        Return Voila's arguments instead of starting it (for tests).

    Returns
    -------
    list of str or int
        Voila's arguments (``argv_only``), or its exit status.
    """
    bind = check_address(ip, allow_remote)
    port = free_port(bind) if port is None else _check_port(port)
    if demo:
        if run_dir is None:
            run_dir = Path(tempfile.mkdtemp(prefix="alfaviz-demo-")) / "digits-demo"
        elif Path(run_dir).exists() and any(Path(run_dir).iterdir()):
            raise AlfavizInputError(
                f"--demo makes a new run, but {run_dir} exists and is not empty; give a new "
                "folder or leave RUN_DIR out."
            )
        print("alfaviz: making a demo run on the digits data ...", flush=True)
        run_dir = make_demo_run(run_dir)
    if run_dir is None:
        raise AlfavizInputError("give a RUN_DIR to serve, or --demo for a fresh digits run.")
    run = check_run_dir(run_dir)
    token = secrets.token_urlsafe(16) if not ipaddress.ip_address(bind).is_loopback else ""
    argv = voila_argv(
        dashboard_notebook(), port, bind, token=token, preheat=preheat, template=TEMPLATE
    )
    if argv_only:
        return argv
    from alfaviz.widgets._modules import SHARED_MODULES_ENV

    data_dir = tempfile.mkdtemp(prefix="alfaviz-voila-")
    os.environ[SHARED_MODULES_ENV] = json.dumps(write_voila_template(data_dir))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (data_dir, os.environ.get("JUPYTER_PATH", "")) if p
    )
    os.environ[RUN_ENV] = str(run)
    if token:
        print(
            f"alfaviz: WARNING: serving on {bind}, reachable from other machines; anyone with "
            "the URL below can label this run.",
            file=sys.stderr,
            flush=True,
        )
    print(f"alfaviz: serving {run} at {_url(bind, port, token)} (Ctrl-C stops)", flush=True)
    from voila.app import Voila

    try:
        Voila.launch_instance(argv=argv)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def served_dashboard(
    run_dir: str | os.PathLike[str] | None = None, *, watch: float | None = 1.0
) -> Any:
    """The dashboard the served notebook displays: the run in :data:`RUN_ENV`.

    Every page is its own kernel with its own :class:`~alfaviz.session.Experiment` on the
    run, so the dashboard watches the run directory (``RunData.watch``): labels, undos and
    rounds made in other tabs or processes appear within about ``watch`` seconds. It also
    catches up once before it is built, and the watcher keeps a preheated kernel's snapshot
    current while it waits for its page.

    Parameters
    ----------
    run_dir : path, optional
        Overrides the environment (for a notebook opened by hand).
    watch : float or None
        Seconds between two looks at the run directory; ``None`` does not watch.

    Returns
    -------
    alfaviz.widgets.Dashboard
    """
    target = run_dir if run_dir is not None else os.environ.get(RUN_ENV)
    if not target:
        raise AlfavizInputError(
            f"no run to show: start this page with `alfaviz serve RUN_DIR` (which sets {RUN_ENV})."
        )
    from alfaviz.session import open_run
    from alfaviz.widgets import dashboard

    return dashboard(open_run(check_run_dir(target)), watch=watch)


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - thin
    """``python -m alfaviz.serve RUN_DIR`` (the CLI's ``serve`` is the usual way)."""
    from alfaviz.cli import main as cli_main

    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])
