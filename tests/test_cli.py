"""The ``mixstat`` command line: versions, demo discovery and the table."""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from mixstat import cli

ROOT = Path(__file__).resolve().parents[1]


def test_versions_in_process(capsys):
    assert cli.main(["versions"]) == 0
    out = capsys.readouterr().out
    assert "mixstat:" in out and "backends:" in out and "numba:" in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_console_script_and_python_m():
    script = Path(sys.executable).with_name("mixstat")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if script.exists():
        proc = subprocess.run([str(script), "versions"], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "backends:" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "mixstat", "demo", "--help"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--quick", "--only", "--out"):
        assert flag in proc.stdout


def _fake_family(monkeypatch, name, run):
    mod = types.ModuleType(name)
    mod.run = run
    monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(cli, "DEMOS", [name])


@pytest.fixture
def table_to_capsys(monkeypatch, capsys):
    # cli._print_table binds sys.stdout when cli is imported (``file=sys.stdout``
    # default), before pytest's capsys swaps it: resolve it at call time
    orig = cli._print_table
    monkeypatch.setattr(cli, "_print_table",
                        lambda rows, file=None: orig(rows, file=file or sys.stdout))
    return capsys


def test_demo_discovers_a_family_and_prints_the_table(monkeypatch, tmp_path, table_to_capsys):
    calls = {}

    def run(out_dir, quick):
        calls["args"] = (out_dir, quick)
        return [{"model": "FakeModel", "data": "toy", "fit_time_s": 0.0123, "metric": "ARI=1.00"}]

    _fake_family(monkeypatch, "mixstat_fake_family._demo", run)
    out_dir = tmp_path / "figs"
    assert cli.main(["demo", "--quick", "--out", str(out_dir)]) == 0
    out = table_to_capsys.readouterr().out
    assert "FakeModel" in out and "ARI=1.00" in out and "0.012" in out
    assert calls["args"][1] is True
    if calls["args"][0] is not None:  # matplotlib present: the folder exists
        assert Path(calls["args"][0]) == out_dir and out_dir.is_dir()


def test_demo_failure_sets_exit_code_and_others_run(monkeypatch, tmp_path, capsys):
    def boom(out_dir, quick):
        raise RuntimeError("demo exploded")

    _fake_family(monkeypatch, "mixstat_fake_broken._demo", boom)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 1
    assert "demo exploded" in capsys.readouterr().err


def test_demo_skips_families_not_built_and_filters(monkeypatch, tmp_path, table_to_capsys):
    monkeypatch.setattr(cli, "DEMOS", ["mixstat.no_such_family._demo"])
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    assert "model" in table_to_capsys.readouterr().out  # an empty table, no error
    rows, failures = cli.demo(str(tmp_path), quick=True, only=["nothing-matches"])
    assert rows == [] and failures == 0


@pytest.mark.parametrize("rows", [[], [{"model": "M", "data": "d", "fit_time_s": 1.0,
                                         "metric": "x"}]])
def test_print_table(rows):
    import io

    buf = io.StringIO()
    cli._print_table(rows, file=buf)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("model") and len(lines) == 2 + len(rows)
