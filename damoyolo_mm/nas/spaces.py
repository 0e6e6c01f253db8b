"""Search spaces: the mutation operators and the fast analytic evaluation
of candidates.

The mutation follows TinyNAS v1 (``space_K1KX`` / ``space_KXKX``), drawing
its random numbers in the same order from a :class:`random.Random`:

* a block is picked uniformly (the stem included unless ``exclude_stem``);
  ``num_mutations`` (2) mutations are applied per child, each retried up to
  ``len(blocks)`` times until the child passes the layer / stage limits (the
  last try is kept otherwise, and rejected later by the budget);
* stem: ``out`` only -- scaled, capped at ``stem_max_channels`` and at the
  next block's ``out``;
* super-block: one of ``mutate_methods`` (``out`` / ``btn`` / ``L``; the
  kernel is not searched by default). ``out``: scaled by a random factor of
  ``channel_scales``, rounded to a multiple of ``channel_divisor`` (at least
  one divisor), clamped to ``channel_range[block]``, at least ``in``, at
  most the next block's ``out``; the next block's ``btn`` is then capped at
  the new ``out``. ``btn``: scaled, at most ``out``. ``L``: ``+-1``/``+-2``,
  at least 1, at most ``first_block_max_L`` for block 1 and ``max_L``
  (default ``max_layers // 2 // (n_blocks - 2)``) elsewhere. Finally
  ``btn >= round(out / btn_min_ratio)``.

A candidate is encoded as a tuple of per-block tuples ``(out, btn, L, k)``
(the stem has ``btn = L = 0``); ``in`` is always the previous ``out`` and the
strides are fixed by the initial structure. Costs and score parts are cached
per block, so evaluating a child costs a few dictionary look-ups.
"""
import math
import random
from typing import Dict, List, Optional, Sequence, Tuple

from .analysis import block_cost, block_ops, inner_convs
from .registry import NAS_SPACES
from .scores import conv_log_std
from .structure import STEM_CLASS, StructureError, load_search_structure

Encoded = Tuple[Tuple[int, int, int, int], ...]


def smart_round(x: float, base: int = 8) -> int:
    """Round to a multiple of ``base`` (at least ``base``), as TinyNAS."""
    return max(base, round(x / float(base)) * base)


class SpaceConfigError(ValueError):
    """A search-space setting is malformed."""


class BaseResSpace:
    """A stem followed by super-blocks of one class (see module doc).

    Args:
        image_size: side of the stem input (320 = a 640 image after the
            detector's space-to-depth).
        channel_range: per block ``[min, max]`` of ``out`` or None (one entry
            per block, stem included).
        stem_max_channels: cap of the stem's ``out``.
        max_channels: cap of any mutated channel count.
        channel_scales: factors a mutated channel count is drawn from.
        channel_divisor: channel counts are multiples of this.
        mutate_methods: what a super-block mutation may change, subset of
            ``('out', 'btn', 'L', 'k')``.
        stem_mutate_methods: subset of ``('out', 'k')``.
        kernel_sizes: kernels for a ``'k'`` mutation.
        layer_deltas: steps of an ``'L'`` mutation.
        first_block_max_L: cap of ``L`` in block 1.
        max_L: cap of ``L`` in the other blocks; None derives it from the
            layer budget as TinyNAS does.
        btn_min_ratio: ``btn >= out / btn_min_ratio``.
        num_mutations: mutations per child.
        exclude_stem: never mutate the stem.
        max_stages: most stride-2 blocks allowed.
    """
    block_class = 'SuperResConvK1KX'
    block_impl = 'res'
    default_methods = ('out', 'btn', 'L')
    layers_per_inner = 2

    def __init__(self,
                 image_size: int = 320,
                 channel_range: Optional[Sequence] = None,
                 stem_max_channels: int = 32,
                 max_channels: int = 2048,
                 channel_scales: Sequence[float] = (2.0, 1.5, 1.25, 0.8, 0.6,
                                                    0.5),
                 channel_divisor: int = 8,
                 mutate_methods: Optional[Sequence[str]] = None,
                 stem_mutate_methods: Sequence[str] = ('out', ),
                 kernel_sizes: Sequence[int] = (3, 5),
                 layer_deltas: Sequence[int] = (-2, -1, 1, 2),
                 first_block_max_L: int = 2,
                 max_L: Optional[int] = None,
                 btn_min_ratio: float = 10,
                 num_mutations: int = 2,
                 exclude_stem: bool = False,
                 max_stages: int = 5) -> None:
        name = type(self).__name__
        if not isinstance(image_size, int) or image_size < 8:
            raise SpaceConfigError(
                f'{name}: image_size must be an int >= 8, got {image_size!r}')
        self.image_size = image_size
        self.channel_range = None if channel_range is None else [
            self._check_range(i, r) for i, r in enumerate(channel_range)]
        self.stem_max_channels = int(stem_max_channels)
        self.max_channels = int(max_channels)
        if not channel_scales or any(
                not isinstance(v, (int, float)) or v <= 0
                for v in channel_scales):
            raise SpaceConfigError(f'{name}: channel_scales must be positive '
                                   f'numbers, got {channel_scales!r}')
        self.channel_scales = list(channel_scales)
        self.channel_divisor = int(channel_divisor)
        methods = self.default_methods if mutate_methods is None \
            else mutate_methods
        bad = [m for m in methods if m not in ('out', 'btn', 'L', 'k')]
        if bad or not methods:
            raise SpaceConfigError(
                f'{name}: mutate_methods {list(methods)} must be a non-empty '
                "subset of ['out', 'btn', 'L', 'k']")
        self.mutate_methods = list(methods)
        bad = [m for m in stem_mutate_methods if m not in ('out', 'k')]
        if bad or not stem_mutate_methods:
            raise SpaceConfigError(
                f'{name}: stem_mutate_methods {list(stem_mutate_methods)} '
                "must be a non-empty subset of ['out', 'k']")
        self.stem_mutate_methods = list(stem_mutate_methods)
        self.kernel_sizes = list(kernel_sizes)
        self.layer_deltas = list(layer_deltas)
        self.first_block_max_L = int(first_block_max_L)
        self.max_L_cfg = max_L
        self.btn_min_ratio = btn_min_ratio
        if num_mutations < 1:
            raise SpaceConfigError(f'{name}: num_mutations must be >= 1')
        self.num_mutations = int(num_mutations)
        self.exclude_stem = bool(exclude_stem)
        self.max_stages = max_stages
        self.max_layers: Optional[int] = None
        self.max_L: Optional[int] = max_L
        self.strides: Optional[Tuple[int, ...]] = None
        self.stem_in: Optional[int] = None
        self._cache: Dict[tuple, tuple] = {}
        self.lut = None
        self.stage_weights = None

    def _check_range(self, i, r):
        if r is None:
            return None
        if (not isinstance(r, (list, tuple)) or len(r) != 2
                or not all(isinstance(v, int) and v > 0 for v in r)
                or r[0] > r[1]):
            raise SpaceConfigError(
                f'{type(self).__name__}: channel_range[{i}] must be None or '
                f'[min, max] with 0 < min <= max, got {r!r}')
        return tuple(r)

    # ------------------------------------------------------------ binding
    def bind(self, init_structure, max_layers: Optional[int] = None,
             lut=None, stage_weights: Optional[Sequence[float]] = None
             ) -> Encoded:
        """Fix strides / stem input from the initial structure and the
        limits the mutation needs. Returns the encoded initial structure."""
        name = type(self).__name__
        blocks = load_search_structure(init_structure)
        for i, b in enumerate(blocks[1:], 1):
            if b['class'] != self.block_class:
                raise StructureError(
                    f'{name}: block {i} of the initial structure is '
                    f'{b["class"]!r} but this space searches '
                    f'{self.block_class!r} blocks')
        n = len(blocks)
        if n < 3:
            raise SpaceConfigError(f'{name}: needs a stem and >= 2 blocks')
        if self.channel_range is not None and len(self.channel_range) != n:
            raise SpaceConfigError(
                f'{name}: channel_range has {len(self.channel_range)} '
                f'entries but the structure has {n} blocks (one entry per '
                'block, stem included)')
        self.strides = tuple(b['s'] for b in blocks)
        self.stem_in = blocks[0]['in']
        self.max_layers = max_layers
        if self.max_L_cfg is None:
            if max_layers is None:
                raise SpaceConfigError(
                    f'{name}: max_L is derived from the layer budget '
                    '(layers // 2 // (n_blocks - 2)); set budgets.layers or '
                    'search_space.max_L')
            self.max_L = int(max_layers // self.layers_per_inner // (n - 2))
        if self.max_L is None or self.max_L < 1:
            raise SpaceConfigError(
                f'{name}: max_L must be >= 1 (got {self.max_L}; the layer '
                f'budget {max_layers} is too small for {n - 1} blocks)')
        self.lut = lut
        self.stage_weights = None if stage_weights is None else \
            tuple(float(w) for w in stage_weights)
        # stage split: last block index of every stage
        last = [i - 1 for i in range(1, n) if self.strides[i] == 2]
        last.append(n - 1)
        self.stage_last = last
        # input resolution of every block and the kernel cap (TinyNAS
        # shrinks k while k * 1.5 > resolution)
        res = float(self.image_size)
        self.block_res = []
        for s in self.strides:
            self.block_res.append(res)
            res /= s
        self._cache.clear()
        return self.encode(blocks)

    # ------------------------------------------------- encode / decode
    def encode(self, blocks: Sequence[dict]) -> Encoded:
        enc = [(blocks[0]['out'], 0, 0, blocks[0]['k'])]
        for b in blocks[1:]:
            enc.append((b['out'], b['btn'], b['L'], b['k']))
        return tuple(enc)

    def decode(self, enc: Encoded) -> List[dict]:
        out0, _, _, k0 = enc[0]
        blocks = [{'class': STEM_CLASS, 'in': self.stem_in, 'out': out0,
                   's': self.strides[0], 'k': k0}]
        cin = out0
        for (out, btn, L, k), s in zip(enc[1:], self.strides[1:]):
            blocks.append({'class': self.block_class, 'in': cin, 'out': out,
                           's': s, 'k': k, 'L': L, 'btn': btn})
            cin = out
        return blocks

    @staticmethod
    def key_str(enc: Encoded) -> str:
        """Compact text of an encoded candidate: ``out,k|out,btn,L,k|...``."""
        stem = f'{enc[0][0]},{enc[0][3]}'
        return '|'.join([stem] + [f'{o},{b},{L},{k}' for o, b, L, k in
                                  enc[1:]])

    # -------------------------------------------------------- mutation
    def _mutate_channel(self, c: int, rng: random.Random) -> int:
        scale = rng.choice(self.channel_scales)
        return min(self.max_channels,
                   smart_round(scale * c, self.channel_divisor))

    def _mutate_kernel(self, k: int, rng: random.Random) -> int:
        new_k = k
        for _ in range(len(self.kernel_sizes)):
            new_k = rng.choice(self.kernel_sizes)
            if new_k != k:
                break
        return new_k

    def _mutate_layer(self, L: int, rng: random.Random) -> int:
        new_L = L
        for _ in range(len(self.layer_deltas)):
            new_L = max(1, L + rng.choice(self.layer_deltas))
            if new_L != L:
                break
        return new_L

    def _mutate_block(self, rid: int, cur: List[list], rng: random.Random):
        n = len(cur)
        b = list(cur[rid])
        if rid == 0:
            if rid > n - 2:
                return False
            method = rng.choice(self.stem_mutate_methods)
            if method == 'out':
                new_out = min(self.stem_max_channels,
                              self._mutate_channel(b[0], rng))
                if rid < n - 1:
                    new_out = min(cur[rid + 1][0], new_out)
                b[0] = new_out
            elif method == 'k':
                b[3] = self._mutate_kernel(b[3], rng)
            return b
        method = rng.choice(self.mutate_methods)
        if method == 'out':
            new_out = self._mutate_channel(b[0], rng)
            if self.channel_range is not None and \
                    self.channel_range[rid] is not None:
                lo, hi = self.channel_range[rid]
                new_out = max(lo, min(hi, new_out))
            new_out = max(cur[rid - 1][0], new_out)  # out >= in
            if rid < n - 1:
                new_out = min(cur[rid + 1][0], new_out)
            b[0] = new_out
            if rid < n - 1:
                # the next block's bottleneck never exceeds this out
                # (changed in the working copy, as TinyNAS does)
                cur[rid + 1][1] = min(new_out, cur[rid + 1][1])
        elif method == 'k':
            b[3] = self._mutate_kernel(b[3], rng)
        elif method == 'btn':
            b[1] = min(b[0], self._mutate_channel(b[1], rng))
        elif method == 'L':
            new_L = self._mutate_layer(b[2], rng)
            cap = self.first_block_max_L if rid == 1 else self.max_L
            b[2] = min(cap, new_L)
        if b[1] < b[0] / self.btn_min_ratio:
            b[1] = smart_round(b[0] / self.btn_min_ratio, self.channel_divisor)
        return b

    def _adjust_kernels(self, blocks: List[list]) -> None:
        for b, res in zip(blocks, self.block_res):
            k = b[3]
            while k * 1.5 > res:
                k -= 2
            b[3] = k

    def num_layers(self, enc) -> int:
        return 1 + self.layers_per_inner * sum(b[2] for b in enc[1:])

    def _valid(self, blocks) -> bool:
        if sum(1 for s in self.strides if s == 2) > self.max_stages:
            return False
        if self.max_layers is not None and \
                self.num_layers(blocks) > self.max_layers:
            return False
        return True

    def mutate(self, parent: Encoded, rng: random.Random) -> Encoded:
        """A child of ``parent`` after ``num_mutations`` mutations."""
        cur = [list(b) for b in parent]
        n = len(cur)
        for _ in range(self.num_mutations):
            new = None
            for _attempt in range(n):
                rid = rng.randint(0, n - 1)
                if self.exclude_stem:
                    while rid == 0:
                        rid = rng.randint(0, n - 1)
                mutated = self._mutate_block(rid, cur, rng)
                if mutated is False:
                    continue
                new = cur[:rid] + [mutated] + cur[rid + 1:]
                self._adjust_kernels(new)
                if self._valid(new):
                    break
            if new is not None:
                cur = new
        return tuple(tuple(b) for b in cur)

    # ------------------------------------------------------ evaluation
    def _block_entry(self, idx: int, cin: int, blk: tuple) -> tuple:
        key = (idx, cin) + blk
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out, btn, L, k = blk
        if idx == 0:
            d = {'class': STEM_CLASS, 'in': cin, 'out': out,
                 's': self.strides[0], 'k': k}
        else:
            d = {'class': self.block_class, 'in': cin, 'out': out,
                 's': self.strides[idx], 'k': k, 'L': L, 'btn': btn}
        res = self.block_res[idx]
        params, flops = block_cost(d, idx, res, self.block_impl)
        log_std = sum(conv_log_std(c[0], c[2], c[4])
                      for convs in inner_convs(d, idx, self.block_impl)
                      for c in convs)
        if self.lut is not None:
            try:
                lat = self.lut.predict_ops(
                    block_ops(d, idx, int(res), self.block_impl),
                    self.block_impl)
            except (KeyError, ValueError):
                lat = math.inf  # op not in the table: never within budget
        else:
            lat = 0.0
        entry = (params, flops, lat, log_std)
        self._cache[key] = entry
        return entry

    def evaluate(self, enc: Encoded) -> Tuple[int, float, float, float,
                                               Optional[float]]:
        """(layers, params, flops, latency, madnas or None) of a candidate.

        The madnas score is computed when ``stage_weights`` were bound.
        """
        params = flops = lat = 0.0
        cin = self.stem_in
        cum = []
        acc = 0.0
        for idx, blk in enumerate(enc):
            p, f, t, ls = self._block_entry(idx, cin, blk)
            params += p
            flops += f
            lat += t
            acc += ls
            cum.append(acc)
            cin = blk[0]
        score = None
        if self.stage_weights is not None:
            if len(self.stage_weights) != len(self.stage_last):
                raise ValueError(
                    f'stage_weights has {len(self.stage_weights)} entries but '
                    f'the structure has {len(self.stage_last)} stages')
            score = 0.0
            for w, last in zip(self.stage_weights, self.stage_last):
                if w != 0:
                    score += w * (cum[last] + math.log(enc[last][0]))
        return self.num_layers(enc), params, flops, lat, score

    def minimal(self, init: Encoded) -> Encoded:
        """The cheapest structure the mutations can reach: smallest
        channels allowed by the ranges and ``out >= in``, ``L = 1``,
        smallest bottleneck (used to report the minimum of a budget)."""
        d = self.channel_divisor
        kmin = min(self.kernel_sizes) if 'k' in self.mutate_methods else None
        enc = []
        prev = d
        for i, (out, btn, L, k) in enumerate(init):
            if i == 0:
                kk = min(self.kernel_sizes) if 'k' in \
                    self.stem_mutate_methods else k
                enc.append([d, 0, 0, kk])
                prev = d
                continue
            lo = d
            if self.channel_range is not None and \
                    self.channel_range[i] is not None:
                lo = self.channel_range[i][0]
            o = max(prev, lo)
            b = max(d, smart_round(o / self.btn_min_ratio, d))
            enc.append([o, b, 1, kmin if kmin is not None else k])
            prev = o
        self._adjust_kernels(enc)
        return tuple(tuple(b) for b in enc)


@NAS_SPACES.register_module()
class ResK1KXSpace(BaseResSpace):
    """TinyNAS ``SuperResConvK1KX`` space (1x1 -> kxk residual blocks),
    DAMO-YOLO-T/S."""
    block_class = 'SuperResConvK1KX'


@NAS_SPACES.register_module()
class ResKXKXSpace(BaseResSpace):
    """TinyNAS ``SuperResConvKXKX`` space (kxk -> kxk residual blocks),
    DAMO-YOLO-M/L."""
    block_class = 'SuperResConvKXKX'


@NAS_SPACES.register_module()
class NanoMobileSpace(BaseResSpace):
    """DAMO-YOLO-Nano space: K1KX structure files whose blocks are built as
    inverted residuals (1x1 expand, 5x5 depthwise, 1x1; see
    :mod:`damoyolo_mm.nas.analysis`). ``btn`` and ``k`` are not used by the
    built block, so only ``out`` and ``L`` are searched, and costs and the
    score follow the built block."""
    block_class = 'SuperResConvK1KX'
    block_impl = 'mobile'
    default_methods = ('out', 'L')
