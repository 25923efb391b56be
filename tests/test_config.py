"""mixstat's configuration: get/set/config_context, thread-local."""

import threading

import pytest

import mixstat
from mixstat import config_context, get_config, set_config

DEFAULTS = {"backend": "auto", "use_numba": "auto", "device": None, "show_progress": True}


def test_defaults_and_copy():
    cfg = get_config()
    assert cfg == DEFAULTS
    cfg["backend"] = "torch"  # a copy: changing it changes nothing
    assert get_config()["backend"] == "auto"
    assert mixstat.get_config is get_config


def test_set_config_and_validation():
    try:
        set_config(backend="numpy", use_numba=False, device="cpu", show_progress=False)
        assert get_config() == {"backend": "numpy", "use_numba": False, "device": "cpu",
                                "show_progress": False}
        set_config()  # None leaves everything as is
        assert get_config()["backend"] == "numpy"
    finally:
        set_config(backend="auto", use_numba="auto", device="auto", show_progress=True)
    assert get_config() == DEFAULTS
    with pytest.raises(ValueError, match="backend must be one of"):
        set_config(backend="jax")
    with pytest.raises(ValueError, match="use_numba"):
        set_config(use_numba="yes")
    with pytest.raises(ValueError, match="backend must be one of"), config_context(backend="gpu"):
        pass
    assert get_config()["backend"] == "auto"


def test_config_context_restores_nested_and_on_error():
    with config_context(backend="numpy"):
        assert get_config()["backend"] == "numpy"
        with config_context(use_numba=False, device="cuda:1"):
            assert get_config() == {"backend": "numpy", "use_numba": False,
                                    "device": "cuda:1", "show_progress": True}
        assert get_config()["use_numba"] == "auto" and get_config()["device"] is None
    assert get_config() == DEFAULTS
    with pytest.raises(RuntimeError), config_context(backend="torch"):
        assert get_config()["backend"] == "torch"
        raise RuntimeError("boom")
    assert get_config() == DEFAULTS


def test_config_is_thread_local():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        seen["start"] = get_config()["backend"]
        with config_context(backend="torch"):
            seen["inside"] = get_config()["backend"]
            inside.set()
            release.wait(5)
        seen["after"] = get_config()["backend"]

    with config_context(backend="numpy"):
        t = threading.Thread(target=worker)
        t.start()
        inside.wait(5)
        # the other thread's context does not leak into this one, and vice versa
        assert get_config()["backend"] == "numpy"
        release.set()
        t.join()
    assert seen == {"start": "auto", "inside": "torch", "after": "auto"}
    assert get_config()["backend"] == "auto"
