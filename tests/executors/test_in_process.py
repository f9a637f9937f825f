import torch

from pynas.controller.threads import single_thread
from pynas.executors import InProcessExecutor


def test_in_process_executor_maps_lazily_in_order():
    calls = []

    def square(x):
        calls.append(x)
        return x * x

    ex = InProcessExecutor()
    assert isinstance(ex, InProcessExecutor) and ex.workers == 1
    results = ex.map(square, [1, 2, 3])
    assert calls == []  # nothing runs until the caller asks for results
    assert next(results) == 1 and calls == [1]
    assert list(results) == [4, 9]
    ex.close()


def test_single_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
