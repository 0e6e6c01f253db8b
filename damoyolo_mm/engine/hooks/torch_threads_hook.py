"""Set the number of intra-op threads of the training process."""
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log


@HOOKS.register_module()
class TorchThreadsHook(Hook):
    """Call ``torch.set_num_threads(num_threads)`` before the run.

    On a small CPU machine the main process shares the cores with its data
    loader workers; with more compute threads than free cores, OpenMP
    threads wait on each other and a training step can become several
    times slower (measured on 2 cores with one worker: 0.69 s per
    iteration with 1 thread, 6.2 s with 2 while another job was running).
    Data loader workers always use one thread.

    Args:
        num_threads (int): Threads of the main process (>= 1).
    """

    priority = 'VERY_HIGH'

    def __init__(self, num_threads: int = 1) -> None:
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f'num_threads must be an int >= 1, got '
                             f'{num_threads!r}')
        self.num_threads = num_threads

    def before_run(self, runner) -> None:
        """Set the thread count once, before anything runs."""
        if torch.get_num_threads() != self.num_threads:
            print_log(
                f'torch intra-op threads: {torch.get_num_threads()} -> '
                f'{self.num_threads}', logger='current')
            torch.set_num_threads(self.num_threads)
