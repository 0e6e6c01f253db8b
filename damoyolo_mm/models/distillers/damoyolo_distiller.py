"""Teacher -> student distillation wrapper for DAMO-YOLO (predictions and / or
neck features)."""
import logging
import os.path as osp
import pickle
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

from ..checkpoint import is_official_checkpoint, match_variant
from .grad_balance import GradNormBalance, check_balance_cfg

ConfigOrPath = Union[str, dict, ConfigDict, Config]


def _find_config(path: str) -> str:
    """Resolve a config path: as given, then relative to the project root."""
    if osp.isfile(path):
        return path
    tried = [osp.abspath(path)]
    if not osp.isabs(path):
        root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
            osp.abspath(__file__)))))
        for base in (root, osp.join(root, 'damoyolo_mm', '.mim')):
            cand = osp.join(base, path)
            if osp.isfile(cand):
                return cand
            tried.append(cand)
    raise FileNotFoundError(
        f'DAMOYOLODistiller: teacher config {path!r} not found (tried '
        f'{tried})')


def _teacher_model_cfg(teacher_cfg: ConfigOrPath) -> dict:
    """The ``model`` dict of the teacher, from a config path or a dict."""
    if isinstance(teacher_cfg, str):
        cfg = Config.fromfile(_find_config(teacher_cfg))
        if 'model' not in cfg:
            raise KeyError(f'DAMOYOLODistiller: teacher config '
                           f'{teacher_cfg!r} has no `model` entry')
        return cfg.model
    if isinstance(teacher_cfg, (dict, Config)):
        if 'type' in teacher_cfg:
            return teacher_cfg
        if 'model' in teacher_cfg:
            return teacher_cfg['model']
    raise TypeError(
        'DAMOYOLODistiller: teacher_cfg must be a config file path, a model '
        f'config dict (with `type`) or a full config with `model`; got '
        f'{type(teacher_cfg).__name__}: {teacher_cfg!r}')


def _refused_teacher_message(ckpt_path: str, err: BaseException) -> str:
    found = (re.search(r'GLOBAL (\S+)', str(err))
             or re.search(r'it pickles ([^\s);,]+)', str(err)))
    reason = f' (it pickles {found.group(1)})' if found else ''
    return (f'teacher checkpoint {ckpt_path}: refused to unpickle{reason}; '
            'the file holds objects outside the checkpoint allow-list and '
            'nothing of it was run. Only if you trust its source, set '
            'model.teacher_trust_pickle=True (tools/train.py: --cfg-options '
            'model.teacher_trust_pickle=True)')


def _load_teacher_file(ckpt_path: str, trust_pickle: bool):
    """The teacher checkpoint: ``weights_only=True`` (mmengine's loader)
    unless ``trust_pickle``; a refusal names the teacher's opt-in."""
    if trust_pickle and '://' not in ckpt_path:
        print_log(
            f'teacher checkpoint {ckpt_path}: loading with full unpickling '
            '(weights_only=False) because model.teacher_trust_pickle=True; '
            'this runs any code the file contains', logger='current',
            level=logging.WARNING)
        return torch.load(ckpt_path, map_location='cpu', weights_only=False)
    try:
        return CheckpointLoader.load_checkpoint(ckpt_path, map_location='cpu')
    except pickle.UnpicklingError as err:
        text = str(err)
        if 'eights only' in text or 'weights_only' in text or \
                'refused to unpickle' in text:
            # same type (damoyolo_mm's UntrustedPickleError or torch's)
            raise type(err)(_refused_teacher_message(ckpt_path,
                                                     err)) from None
        raise


def load_teacher_weights(teacher: nn.Module, ckpt_path: str,
                         teacher_name: str = 'the teacher config',
                         trust_pickle: bool = False) -> None:
    """Load a detector checkpoint into ``teacher`` strictly.

    Accepts mmengine checkpoints (``state_dict`` entry), bare state dicts
    and official DAMO-YOLO checkpoints (``model`` entry, converted in
    memory); refuses distillation checkpoints with a hint at the tool that
    extracts the student. Only the weights are read (config text in the
    file is never executed). The file loads with ``weights_only=True``
    unless ``trust_pickle`` (then with a warning naming it).
    """
    if not isinstance(ckpt_path, str) or not ckpt_path:
        raise ValueError(
            'DAMOYOLODistiller: teacher_ckpt is not set. Pass the trained '
            'teacher checkpoint, e.g. `--cfg-options '
            'model.teacher_ckpt=work_dirs/damoyolo_m_coco/epoch_300.pth` '
            '(tools/train.py and `mim train` also take the short form '
            '`teacher_ckpt=...`)')
    if '://' not in ckpt_path and not osp.isfile(ckpt_path):
        raise FileNotFoundError(
            f'DAMOYOLODistiller: teacher checkpoint {ckpt_path!r} not found')
    ckpt = _load_teacher_file(ckpt_path, trust_pickle)
    if not isinstance(ckpt, dict):
        raise TypeError(f'teacher checkpoint {ckpt_path!r} holds a '
                        f'{type(ckpt).__name__}, expected a dict')
    if is_official_checkpoint(ckpt):
        # an official release file: converted in memory, strictly (the
        # error names the released variant it fits)
        try:
            teacher.load_state_dict(ckpt, strict=True)
        except (ValueError, RuntimeError) as err:
            raise RuntimeError(
                f'teacher checkpoint {ckpt_path!r} does not match the teacher '
                f'config {teacher_name}: {err}') from err
        return
    if 'state_dict' in ckpt:
        state_dict = ckpt['state_dict']
    else:
        state_dict = ckpt
    state_dict = {re.sub(r'^module\.', '', k): v
                  for k, v in state_dict.items()}
    if any(k.startswith('student.') for k in state_dict):
        raise ValueError(
            f'teacher checkpoint {ckpt_path!r} is a distillation checkpoint '
            '(keys `student.*`); extract the plain detector first with '
            'tools/extract_student.py')
    own = teacher.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(v.shape)}' for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:

        def head(keys):
            more = f' ... ({len(keys)} in all)' if len(keys) > 5 else ''
            return f'{keys[:5]}{more}'

        ckpt_variant = match_variant(state_dict)
        model_variant = match_variant(own)
        hint = ''
        if ckpt_variant or model_variant:
            hint = (f' (the checkpoint is DAMO-YOLO-'
                    f'{(ckpt_variant or "?").upper()}, the teacher config '
                    f'builds DAMO-YOLO-{(model_variant or "?").upper()})')
        raise RuntimeError(
            f'teacher checkpoint {ckpt_path!r} does not match the teacher '
            f'config {teacher_name}{hint}: {len(missing)} missing keys '
            f'{head(missing)}, {len(unexpected)} unexpected keys '
            f'{head(unexpected)}, {len(mismatched)} shape mismatches '
            f'{head(mismatched)}. Pass the checkpoint trained with that '
            'config, or set `teacher_cfg` to the config the checkpoint was '
            'trained with')
    teacher.load_state_dict(state_dict, strict=True)


def _neck_channels(model: nn.Module, who: str) -> List[int]:
    neck = getattr(model, 'neck', None)
    channels = getattr(neck, 'out_channels', None)
    if not isinstance(channels, (list, tuple)):
        raise AttributeError(
            f'DAMOYOLODistiller: cannot read the {who} neck channels '
            f'(`{who}.neck.out_channels` is {channels!r}); pass '
            f'`{who}_channels` explicitly')
    return [int(c) for c in channels]


@MODELS.register_module()
class DAMOYOLODistiller(BaseModel):
    """A DAMO-YOLO student trained with a frozen teacher.

    Training loss = the student's detection losses + the distillation
    losses, each times ``distill_weight``: ``loss_distill`` =
    ``distill_loss(student_neck_feats, teacher_neck_feats)`` (feature
    distillation, :class:`~damoyolo_mm.models.distillers.NeckDistillLoss`;
    CWD as in DAMO-YOLO) and/or ``loss_distill_cls`` / ``loss_distill_box``
    = ``head_distill(student_head_outputs, teacher_head_outputs)``
    (prediction distillation,
    :class:`~damoyolo_mm.models.distillers.HeadDistillLoss`). The class
    defaults are DAMO-YOLO's distillation (CWD, no bound); the distillation
    configs (``configs/distill/_base_/distill.py``) use bounded prediction
    distillation. ``distill_weight`` is set every iteration by
    :class:`~damoyolo_mm.engine.hooks.DistillWeightHook` (DAMO-YOLO's cosine
    decay from 1 to 0.1 over the training); it stays at its initial value
    without that hook. Gradient clipping of the student as in DAMO-YOLO's
    distillation (L2 norm 30) comes from
    :class:`~damoyolo_mm.engine.hooks.DistillGradClipHook`.

    The teacher is built from its own config (``model`` of ``teacher_cfg``)
    and checkpoint, put in eval mode with ``requires_grad=False`` and run
    under ``torch.no_grad`` on the student's pre-processed batch. It is
    **not** a registered sub-module: it is absent from ``state_dict()``,
    ``parameters()`` (so from the optimizer), ``init_weights`` and
    ``train()``; device / dtype moves (``to``, ``cuda``, ``half``) are
    forwarded to it. Inference (``predict`` / ``tensor`` modes) runs the
    student alone; ``tools/extract_student.py`` turns a checkpoint of this
    wrapper into a plain student checkpoint.

    Args:
        student (dict): Config of the student detector (e.g. ``DAMOYOLO``);
            its ``extract_feat`` must return the neck outputs.
        teacher_cfg (str | dict): Teacher config file (its ``model`` entry is
            used) or the teacher's model config dict.
        teacher_ckpt (str): Checkpoint of the trained teacher (mmengine
            checkpoint or bare state dict), loaded strictly, with
            ``weights_only=True``.
        distill_loss (dict | str, optional): Config of the feature loss
            module; ``student_channels`` / ``teacher_channels`` are filled
            in from the necks. A string is a short form (``'cwd'``,
            ``'mimic'``, ``'mgd'``) for ``NeckDistillLoss`` with that loss
            and weight 1. None: no feature distillation. Defaults to
            ``NeckDistillLoss`` with CWD.
        distill_weight (float): Initial weight of the distillation terms.
            Defaults to 1.0.
        balance (dict, optional): ``dict(type='grad_norm', max_ratio=r,
            scope='level' | 'all')`` bounds the distillation gradient where
            the distillation and the detection losses read the same
            tensors (the neck outputs for ``distill_loss``, the head outputs
            for ``head_distill``) to ``r`` times the detection gradient
            there (L2 norm; per tensor, or over all of them together with
            ``scope='all'``; see :class:`~damoyolo_mm.models.distillers.
            grad_balance.GradNormBalance`). None (the default of this
            class): unbounded, as DAMO-YOLO.
        head_distill (dict, optional): Config of the prediction distillation
            loss (e.g. ``dict(type='HeadDistillLoss')``); the teacher's head
            then runs too, and it must have the student's classes (and
            ``reg_max`` when box distributions are distilled). None (the
            default of this class): no prediction distillation.
        student_channels (Sequence[int], optional): Student neck channels
            per level; read from ``student.neck.out_channels`` when None.
        teacher_channels (Sequence[int], optional): Same for the teacher.
        data_preprocessor (dict, optional): Data preprocessor; the student's
            own one is used (shared) when None.
        init_cfg (dict, optional): Initialisation config.
        teacher_trust_pickle (bool): Load ``teacher_ckpt`` with full
            unpickling (``weights_only=False``, runs any code the file
            holds): only for a teacher file from a trusted source that
            holds more than weights. Defaults to False.
    """

    def __init__(self,
                 student: ConfigType,
                 teacher_cfg: ConfigOrPath,
                 teacher_ckpt: Optional[str],
                 distill_loss: Union[OptConfigType, str] = dict(
                     type='NeckDistillLoss', loss='cwd', loss_weight=1.0),
                 distill_weight: float = 1.0,
                 balance: Optional[dict] = None,
                 head_distill: OptConfigType = None,
                 student_channels: Optional[Sequence[int]] = None,
                 teacher_channels: Optional[Sequence[int]] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 teacher_trust_pickle: bool = False) -> None:
        super().__init__(data_preprocessor=None, init_cfg=init_cfg)
        self.student = MODELS.build(student)
        if data_preprocessor is None:
            if not isinstance(
                    getattr(self.student, 'data_preprocessor', None),
                    nn.Module):
                raise AttributeError(
                    'DAMOYOLODistiller: the student has no data_preprocessor;'
                    ' pass `data_preprocessor` to the distiller')
            self.data_preprocessor = self.student.data_preprocessor
        else:
            self.data_preprocessor = MODELS.build(data_preprocessor)

        teacher = MODELS.build(_teacher_model_cfg(teacher_cfg))
        teacher_name = (repr(teacher_cfg) if isinstance(teacher_cfg, str)
                        else f'(model dict of type {type(teacher).__name__})')
        load_teacher_weights(teacher, teacher_ckpt, teacher_name,
                             trust_pickle=teacher_trust_pickle)
        teacher.eval()
        teacher.requires_grad_(False)
        # a tuple keeps the teacher out of nn.Module's sub-module registry
        self._teacher_holder: Tuple[nn.Module] = (teacher, )
        self.teacher_ckpt = teacher_ckpt
        self._check_preprocessing(teacher)
        self._check_strides(teacher, teacher_name)
        balance = check_balance_cfg(balance)
        self.balance_cfg = balance
        if distill_loss is None and head_distill is None:
            raise ValueError(
                'DAMOYOLODistiller: nothing to distil, both distill_loss '
                '(neck features) and head_distill (predictions) are None')
        # one bound per place where the two kinds of losses read the same
        # tensors: the neck outputs and the head outputs
        self.grad_balance = None if balance is None or \
            distill_loss is None else GradNormBalance(
                balance['max_ratio'], balance['eps'], balance['scope'])
        self.head_grad_balance = None if balance is None or \
            head_distill is None else GradNormBalance(
                balance['max_ratio'], balance['eps'], balance['scope'])

        if student_channels is None:
            student_channels = _neck_channels(self.student, 'student')
        if teacher_channels is None:
            teacher_channels = _neck_channels(teacher, 'teacher')
        self.distill_loss = None
        if isinstance(distill_loss, str):
            # short form for the command line: model.distill_loss=cwd
            distill_loss = dict(type='NeckDistillLoss', loss=distill_loss,
                                loss_weight=1.0)
        if distill_loss is not None:
            loss_cfg = dict(distill_loss)
            loss_cfg.setdefault('student_channels', list(student_channels))
            loss_cfg.setdefault('teacher_channels', list(teacher_channels))
            self.distill_loss = MODELS.build(loss_cfg)
        self.head_distill = None
        if head_distill is not None:
            self._check_heads(teacher, teacher_name, head_distill)
            self.head_distill = MODELS.build(head_distill)
        self.distill_weight = float(distill_weight)
        print_log(
            f'DAMOYOLODistiller: teacher {type(teacher).__name__} '
            f'(neck channels {list(teacher_channels)}, checkpoint '
            f'{teacher_ckpt}) -> student {type(self.student).__name__} '
            f'(neck channels {list(student_channels)}); distilling '
            f'{"neck features" if distill_loss is not None else ""}'
            f'{" and " if distill_loss is not None and head_distill else ""}'
            f'{"head predictions" if head_distill is not None else ""}',
            logger='current')

    # ------------------------------------------------------------------ #
    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher detector (not a registered sub-module)."""
        return self._teacher_holder[0]

    def _check_preprocessing(self, teacher: nn.Module) -> None:
        """The teacher sees the student's batch: normalisation must agree."""
        sp = self.data_preprocessor
        tp = getattr(teacher, 'data_preprocessor', None)
        def values(t):
            return None if t is None else [float(v) for v in t.flatten()]

        for attr in ('mean', 'std'):
            a, b = getattr(sp, attr, None), getattr(tp, attr, None)
            if a is None and b is None:
                continue
            if a is None or b is None or a.shape != b.shape or \
                    not torch.allclose(a.float(), b.float()):
                raise ValueError(
                    'DAMOYOLODistiller: the teacher is fed the student\'s '
                    'pre-processed images, but the data_preprocessor '
                    f'{attr} differs: student {values(a)}, teacher '
                    f'{values(b)}')
        a = getattr(sp, '_channel_conversion', None)
        b = getattr(tp, '_channel_conversion', None)
        if a != b:
            raise ValueError(
                'DAMOYOLODistiller: student and teacher data preprocessors '
                f'differ in bgr_to_rgb ({a} vs {b})')

    def _check_strides(self, teacher: nn.Module, teacher_name: str) -> None:
        """Student and teacher heads must read the same levels."""
        def strides(model):
            head = getattr(model, 'bbox_head', None)
            value = getattr(head, 'strides', None)
            if value is None:
                gen = getattr(head, 'prior_generator', None)
                value = getattr(gen, 'strides', None)
            if value is None:
                return None
            return [int(s[0]) if isinstance(s, (tuple, list)) else int(s)
                    for s in value]

        s, t = strides(self.student), strides(teacher)
        if s is not None and t is not None and s != t:
            raise ValueError(
                'DAMOYOLODistiller: student and teacher must distil the '
                'same neck levels, but the student head has '
                f'{len(s)} levels at strides {s} and the teacher '
                f'{teacher_name} has {len(t)} levels at strides {t}; use a '
                'teacher with the student\'s strides')

    def balance_scales(self) -> List[float]:
        """The scales the ``balance`` applied in the last backward pass, on
        the neck outputs then the head outputs (empty without a bound or
        before the first backward pass)."""
        scales = []
        for bal in (self.grad_balance, self.head_grad_balance):
            if bal is not None and bal.last:
                scales += bal.last['scales']
        return scales

    def _check_heads(self, teacher: nn.Module, teacher_name: str,
                     head_distill: dict) -> None:
        """Prediction distillation needs the same classes (and reg_max
        when the box distributions are distilled)."""
        s_head = getattr(self.student, 'bbox_head', None)
        t_head = getattr(teacher, 'bbox_head', None)
        # the box term is on unless loss_box is given as None
        box_on = head_distill.get('loss_box', 'default') is not None
        checks = [('num_classes', True), ('reg_max', box_on)]
        for attr, needed in checks:
            a, b = getattr(s_head, attr, None), getattr(t_head, attr, None)
            if needed and a is not None and b is not None and a != b:
                hint = (' or set head_distill.loss_box=None (class scores '
                        'only)' if attr == 'reg_max' else '')
                raise ValueError(
                    'DAMOYOLODistiller: head_distill distils the teacher\'s '
                    f'predictions, but the student head has {attr}={a} and '
                    f'the teacher {teacher_name} has {attr}={b}; use a '
                    f'teacher with the student\'s {attr}{hint}')

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> 'DAMOYOLODistiller':
        """Set the student (and loss modules) mode; the teacher stays in
        eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    # ------------------------------------------------------------------ #
    def forward(self,
                inputs: Tensor,
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor'):
        """``loss``: detection + distillation losses; ``predict`` and
        ``tensor``: the student alone."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.student.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student._forward(inputs, data_samples)
        raise RuntimeError(f'DAMOYOLODistiller: invalid mode {mode!r}, '
                           "expected 'loss', 'predict' or 'tensor'")

    @torch.no_grad()
    def teacher_feats(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Neck outputs of the frozen teacher."""
        if self.teacher.training:
            self.teacher.eval()
        return tuple(self.teacher.extract_feat(inputs))

    def split_losses(self, inputs: Tensor, data_samples: SampleList
                     ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """The student's detection losses and the distillation losses
        (weighted by ``distill_weight``) of one batch, as trained (with the
        ``balance`` on the neck and head outputs)."""
        feats_s = self.student.extract_feat(inputs)
        if self.grad_balance is not None:
            feats_det, feats_dis = self.grad_balance(feats_s)
        else:
            feats_det = feats_dis = feats_s
        head = self.student.bbox_head
        outs = head(feats_det)
        outs_det = outs_dis = outs
        if self.head_grad_balance is not None:
            num = len(outs[0])
            view_det, view_dis = self.head_grad_balance(
                list(outs[0]) + list(outs[1]))
            outs_det = (list(view_det[:num]), list(view_det[num:]))
            outs_dis = (list(view_dis[:num]), list(view_dis[num:]))
        gt_instances, gt_ignore, img_metas = unpack_gt_instances(
            data_samples)
        det = head.loss_by_feat(*outs_det, gt_instances, img_metas,
                                gt_ignore)
        feats_t = self.teacher_feats(inputs)
        dis = {}
        if self.distill_loss is not None:
            dis['loss_distill'] = self.distill_loss(feats_dis, feats_t)
        if self.head_distill is not None:
            with torch.no_grad():
                outs_t = self.teacher.bbox_head(feats_t)
            dis.update(self.head_distill(outs_dis, outs_t))
        clash = set(dis) & set(det)
        if clash:
            raise KeyError('DAMOYOLODistiller: the student head already '
                           f'returns {sorted(clash)}')
        dis = {k: self.distill_weight * v for k, v in dis.items()}
        return det, dis

    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """Student detection losses plus the distillation losses
        (``loss_distill`` on the neck features, ``loss_distill_cls`` /
        ``loss_distill_box`` on the predictions)."""
        det, dis = self.split_losses(inputs, data_samples)
        det.update(dis)
        return det

    def student_state_dict(self) -> Dict[str, Tensor]:
        """State dict of the student alone (keys of a plain detector)."""
        return self.student.state_dict()
