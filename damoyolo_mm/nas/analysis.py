"""Analytic description of a structure: conv chains, stages, layers, params,
FLOPs and the op list used by the latency table.

Everything here is closed-form arithmetic on the structure dicts; no network
is instantiated.

Counting conventions (TinyNAS v1, the counts its search used for budgets):

* **params**: conv weights ``in*out*k*k/g`` plus 2 per BatchNorm channel,
  including the 1x1 projection conv of a residual block whose ``in != out``.
* **FLOPs**: per conv ``in*out*k*k/g`` multiply-accumulates at the output
  resolution plus ``2*out`` per output pixel for BN, plus ``out`` per pixel
  for each ReLU, plus the residual average pool (``in`` per output pixel of
  a stride-2 block) and the projection conv + BN + its ReLU.
* **layers**: stem 1, plus 2 per inner residual block (shortcut convs are not
  counted).

Two block implementations are modelled (``block_impl``):

* ``'res'``: the TinyNAS residual super-net that DAMO-YOLO-T/S/M/L were
  searched with (``ResConvK1KX``: 1x1 -> kxk; ``ResConvKXKX``: kxk -> kxk).
* ``'mobile'``: what DAMO-YOLO-Nano builds from a K1KX structure file: an
  inverted residual 1x1 (expanded width from the backbone's own rule,
  :func:`damoyolo_mm.models.backbones.tinynas.mobile_mid_channels`) -> 5x5
  depthwise (stride) -> 1x1; ``btn`` and ``k`` of the file are not used by
  that block.
"""
from typing import Dict, List, Sequence, Tuple

from damoyolo_mm.models.backbones.tinynas import mobile_mid_channels

BLOCK_IMPLS = ('res', 'mobile')
MOBILE_DW_KERNEL = 5

# one conv: (in_channels, out_channels, kernel, stride, groups)
Conv = Tuple[int, int, int, int, int]


def _check_impl(block_impl: str) -> None:
    if block_impl not in BLOCK_IMPLS:
        raise ValueError(f'block_impl must be one of {BLOCK_IMPLS}, got '
                         f'{block_impl!r}')


def inner_convs(block: dict, index: int, block_impl: str = 'res'
                ) -> List[List[Conv]]:
    """Convs of every inner block of one structure entry (the scored path:
    no shortcut convs). The stem is one inner block with one conv."""
    _check_impl(block_impl)
    cls = block['class']
    if cls == 'ConvKXBNRELU':
        return [[(block['in'], block['out'], block['k'], block['s'], 1)]]
    out, k, s, L = block['out'], block['k'], block['s'], block['L']
    result = []
    for j in range(L):
        cin = block['in'] if j == 0 else out
        stride = s if j == 0 else 1
        if block_impl == 'mobile':
            mid = mobile_mid_channels(out, index)
            result.append([(cin, mid, 1, 1, 1),
                           (mid, mid, MOBILE_DW_KERNEL, stride, mid),
                           (mid, out, 1, 1, 1)])
        else:
            btn = block['btn']
            k1 = 1 if cls == 'SuperResConvK1KX' else k
            result.append([(cin, btn, k1, 1, 1), (btn, out, k, stride, 1)])
    return result


def conv_chain(blocks: Sequence[dict], block_impl: str = 'res'
               ) -> List[List[Conv]]:
    """Inner blocks of the whole structure, in order (stem first)."""
    chain = []
    for idx, b in enumerate(blocks):
        chain += inner_convs(b, idx, block_impl)
    return chain


def stage_info(blocks: Sequence[dict]) -> Dict[str, list]:
    """Stage split as TinyNAS defines it.

    A new stage starts before every stride-2 block with index > 0; the last
    block closes the last stage. ``block_num`` is the *cumulative* number of
    inner blocks (stem = 1, super-block = L) at the end of each stage,
    ``channels`` the ``out`` of the stage's last block and ``last_index`` the
    index of that block.
    """
    last_index, channels, block_num = [], [], []
    n_inner = 0
    prev_out = None
    for idx, b in enumerate(blocks):
        if b['s'] == 2 and idx > 0:
            last_index.append(idx - 1)
            channels.append(prev_out)
            block_num.append(n_inner)
        n_inner += 1 if b['class'] == 'ConvKXBNRELU' else b['L']
        prev_out = b['out']
    last_index.append(len(blocks) - 1)
    channels.append(prev_out)
    block_num.append(n_inner)
    return dict(last_index=last_index, channels=channels, block_num=block_num)


def num_layers(blocks: Sequence[dict]) -> int:
    """TinyNAS layer count: stem 1, 2 per inner residual block."""
    return sum(1 if b['class'] == 'ConvKXBNRELU' else 2 * b['L']
               for b in blocks)


def num_stages(blocks: Sequence[dict]) -> int:
    """Number of stride-2 blocks (TinyNAS ``get_num_stages``)."""
    return sum(1 for b in blocks if b['s'] == 2)


# --------------------------------------------------------------------------
# params / FLOPs
# --------------------------------------------------------------------------
def _conv_bn(cin: int, cout: int, k: int, s: int, g: int = 1
             ) -> Tuple[float, float]:
    """(params, FLOPs per unit input area) of a conv + BN (TinyNAS)."""
    params = cin * cout * k * k / g + 2 * cout
    flops = cin * cout * k * k / s ** 2 / g + 2 * cout / s ** 2
    return params, flops


def res_inner_cost(cin: int, btn: int, cout: int, k: int, s: int, k1: int
                   ) -> Tuple[float, float]:
    """(params, FLOPs per unit input area) of one TinyNAS residual block."""
    p1, f1 = _conv_bn(cin, btn, k1, 1)
    p2, f2 = _conv_bn(btn, cout, k, s)
    params = p1 + p2
    flops = f1 + f2 + btn + cout / s ** 2  # + the two ReLUs
    if s == 2:
        flops += cin  # residual average pool
    if cin != cout:
        pp, fp = _conv_bn(cin, cout, 1, 1)
        params += pp
        flops += fp / s ** 2 + cout / s ** 2
    return params, flops


def mobile_inner_cost(cin: int, mid: int, cout: int, s: int
                      ) -> Tuple[float, float]:
    """(params, FLOPs per unit input area) of one Nano inverted residual."""
    p1, f1 = _conv_bn(cin, mid, 1, 1)
    p2, f2 = _conv_bn(mid, mid, MOBILE_DW_KERNEL, s, g=mid)
    p3, f3 = _conv_bn(mid, cout, 1, 1)
    params = p1 + p2 + p3
    flops = f1 + mid + f2 + mid / s ** 2 + f3 / s ** 2
    return params, flops


def block_cost(block: dict, index: int, resolution: float,
               block_impl: str = 'res') -> Tuple[float, float]:
    """(params, FLOPs) of one structure entry at its input resolution."""
    cls = block['class']
    if cls == 'ConvKXBNRELU':
        s = block['s']
        p, f = _conv_bn(block['in'], block['out'], block['k'], s)
        return p, (f + block['out'] / s ** 2) * resolution ** 2
    _check_impl(block_impl)
    out, k, s, L = block['out'], block['k'], block['s'], block['L']
    params = 0.0
    flops = 0.0
    res = 1.0
    for j in range(L):
        cin = block['in'] if j == 0 else out
        stride = s if j == 0 else 1
        if block_impl == 'mobile':
            p, f = mobile_inner_cost(cin, mobile_mid_channels(out, index),
                                     out, stride)
        else:
            k1 = 1 if cls == 'SuperResConvK1KX' else k
            p, f = res_inner_cost(cin, block['btn'], out, k, stride, k1)
        params += p
        flops += f * res ** 2
        res /= stride
    return params, flops * resolution ** 2


def count(blocks: Sequence[dict], image_size: int = 320,
          block_impl: str = 'res') -> Dict[str, float]:
    """Layers, params, FLOPs and stages of a (validated) structure."""
    params = 0.0
    flops = 0.0
    res = float(image_size)
    for idx, b in enumerate(blocks):
        p, f = block_cost(b, idx, res, block_impl)
        params += p
        flops += f
        res /= b['s']
    return dict(layers=num_layers(blocks), params=params, flops=flops,
                stages=num_stages(blocks))


# --------------------------------------------------------------------------
# op list for the latency table
# --------------------------------------------------------------------------
def block_ops(block: dict, index: int, resolution: int,
              block_impl: str = 'res') -> List[tuple]:
    """Ops of one structure entry in deploy form (BN folded into the conv).

    Op tuples: ``('conv', k, s, cin, cout, H_in)``, ``('dwconv', k, s, c,
    H_in)``, and element-wise ``('relu' | 'add' | 'avgpool', numel_in)``.
    """
    cls = block['class']
    R = int(resolution)
    if cls == 'ConvKXBNRELU':
        s = block['s']
        ro = R // s
        return [('conv', block['k'], s, block['in'], block['out'], R),
                ('relu', block['out'] * ro * ro)]
    _check_impl(block_impl)
    out, k, s, L = block['out'], block['k'], block['s'], block['L']
    ops = []
    for j in range(L):
        cin = block['in'] if j == 0 else out
        stride = s if j == 0 else 1
        ro = R // stride
        if block_impl == 'mobile':
            mid = mobile_mid_channels(out, index)
            ops += [('conv', 1, 1, cin, mid, R), ('relu', mid * R * R),
                    ('dwconv', MOBILE_DW_KERNEL, stride, mid, R),
                    ('relu', mid * ro * ro), ('conv', 1, 1, mid, out, ro)]
            if stride == 1 and cin == out:
                ops.append(('add', out * ro * ro))
        else:
            btn = block['btn']
            k1 = 1 if cls == 'SuperResConvK1KX' else k
            ops += [('conv', k1, 1, cin, btn, R), ('relu', btn * R * R),
                    ('conv', k, stride, btn, out, R)]
            if stride == 2:
                ops.append(('avgpool', cin * R * R))
            if cin != out:
                ops.append(('conv', 1, 1, cin, out, ro))
            ops += [('add', out * ro * ro), ('relu', out * ro * ro)]
        R = ro
    return ops


def structure_ops(blocks: Sequence[dict], image_size: int = 320,
                  block_impl: str = 'res') -> List[tuple]:
    """Ops of the whole structure (see :func:`block_ops`)."""
    ops = []
    res = int(image_size)
    for idx, b in enumerate(blocks):
        ops += block_ops(b, idx, res, block_impl)
        res = res // b['s']
    return ops
