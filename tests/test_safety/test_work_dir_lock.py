"""One training run per work dir: a lock file (pid, host, start time);
a second run (or --resume) into a held work dir stops at once naming the
first; a lock left by a dead process is taken over with a warning; under
DDP only rank 0 takes it and no rank waits for one that stopped."""
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import textwrap
import time
from unittest import mock

import pytest
import torch

from damoyolo_mm.engine import DAMOYOLORunner, WorkDirLock, WorkDirLockedError
from damoyolo_mm.engine.work_dir_lock import LOCK_NAME
from safety_helpers import REPO, tiny_config, toy_runner_kwargs

HERE = osp.dirname(osp.abspath(__file__))

_HOLD = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, {repo!r})
    from damoyolo_mm.engine.work_dir_lock import WorkDirLock
    lock = WorkDirLock(sys.argv[1]).acquire()
    print('held', flush=True)
    time.sleep(600)
''')


@pytest.fixture
def holder(tmp_path):
    """A process holding the lock of ``tmp_path / 'work'``."""
    work = tmp_path / 'work'
    proc = subprocess.Popen(
        [sys.executable, '-c', _HOLD.format(repo=REPO), str(work)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'held'
    yield work, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=60)


def test_held_lock_names_the_run_then_is_taken_over_when_dead(holder):
    work, proc = holder
    with pytest.raises(WorkDirLockedError) as err:
        WorkDirLock(str(work)).acquire()
    text = str(err.value)
    assert text.startswith(f'work dir {work} is in use by another run (pid '
                           f'{proc.pid} on host {socket.gethostname()}, '
                           'started '), text
    assert osp.join(str(work), LOCK_NAME) in text
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    # the dead run's lock file stays; it is taken over with a warning
    with open(work / LOCK_NAME) as f:
        assert json.load(f)['pid'] == proc.pid
    with mock.patch('damoyolo_mm.engine.work_dir_lock.print_log') as warn:
        lock = WorkDirLock(str(work)).acquire()
    msgs = [str(c.args[0]) for c in warn.call_args_list]
    assert any('taking over the lock left by a run that ended' in m
               and f'pid {proc.pid}' in m for m in msgs), msgs
    with open(work / LOCK_NAME) as f:
        info = json.load(f)
    assert info['pid'] == os.getpid()
    assert info['host'] == socket.gethostname() and info['start_time']
    lock.release()
    assert not (work / LOCK_NAME).exists()


def _toy_runner(work_dir, cfg=None, **kwargs):
    from mmengine.config import Config
    return DAMOYOLORunner(**toy_runner_kwargs(
        work_dir, train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook',
                                           interval=1), logger=None),
        cfg=Config(cfg or dict(note='toy')), **kwargs))


@pytest.mark.parametrize('resume', [False, True])
def test_second_training_stops_before_writing(holder, resume):
    work, proc = holder
    kwargs = dict(resume=True, load_from=str(work / 'epoch_1.pth')) \
        if resume else {}
    runner = _toy_runner(work, experiment_name=f'second_{resume}', **kwargs)
    with pytest.raises(WorkDirLockedError, match=f'pid {proc.pid} on host'):
        runner.train()
    # neither the config dump nor a checkpoint of the second run
    assert sorted(os.listdir(work)) == sorted([LOCK_NAME, runner.timestamp])


def test_training_holds_the_lock_and_releases_it(tmp_path):
    work = tmp_path / 'work'
    seen = []

    runner = _toy_runner(work, experiment_name='holds')
    from mmengine.hooks import Hook

    class Look(Hook):

        def before_train(self, runner):
            with open(work / LOCK_NAME) as f:
                seen.append(json.load(f)['pid'])
            with pytest.raises(WorkDirLockedError):
                WorkDirLock(str(work)).acquire()

    runner.register_hook(Look())
    runner.train()
    assert seen == [os.getpid()]
    assert not (work / LOCK_NAME).exists()
    assert (work / f'{runner.timestamp}.py').exists()  # config dumped
    assert (work / 'epoch_1.pth').exists()


def test_tools_train_into_a_held_work_dir(holder, demo_data_root, tmp_path):
    work, proc = holder
    config = tmp_path / 'cfg.py'
    config.write_text(tiny_config(demo_data_root))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join([HERE, REPO])
    for extra in ([], ['--resume']):
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, 'tools/train.py', str(config), '--work-dir',
             str(work)] + extra, cwd=REPO, env=env, capture_output=True,
            text=True, timeout=600)
        assert out.returncode == 1, out.stderr[-3000:]
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith(f'error: work dir {work} is in use by another '
                               f'run (pid {proc.pid} on host'), last
        assert time.time() - t0 < 300
    assert not any(n.endswith(('.pth', 'cfg.py')) for n in os.listdir(work))


_DDP_SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {here!r})
    from mmengine.hooks import Hook
    from mmengine.config import Config
    from damoyolo_mm.engine import WorkDirLockedError, setup_distributed
    from test_work_dir_lock import _toy_runner

    class Look(Hook):
        def before_train(self, runner):
            # one file per rank: the ranks' stdout lines may interleave
            with open(os.path.join(sys.argv[1], 'run.lock')) as f:
                seen = dict(pid=os.getpid(), lockpid=json.load(f)['pid'])
            with open('seen_rank' + os.environ['RANK'] + '.json', 'w') as f:
                json.dump(seen, f)

    # gloo process group and a CPU DDP wrapper, as tools/train.py does
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo'))))
    setup_distributed(cfg, 'pytorch')
    runner = _toy_runner(sys.argv[1], cfg=cfg.to_dict(), launcher='pytorch',
                         env_cfg=cfg.env_cfg,
                         experiment_name='ddp_' + sys.argv[2])
    runner.register_hook(Look())
    try:
        runner.train()
    except WorkDirLockedError as e:
        print('rank', os.environ['RANK'], 'stopped:', e, flush=True)
        sys.exit(3)
    print('rank', os.environ['RANK'], 'trained', flush=True)
''')


def _torchrun(tmp_path, work, tag):
    script = tmp_path / 'ddp_lock.py'
    script.write_text(_DDP_SCRIPT.format(repo=REPO, here=HERE))
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', '--master_addr', '127.0.0.1', '--master_port', str(port),
         str(script), str(work), tag], cwd=str(tmp_path), env=env,
        capture_output=True, text=True, timeout=300)


def test_ddp_only_rank0_locks_and_every_rank_stops(holder, tmp_path):
    work, proc = holder
    out = _torchrun(tmp_path, work, 'held')  # timeout: a deadlock
    assert out.returncode != 0
    lines = out.stdout.splitlines()
    for rank in (0, 1):
        assert any(line.startswith(f'rank {rank} stopped:') and
                   f'pid {proc.pid} on host' in line for line in lines), \
            out.stdout + out.stderr[-3000:]
    assert not any('trained' in line for line in lines)
    with open(work / LOCK_NAME) as f:
        assert json.load(f)['pid'] == proc.pid  # untouched

    free = tmp_path / 'free'
    out = _torchrun(tmp_path, free, 'free')
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    seen = {}
    for rank in (0, 1):
        with open(tmp_path / f'seen_rank{rank}.json') as f:
            seen[rank] = json.load(f)
    # both ranks see the lock of rank 0's process
    rank0_pid = seen[0]['pid']
    assert seen[0]['lockpid'] == rank0_pid and seen[1]['lockpid'] == rank0_pid
    assert seen[1]['pid'] != rank0_pid
    assert not (free / LOCK_NAME).exists()
