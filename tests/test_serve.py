"""alfaviz serve: its checks, Voila's arguments and the served notebook (no browser here)."""

from __future__ import annotations

import json

import nbformat
import pytest

from alfaviz.errors import AlfavizInputError
from alfaviz.serve import (
    RUN_ENV,
    check_address,
    check_run_dir,
    dashboard_notebook,
    free_port,
    serve,
    served_dashboard,
)


def test_loopback_is_the_default_and_anything_else_needs_allow_remote():
    assert check_address("127.0.0.1") == "127.0.0.1"
    assert check_address("localhost") == "127.0.0.1"
    assert check_address("::1") == "::1"
    with pytest.raises(AlfavizInputError, match="--allow-remote"):
        check_address("0.0.0.0")
    with pytest.raises(AlfavizInputError, match="--allow-remote"):
        check_address("192.168.1.20")
    assert check_address("0.0.0.0", allow_remote=True) == "0.0.0.0"
    with pytest.raises(AlfavizInputError, match="IP address"):
        check_address("example.com; rm -rf /")


def test_run_paths_are_checked(tmp_path):
    with pytest.raises(AlfavizInputError, match="does not exist"):
        check_run_dir(tmp_path / "nope")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(AlfavizInputError, match="is a file"):
        check_run_dir(f)
    with pytest.raises(AlfavizInputError, match=r"no config\.json"):
        check_run_dir(tmp_path)
    with pytest.raises(AlfavizInputError, match="run directory"):
        check_run_dir("")
    (tmp_path / "config.json").write_text(json.dumps({}))
    assert check_run_dir(str(tmp_path)) == tmp_path.resolve()


def test_voila_gets_no_way_to_run_code_and_culls_idle_kernels(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    argv = serve(tmp_path, port=8123, argv_only=True)
    assert argv[0] == str(dashboard_notebook())
    assert "--port=8123" in argv
    assert "--Voila.ip=127.0.0.1" in argv
    assert "--Voila.token=" in argv  # loopback: no token
    assert "--VoilaConfiguration.show_tracebacks=False" in argv
    assert "--VoilaConfiguration.strip_sources=True" in argv
    assert any(a.startswith("--MappingKernelManager.cull_idle_timeout=") for a in argv)
    remote = serve(tmp_path, port=8123, ip="0.0.0.0", allow_remote=True, argv_only=True)
    token = next(a for a in remote if a.startswith("--Voila.token="))
    assert len(token.split("=", 1)[1]) >= 16  # a remote page needs the token
    with pytest.raises(AlfavizInputError, match="--allow-remote"):
        serve(tmp_path, ip="10.0.0.1", argv_only=True)
    with pytest.raises(AlfavizInputError, match="--port"):
        serve(tmp_path, port=70000, argv_only=True)
    with pytest.raises(AlfavizInputError, match="RUN_DIR"):
        serve(None, argv_only=True)
    assert 0 < free_port() < 65536


def test_the_voila_kernel_accepts_no_execute_request():
    """The page talks to its kernel through Voila's kernel manager, which passes widget
    messages only; this pins the installed Voila's list."""
    import inspect

    import voila.app

    src = inspect.getsource(voila.app.Voila.init_settings)
    start = src.index("allowed_message_types")
    allowed = src[start : src.index("]", start)]
    assert "comm_msg" in allowed
    assert "execute_request" not in allowed


def test_the_shipped_notebook_only_builds_the_dashboard():
    nb = nbformat.read(dashboard_notebook(), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == 1
    assert "served_dashboard()" in code[0].source
    assert all(not c.get("outputs") for c in code)


def test_the_served_notebook_opens_the_run_in_the_environment(tmp_path, monkeypatch):
    from tests.widgets.conftest import make_run

    run = make_run(tmp_path / "run", labelling="human", rounds=1)
    monkeypatch.delenv(RUN_ENV, raising=False)
    with pytest.raises(AlfavizInputError, match="alfaviz serve"):
        served_dashboard()
    monkeypatch.setenv(RUN_ENV, str(run.path))
    board = served_dashboard()
    try:
        assert board.data.n_rounds == 1
        assert not board.data.read_only  # a person labels this run in the browser
    finally:
        board.close()
    monkeypatch.setenv(RUN_ENV, str(tmp_path / "missing"))
    with pytest.raises(AlfavizInputError, match="does not exist"):
        served_dashboard()


def test_one_kernel_waits_preheated_and_refills_only_after_a_page_has_drawn(tmp_path):
    from alfaviz.serve import REFILL_DELAY_S

    (tmp_path / "config.json").write_text("{}")
    argv = serve(tmp_path, port=8123, argv_only=True)
    assert "--preheat_kernel=True" in argv
    assert "--pool_size=1" in argv
    assert f"--VoilaKernelManager.fill_delay={REFILL_DELAY_S}" in argv
    assert REFILL_DELAY_S >= 10  # a refill must not compete with the page just served
    cold = serve(tmp_path, port=8123, preheat=False, argv_only=True)
    assert not any("preheat" in a or "fill_delay" in a for a in cold)
