import pytest

# every test here needs torch: without it the whole directory is skipped, with
# one line saying why (mixstat.nn raises ImportError naming the extra)
torch = pytest.importorskip(
    "torch", reason="mixstat.nn needs torch (pip install 'mixstat[torch]')")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny tensors: intra-op threads only add contention on a shared box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
