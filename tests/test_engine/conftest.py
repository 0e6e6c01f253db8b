import pytest
import torch


@pytest.fixture
def one_thread():
    """Restores torch's thread count after a benchmark set it to 1."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
