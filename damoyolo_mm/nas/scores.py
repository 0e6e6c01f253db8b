"""Zero-shot MAE scores of a backbone structure.

Both scores measure the same quantity, the log of the output standard
deviation of a Gaussian-initialised network without BN, activation or
residual path, aggregated per down-sampling stage:

``S_i = sum_{b < N_i} log(sigma_b) + log(C_i)``, ``score = sum_i w_i * S_i``

where ``N_i`` is the cumulative number of inner blocks at the end of stage
``i`` (the stem counts 1), ``C_i`` the stage's output channels and ``w_i``
the stage weights.

* ``madnas`` -- closed form (what every DAMO-YOLO search used, weights
  ``[0, 0, 1, 1, 16]``): a conv with ``N(0, 1)`` weights on unit-variance
  input has an output std of ``sqrt(C_in * k * k / g)``, so each conv adds
  ``1/2 * log(C_in * k * k / g)``. Deterministic, float64, no forward pass.
* ``entropy`` -- the stochastic forward version (MAE-DET paper, default
  weights ``[0, 0, 1, 1, 6]``): ``N(0, 1)`` weights and ``N(0, 1)`` input,
  no BN / ReLU / residual, each conv output divided by its own (unbiased,
  whole-tensor) std, averaged over repeats. Its mean sits slightly below
  ``madnas`` because zero padding lowers the variance at feature-map borders.
"""
import math
import zlib
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .analysis import BLOCK_IMPLS, conv_chain, stage_info
from .registry import NAS_SCORES

DAMOYOLO_STAGE_WEIGHTS = (0, 0, 1, 1, 16)
MAEDET_STAGE_WEIGHTS = (0, 0, 1, 1, 6)


def _check_weights(stage_weights: Sequence[float], n_stages: int) -> None:
    if len(stage_weights) != n_stages:
        raise ValueError(
            f'stage_weights has {len(stage_weights)} entries '
            f'{list(stage_weights)} but the structure has {n_stages} stages '
            '(a new stage starts at every stride-2 block after the stem); '
            'give one weight per stage')


def conv_log_std(cin: int, k: int, groups: int = 1) -> float:
    """Closed-form log output std of one Gaussian conv: 1/2 log(fan_in)."""
    return math.log(math.sqrt(cin / groups * k * k))


def madnas_details(blocks: Sequence[dict],
                   stage_weights: Sequence[float] = DAMOYOLO_STAGE_WEIGHTS,
                   block_impl: str = 'res') -> Dict[str, object]:
    """madnas with its intermediate values (per-block log std, stages)."""
    chain = conv_chain(blocks, block_impl)
    block_log_std = [sum(conv_log_std(c[0], c[2], c[4]) for c in convs)
                     for convs in chain]
    info = stage_info(blocks)
    _check_weights(stage_weights, len(info['block_num']))
    stage_unweighted = []
    total = 0.0
    for n, ch, w in zip(info['block_num'], info['channels'], stage_weights):
        s = sum(block_log_std[:n]) + math.log(ch)
        stage_unweighted.append(s)
        if w != 0:
            total += w * s
    return dict(score=float(total), block_log_std=block_log_std,
                stage_unweighted=stage_unweighted,
                stage_block_num=info['block_num'],
                stage_channels=info['channels'])


def madnas_score(blocks: Sequence[dict],
                 stage_weights: Sequence[float] = DAMOYOLO_STAGE_WEIGHTS,
                 block_impl: str = 'res') -> float:
    """The closed-form MAE score (``madnas``) of a validated structure."""
    return madnas_details(blocks, stage_weights, block_impl)['score']


@torch.no_grad()
def entropy_score(blocks: Sequence[dict],
                  stage_weights: Sequence[float] = MAEDET_STAGE_WEIGHTS,
                  batch_size: int = 32,
                  image_size: int = 320,
                  repeats: int = 4,
                  seed: Optional[int] = None,
                  block_impl: str = 'res',
                  device: str = 'cpu') -> Dict[str, float]:
    """The forward-pass MAE score (``entropy``), float32.

    Returns:
        dict: ``score`` (mean over repeats), ``std`` (population std over
        repeats) and ``per_repeat``.
    """
    chain = conv_chain(blocks, block_impl)
    info = stage_info(blocks)
    _check_weights(stage_weights, len(info['block_num']))
    gen = torch.Generator(device='cpu')
    if seed is not None:
        gen.manual_seed(int(seed))
    else:
        gen.seed()
    in_ch = blocks[0]['in']
    totals = []
    for _ in range(repeats):
        x = torch.randn(batch_size, in_ch, image_size, image_size,
                        generator=gen, dtype=torch.float32).to(device)
        block_std = []
        for convs in chain:
            acc = torch.ones((), dtype=torch.float32, device=device)
            for cin, cout, k, s, g in convs:
                w = torch.randn(cout, cin // g, k, k, generator=gen,
                                dtype=torch.float32).to(device)
                x = F.conv2d(x, w, stride=s, padding=(k - 1) // 2, groups=g)
                sd = x.std()
                acc = acc * sd
                x = x / sd
            block_std.append(acc)
        stage_scores = []
        for n, ch, w in zip(info['block_num'], info['channels'],
                            stage_weights):
            if w == 0:
                stage_scores.append(0.0)
                continue
            log_sum = torch.zeros((), dtype=torch.float32, device=device)
            for b in range(n):
                log_sum = log_sum + torch.log(block_std[b])
            stage_scores.append((log_sum + np.log(ch)).item() * w)
        totals.append(float(np.sum(stage_scores)))
    arr = np.asarray(totals, dtype=np.float64)
    return dict(score=float(arr.mean()), std=float(arr.std()),
                per_repeat=totals)


@NAS_SCORES.register_module(name='madnas')
class MadnasScore:
    """Config wrapper of :func:`madnas_score` (deterministic, cheap).

    Args:
        stage_weights: one weight per stage, DAMO-YOLO ``[0, 0, 1, 1, 16]``.
    """
    deterministic = True

    def __init__(self,
                 stage_weights: Sequence[float] = DAMOYOLO_STAGE_WEIGHTS,
                 block_impl: str = 'res') -> None:
        self.stage_weights = tuple(float(w) for w in stage_weights)
        if block_impl not in BLOCK_IMPLS:
            raise ValueError(f'block_impl must be one of {BLOCK_IMPLS}')
        self.block_impl = block_impl

    def __call__(self, blocks: Sequence[dict]) -> float:
        return madnas_score(blocks, self.stage_weights, self.block_impl)


@NAS_SCORES.register_module(name='entropy')
class EntropyScore:
    """Config wrapper of :func:`entropy_score` (stochastic, forward pass).

    The seed of each call is derived from ``seed`` and the structure itself,
    so a search stays reproducible (also when it is resumed).
    """
    deterministic = False

    def __init__(self,
                 stage_weights: Sequence[float] = MAEDET_STAGE_WEIGHTS,
                 batch_size: int = 32,
                 image_size: int = 320,
                 repeats: int = 4,
                 seed: int = 0,
                 block_impl: str = 'res',
                 device: str = 'cpu') -> None:
        self.stage_weights = tuple(float(w) for w in stage_weights)
        self.batch_size = batch_size
        self.image_size = image_size
        self.repeats = repeats
        self.seed = seed
        self.block_impl = block_impl
        self.device = device

    def __call__(self, blocks: Sequence[dict]) -> float:
        key = zlib.crc32(repr([sorted(b.items()) for b in blocks]).encode())
        return entropy_score(
            blocks, self.stage_weights, batch_size=self.batch_size,
            image_size=self.image_size, repeats=self.repeats,
            seed=(self.seed * 1000003 + key) % (2**62),
            block_impl=self.block_impl, device=self.device)['score']
