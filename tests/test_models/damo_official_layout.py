"""Key names and shapes of official DAMO-YOLO state dicts, derived from the
official module structure (for converter tests; no official code used).

``official_layout(variant)`` returns an ordered ``{key: shape}`` of the whole
official ``Detector.state_dict()`` for one released variant.
"""
import math
from collections import OrderedDict

from damoyolo_mm.models.backbones import load_structure
from damoyolo_mm.models.layers import make_divisible

# per variant: backbone style, structure, focus, reparam, neck (in, out,
# depth, hidden_ratio, depthwise), head (reg_max, last kernel)
VARIANTS = {
    'Ns': ('mob', 'tinynas_nano_small', False, False,
           ([40, 80, 160], [40, 80, 160], 0.5, 0.5, True), (7, 1)),
    'Nm': ('mob', 'tinynas_nano_middle', False, False,
           ([64, 128, 256], [64, 128, 256], 0.5, 0.5, True), (7, 1)),
    'Nl': ('mob', 'tinynas_nano_large', False, False,
           ([80, 160, 320], [80, 160, 320], 0.5, 0.5, True), (7, 1)),
    'N': ('mob', 'tinynas_L20_k1kx_nano', True, False,
          ([80, 112, 160], [64, 128, 256], 0.5, 0.5, True), (7, 3)),
    'T': ('res', 'tinynas_L20_k1kx', True, True,
          ([96, 192, 384], [64, 128, 256], 1.0, 1.0, False), (16, 3)),
    'S': ('res', 'tinynas_L25_k1kx', True, True,
          ([128, 256, 512], [128, 256, 512], 1.0, 0.75, False), (16, 3)),
    'M': ('csp', 'tinynas_L35_kxkx', True, True,
          ([128, 256, 512], [128, 256, 512], 1.5, 1.0, False), (16, 3)),
    'L': ('csp', 'tinynas_L45_kxkx', True, True,
          ([128, 256, 512], [128, 256, 512], 2.0, 1.0, False), (16, 3)),
}


class _Layout:

    def __init__(self):
        self.keys = OrderedDict()

    def bn(self, p, c):
        for n in ('weight', 'bias', 'running_mean', 'running_var'):
            self.keys[f'{p}.{n}'] = (c, )
        self.keys[f'{p}.num_batches_tracked'] = ()

    def conv(self, p, cout, cin, k, bias=False):
        self.keys[f'{p}.weight'] = (cout, cin, k, k)
        if bias:
            self.keys[f'{p}.bias'] = (cout, )

    def convkxbn(self, p, cout, cin, k):  # ConvKXBN: conv1 / bn1
        self.conv(f'{p}.conv1', cout, cin, k)
        self.bn(f'{p}.bn1', cout)

    def convbnact(self, p, cout, cin, k):  # ConvBNAct: conv / bn
        self.conv(f'{p}.conv', cout, cin, k)
        self.bn(f'{p}.bn', cout)

    def repconv(self, p, cout, cin):
        self.convbnact(f'{p}.rbr_dense', cout, cin, 3)
        self.convbnact(f'{p}.rbr_1x1', cout, cin, 1)

    def resblock(self, p, cin, cout, btn, k, stride, kxkx, reparam):
        self.convkxbn(f'{p}.conv1', btn, cin, k if kxkx else 1)
        if reparam:
            self.repconv(f'{p}.conv2', cout, btn)
        else:
            self.convkxbn(f'{p}.conv2', cout, btn, k)
        if cin != cout and stride != 2:
            self.convkxbn(f'{p}.residual_proj', cout, cin, 1)

    def spp(self, p, c):
        self.convbnact(f'{p}.conv1', c // 2, c, 1)
        self.convbnact(f'{p}.conv2', c, c // 2 * 4, 1)

    def mobblock(self, p, cin, cout, ratio, backbone):
        mid = make_divisible(math.ceil(cout * ratio))
        i = (0, 1, 3, 4, 7, 8) if backbone else (0, 1, 3, 4, 6, 7)
        self.conv(f'{p}.{i[0]}', mid, cin, 1)
        self.bn(f'{p}.{i[1]}', mid)
        self.conv(f'{p}.{i[2]}', mid, 1, 5)
        self.bn(f'{p}.{i[3]}', mid)
        self.conv(f'{p}.{i[4]}', cout, mid, 1)
        self.bn(f'{p}.{i[5]}', cout)


def _backbone(lay, style, structure, focus, reparam):
    st = load_structure(structure)
    p = 'backbone.csp_stage.0' if style == 'csp' else 'backbone.block_list.0'
    s0 = st[0]
    if focus:
        lay.convbnact(f'{p}.conv', s0['out'], 4 * s0['in'], s0['k'])
    else:
        lay.convkxbn(f'{p}.conv', s0['out'], 3 if style == 'mob' else
                     s0['in'], s0['k'])
    last = len(st) - 1
    if style in ('res', 'mob'):
        for i, s in enumerate(st[1:], 1):
            j = 0
            for b in range(s['L']):
                cin = s['in'] if b == 0 else s['out']
                bp = f'backbone.block_list.{i}.block_list.{j}'
                if style == 'res':
                    lay.resblock(bp, cin, s['out'], s['btn'], s['k'],
                                 s['s'] if b == 0 else 1,
                                 s['class'] == 'SuperResConvKXKX', reparam)
                else:
                    ratio = 3.5 + (i - 1) * 0.5
                    lay.mobblock(bp + '.conv', cin, s['out'], ratio, True)
                j += 1
                if b == 0 and i == last:
                    lay.spp(f'backbone.block_list.{i}.block_list.{j}',
                            s['out'])
                    j += 1
        return
    # csp: official grouping [1], [2], [3, 4], [5]
    groups = [[1], [2], [3, 4], [5]]
    for g, members in enumerate(groups, 1):
        p = f'backbone.csp_stage.{g}'
        first, lst = st[members[0]], st[members[-1]]
        hidden = first['out'] // 2
        blocks = []
        for m in members:
            s = st[m]
            n = s['L'] - 1 if s['s'] == 2 else s['L']
            for b in range(n):
                cin = s['in'] // 2 if (s['s'] == 1 and b == 0) else \
                    s['out'] // 2
                blocks.append((cin, s['out'] // 2, s['btn'], s['k']))
        lay.convkxbn(f'{p}.downsampler.conv', 2 * hidden, first['in'], 3)
        if g == len(groups):
            lay.spp(f'{p}.spp', 2 * hidden)
        if blocks:
            lay.convkxbn(f'{p}.conv_start.conv', hidden, 2 * hidden, 1)
            lay.convkxbn(f'{p}.conv_shortcut.conv', lst['out'] // 2,
                         2 * hidden, 1)
            lay.convkxbn(f'{p}.conv_fuse.conv', lst['out'], lst['out'], 1)
        for j, (cin, cout, btn, k) in enumerate(blocks):
            lay.resblock(f'{p}.convstem.{j}', cin, cout, btn, k, 1, True,
                         reparam)


def _neck(lay, cin, cout, depth, ratio, dw):
    n = round(3 * depth)

    def down(p, c):
        if dw:
            lay.conv(f'{p}.depthwise', c, 1, 3)
            lay.bn(f'{p}.dwnorm', c)
            lay.conv(f'{p}.pointwise', c, c, 1)
            lay.bn(f'{p}.pwnorm', c)
        else:
            lay.convbnact(p, c, c, 3)

    def merge(p, ci, co):
        first = co // 2
        mid = co - first
        lay.convbnact(f'{p}.conv1', first, ci, 1)
        lay.convbnact(f'{p}.conv2', mid, ci, 1)
        for i in range(n):
            if dw:
                lay.mobblock(f'{p}.convs.{i}.conv.conv', mid, mid, 3.0, False)
            else:
                hidden = int(mid * ratio)
                lay.convbnact(f'{p}.convs.{i}.conv1', mid, hidden, 3)
                lay.repconv(f'{p}.convs.{i}.conv2', hidden, mid)
        lay.convbnact(f'{p}.conv3', co, mid * n + first, 1)

    c, o = cin, cout
    down('neck.bu_conv13', c[1])
    merge('neck.merge_3', c[1] + c[2], c[2])
    down('neck.bu_conv24', c[0])
    merge('neck.merge_4', c[0] + c[1] + c[2], c[1])
    merge('neck.merge_5', c[1] + c[0], o[0])
    down('neck.bu_conv57', o[0])
    merge('neck.merge_7', o[0] + c[1], o[1])
    down('neck.bu_conv46', c[1])
    down('neck.bu_conv76', o[1])
    merge('neck.merge_6', c[1] + o[1] + c[2], o[2])


def _head(lay, chans, reg_max, k):
    lay.keys['head.integral.project'] = (reg_max + 1, )
    for i, c in enumerate(chans):
        lay.conv(f'head.gfl_cls.{i}', 80, c, k, bias=True)
    for i, c in enumerate(chans):
        lay.conv(f'head.gfl_reg.{i}', 4 * (reg_max + 1), c, k, bias=True)
    for i in range(len(chans)):
        lay.keys[f'head.scales.{i}.scale'] = ()


def official_layout(variant, parts=('backbone', 'neck', 'head')):
    style, structure, focus, reparam, neck, head = VARIANTS[variant]
    lay = _Layout()
    if 'backbone' in parts:
        _backbone(lay, style, structure, focus, reparam)
    if 'neck' in parts:
        _neck(lay, *neck)
    if 'head' in parts:
        _head(lay, neck[1], *head)
    return lay.keys
