"""Running the official DAMO-YOLO code in this process, for comparisons.

The official code (a checkout of tinyvision/DAMO-YOLO) imports torchvision,
loguru, thop and easydict at import time. :func:`official_code` installs
in-memory stand-ins for the missing ones: what the data loader and the
demo's post-processing use (torchvision's ``affine``, ``to_pil_image``,
``to_tensor``, ``normalize``, ``CocoDetection``, ``nms``, ``batched_nms``)
works, the rest raises if a path that really needs it is reached. It
removes them again on exit, together with every official module, so that
nothing leaks into the rest of the process.
"""
import contextlib
import importlib.util
import os
import os.path as osp
import shutil
import sys
import tempfile
import types
from typing import Dict, List

import numpy as np
import torch

#: the official module names the stand-ins replace
STAND_IN_PACKAGES = ('torchvision', 'loguru', 'thop', 'easydict')


class _Unavailable:
    """Callable placeholder that raises when the official code needs it."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            f'{self.what} is a stand-in installed by '
            'damoyolo_mm.benchmark.official_code; this code path of the '
            'official implementation needs the real package')

    def __getattr__(self, name):
        return _Unavailable(f'{self.what}.{name}')


class _Logger:
    """loguru.logger stand-in: prints nothing, ``catch`` re-raises."""

    def catch(self, func=None, **kwargs):
        if func is None:
            return lambda f: f
        return func

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class EasyDict(dict):
    """easydict.EasyDict stand-in: attribute access, nested conversion."""

    def __init__(self, d=None, **kwargs):
        super().__init__()
        d = dict(d or {}, **kwargs)
        for k, v in d.items():
            setattr(self, k, v)
        for k in self.__class__.__dict__:
            if not (k.startswith('__') and k.endswith('__')) and k not in (
                    'update', 'pop'):
                setattr(self, k, getattr(self, k))

    def __setattr__(self, name, value):
        if isinstance(value, (list, tuple)):
            value = type(value)(self.__class__(x) if isinstance(x, dict) else
                                x for x in value)
        elif isinstance(value, dict) and not isinstance(value, EasyDict):
            value = self.__class__(value)
        super().__setattr__(name, value)
        super().__setitem__(name, value)

    __setitem__ = __setattr__

    def update(self, e=None, **f):
        d = e or dict()
        d.update(f)
        for k in d:
            setattr(self, k, d[k])

    def pop(self, k, *args):
        if hasattr(self, k):
            delattr(self, k)
        return super().pop(k, *args)


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__doc__ = 'stand-in (damoyolo_mm.benchmark.official_code)'
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


def _affine(img, angle, translate, scale, shear, **kwargs):
    """torchvision's ``F.affine`` of a PIL image (its inverse matrix,
    bilinear); ``resample=`` is refused as by torchvision >= 0.13, so the
    official code retries with the current argument names."""
    from PIL import Image
    if 'resample' in kwargs:
        raise TypeError('affine() got an unexpected keyword argument '
                        "'resample'")
    shear = list(shear) + [0.] if np.ndim(shear) else [shear, 0.]
    r, sx, sy = (float(np.radians(v)) for v in (angle, *shear[:2]))
    a, c = np.cos(r - sy) / np.cos(sy), np.sin(r - sy) / np.cos(sy)
    b, d = -a * np.tan(sx) - np.sin(r), -c * np.tan(sx) + np.cos(r)
    m = [float(x) / scale for x in (d, -b, 0., -c, a, 0.)]
    (cx, cy), (tx, ty) = (img.size[0] * .5, img.size[1] * .5), translate
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
    return img.transform(img.size, Image.AFFINE, m, Image.BILINEAR,
                         fillcolor=kwargs.get('fill'))


def _to_pil_image(t: torch.Tensor):
    """torchvision's ``F.to_pil_image`` of a float CHW tensor in [0, 1]."""
    from PIL import Image
    return Image.fromarray(t.mul(255).byte().permute(1, 2, 0).numpy())


def _to_tensor(pic) -> torch.Tensor:
    """torchvision's ``F.to_tensor`` of an RGB PIL image / HWC uint8."""
    return torch.from_numpy(np.array(pic)).permute(2, 0, 1).float().div(255)


def _normalize(t: torch.Tensor, mean, std) -> torch.Tensor:
    """torchvision's ``F.normalize`` of a CHW tensor."""
    return (t - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None,
                                                                        None]


def _nms(boxes: torch.Tensor, scores: torch.Tensor,
         iou_threshold: float) -> torch.Tensor:
    """torchvision's ``ops.nms``: kept indices by decreasing score, with
    mmcv's compiled NMS kernel (same IoU definition, no +1 offset)."""
    if boxes.numel() == 0:
        return torch.empty((0, ), dtype=torch.int64)
    from mmcv.ops import nms
    return nms(boxes.float(), scores.float(), float(iou_threshold))[1]


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor,
                 idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision's ``ops.batched_nms``: NMS per category, done as one NMS
    on boxes shifted apart per category (torchvision's coordinate trick)."""
    if boxes.numel() == 0:
        return torch.empty((0, ), dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return _nms(boxes + offsets[:, None], scores, iou_threshold)


class CocoDetection:
    """torchvision.datasets.CocoDetection stand-in: RGB PIL image and the
    annotations of the i-th image (sorted ids), via pycocotools."""

    def __init__(self, root: str, annFile: str, *args, **kwargs) -> None:
        from pycocotools.coco import COCO
        self.root, self.coco = root, COCO(annFile)
        self.ids = list(sorted(self.coco.imgs.keys()))

    def __getitem__(self, i: int):
        from PIL import Image
        path = self.coco.loadImgs(self.ids[i])[0]['file_name']
        return (Image.open(osp.join(self.root, path)).convert('RGB'),
                self.coco.loadAnns(self.coco.getAnnIds(self.ids[i])))

    def __len__(self) -> int:
        return len(self.ids)


def _stand_ins() -> Dict[str, Dict[str, types.ModuleType]]:
    """Per package, the stand-in modules (name -> module)."""
    u = _Unavailable
    functional = _module(
        'torchvision.transforms.functional', affine=_affine,
        to_pil_image=_to_pil_image, to_tensor=_to_tensor,
        normalize=_normalize)
    transforms = _module('torchvision.transforms', functional=functional)
    ops = _module('torchvision.ops', nms=_nms, batched_nms=_batched_nms,
                  box_iou=u('torchvision.ops.box_iou'))
    coco = _module('torchvision.datasets.coco', CocoDetection=CocoDetection)
    datasets = _module('torchvision.datasets', coco=coco)
    tv = _module('torchvision', __version__='0.0.0+stub', ops=ops,
                 transforms=transforms, datasets=datasets)
    return dict(
        torchvision={m.__name__: m for m in (tv, ops, transforms, functional,
                                             datasets, coco)},
        loguru={'loguru': _module('loguru', logger=_Logger())},
        thop={'thop': _module('thop', profile=u('thop.profile'),
                              clever_format=u('thop.clever_format'))},
        easydict={'easydict': _module('easydict', EasyDict=EasyDict)})


def _missing(name: str) -> bool:
    return name not in sys.modules and importlib.util.find_spec(name) is None


@contextlib.contextmanager
def official_code(official_root: str):
    """Import and run official code: stand-ins, ``damo`` package, a scratch
    cwd. Yields the scratch folder.

    ``import damo.<sub>`` loads the official modules without running
    ``damo/__init__.py`` (which imports the trainer and the datasets).
    Official configs read their structure files relative to the cwd and the
    official converter writes its ONNX into the cwd, so the cwd is a
    temporary folder with a ``damo`` link; the source tree stays untouched.
    On exit the cwd, ``sys.path``, ``sys.argv`` and ``sys.modules`` are
    restored (stand-ins and official modules removed, modules it replaced
    put back); objects built inside keep working.
    """
    root = osp.abspath(official_root)
    if not osp.isdir(osp.join(root, 'damo')):
        raise FileNotFoundError(
            f'official root {root} has no damo/ folder (expected a checkout '
            'of tinyvision/DAMO-YOLO)')
    old_cwd, old_path, old_argv = os.getcwd(), list(sys.path), sys.argv
    before = set(sys.modules)
    stubs: List[str] = []
    for package, modules in _stand_ins().items():
        if _missing(package):
            sys.modules.update(modules)
            stubs.append(package)
    saved_damo = {k: v for k, v in sys.modules.items()
                  if k == 'damo' or k.startswith('damo.')}
    for k in saved_damo:
        del sys.modules[k]
    sys.modules['damo'] = _module('damo', __path__=[osp.join(root, 'damo')])
    sys.path.append(root)
    try:
        with tempfile.TemporaryDirectory(prefix='damo_official_') as tmp:
            os.symlink(osp.join(root, 'damo'), osp.join(tmp, 'damo'))
            os.chdir(tmp)
            try:
                yield types.SimpleNamespace(tmp=tmp, stubs=stubs)
            finally:
                os.chdir(old_cwd)
    finally:
        sys.path[:] = old_path
        sys.argv = old_argv
        for name in list(sys.modules):
            if name in before:
                continue
            path = getattr(sys.modules[name], '__file__', None) or ''
            if (name == 'damo' or name.startswith('damo.')
                    or name.split('.')[0] in stubs
                    or osp.abspath(path).startswith(root + os.sep)):
                del sys.modules[name]
        sys.modules.update(saved_damo)


def official_config_path(official_root: str, config: str) -> str:
    """An official config given as a path, relative to the root, or as a
    file name in ``<root>/configs``."""
    root = osp.abspath(official_root)
    for path in (config, osp.join(root, config),
                 osp.join(root, 'configs', config)):
        if osp.isfile(path):
            return osp.abspath(path)
    raise FileNotFoundError(f'official config {config!r} not found (as a '
                            f'path, in {root} or in {root}/configs)')


def load_official_state_dict(official_ckpt: str) -> Dict[str, torch.Tensor]:
    """Float32 state dict of an official checkpoint (``{'model': ...}``)."""
    ckpt = torch.load(official_ckpt, map_location='cpu', weights_only=True)
    sd = ckpt['model'] if 'model' in ckpt else ckpt
    return {
        k.replace('module.', ''): v.float() if v.is_floating_point() else v
        for k, v in sd.items()
    }


def build_official_fused(official_root: str, official_config: str,
                         official_ckpt: str) -> torch.nn.Module:
    """Official model, weights loaded, RepConv re-parameterised and conv+BN
    folded (``tools/eval.py --fuse``), NMS off."""
    cfg_path = official_config_path(official_root, official_config)
    with official_code(official_root):
        from damo.config.base import parse_config
        config = parse_config(cfg_path)
        from damo.detectors.detector import build_local_model
        model = build_local_model(config, 'cpu')
        model.eval()
        model.load_state_dict(load_official_state_dict(official_ckpt),
                              strict=True)
        from damo.base_models.core.ops import RepConv
        from damo.utils.model_utils import fuse_model
        for layer in model.modules():
            if isinstance(layer, RepConv):
                layer.switch_to_deploy()
        model = fuse_model(model)
        model.head.nms = False
    return model.eval()


def export_official_onnx(official_root: str, official_config: str,
                         official_ckpt: str, img_size: int,
                         out_dir: str) -> str:
    """Run the official ``tools/converter.py`` (default ONNX mode, opset 11,
    batch 1) in-process; returns the written ONNX path.

    Its ``get_model_info`` (FLOPs via thop and 500 timed forward passes) is
    replaced by a no-op; ``torch.onnx._export`` (gone in torch 2.13) by the
    TorchScript exporter.
    """
    out_dir = osp.abspath(out_dir)  # the converter runs in a scratch cwd
    conv_path = osp.join(osp.abspath(official_root), 'tools', 'converter.py')
    cfg_path = official_config_path(official_root, official_config)
    name = osp.basename(official_config).replace('.py', '.onnx')
    argv = [
        'converter.py', '-f', cfg_path, '-c', osp.abspath(official_ckpt),
        '--batch_size', '1', '--img_size',
        str(img_size), '--device', 'cpu'
    ]
    had_export = hasattr(torch.onnx, '_export')
    with official_code(official_root) as env:
        spec = importlib.util.spec_from_file_location(
            'damo_official_converter', conv_path)
        converter = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(converter)
        converter.get_model_info = lambda model, tsize: 'model info skipped'
        try:
            if not had_export:
                torch.onnx._export = lambda *a, **k: torch.onnx.export(
                    *a, dynamo=False, **k)
            sys.argv = argv
            converter.main()
        finally:
            if not had_export:
                del torch.onnx._export
        src = osp.join(env.tmp, name)
        if not osp.isfile(src):
            raise RuntimeError(f'the official converter wrote no {name}')
        os.makedirs(out_dir, exist_ok=True)
        dst = osp.join(out_dir, 'official_' + name)
        shutil.copyfile(src, dst)
    return dst
