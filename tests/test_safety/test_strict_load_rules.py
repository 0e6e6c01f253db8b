"""Each rule of strict checkpoint loading on its own.

Tiny hand-made state dicts go straight into
:func:`~damoyolo_mm.models.checkpoint.check_state_dict` and the official key
conversion; one Ns model checks the detector's ``_load_from_state_dict``
glue. Every test changes exactly one thing against a state dict that fits, so
that a single wrong line in a rule makes exactly that test fail.
"""
import logging

import pytest
import torch
from torch import nn

from damoyolo_mm.models.checkpoint import (CheckpointMismatchError,
                                           PartialLoad, StateDictMismatchError,
                                           check_state_dict,
                                           convert_official_in_place,
                                           convert_official_state_dict,
                                           extract_official_state_dict,
                                           is_official_checkpoint,
                                           match_variant,
                                           official_key_to_ours,
                                           variant_fingerprint)
from damoyolo_mm.models.checkpoint import strict_load

CLS_W = 'bbox_head.gfl_cls.0.weight'
CLS_B = 'bbox_head.gfl_cls.0.bias'
CLS_SKIP = r'bbox_head\.gfl_cls\..*'


def _own():
    """A tiny 'model state dict': backbone, neck and head keys."""
    return {
        'backbone.conv.weight': torch.zeros(2, 3),
        'neck.conv.weight': torch.zeros(2, 2),
        'bbox_head.gfl_reg.0.weight': torch.zeros(3, 2),
        CLS_W: torch.zeros(4, 2),
        CLS_B: torch.zeros(4),
    }


def _ckpt(prefix=''):
    """A checkpoint that fits :func:`_own` (all ones)."""
    return {prefix + k: torch.ones_like(v) for k, v in _own().items()}


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def logger():
    log = logging.getLogger('damoyolo_mm.test_strict_load_rules')
    log.setLevel(logging.DEBUG)
    log.propagate = False
    handler = _Records()
    log.addHandler(handler)
    log.records = handler.records
    yield log
    log.removeHandler(handler)
    del log.records


def _refuse(ckpt, own=None, skip=(), prefix=''):
    with pytest.raises(StateDictMismatchError) as err:
        check_state_dict(ckpt, prefix, _own() if own is None else own,
                         PartialLoad(skip))
    assert isinstance(err.value, ValueError)
    return err.value, str(err.value)


# ---------------------------------------------------------------------------
# each kind of disagreement alone
# ---------------------------------------------------------------------------
def test_fitting_checkpoint_passes_unchanged(logger):
    ckpt = _ckpt()
    check_state_dict(ckpt, '', _own(), PartialLoad(), logger)
    assert list(ckpt) == list(_own())
    assert all(bool((v == 1).all()) for v in ckpt.values())
    assert logger.records == []


def test_exactly_one_missing_key():
    ckpt = _ckpt()
    del ckpt['neck.conv.weight']
    err, text = _refuse(ckpt)
    assert (err.missing, err.unexpected, err.mismatched) == \
        (['neck.conv.weight'], [], [])
    lines = text.splitlines()
    assert lines[0] == ('the checkpoint does not fit this DAMO-YOLO model: '
                        '1 missing, 0 unexpected, 0 shape-mismatched keys')
    assert lines[1] == '  missing: neck.conv.weight'
    assert lines[2].startswith('  to load only a part on purpose, set '
                               'model.partial_load=dict(skip=')
    assert len(lines) == 3


def test_exactly_one_unexpected_key():
    ckpt = _ckpt()
    ckpt['neck.extra.weight'] = torch.ones(1)
    err, text = _refuse(ckpt)
    assert (err.missing, err.unexpected, err.mismatched) == \
        ([], ['neck.extra.weight'], [])
    lines = text.splitlines()
    assert lines[0].endswith(': 0 missing, 1 unexpected, 0 shape-mismatched '
                             'keys')
    assert lines[1] == '  unexpected: neck.extra.weight'
    assert 'to load only a part on purpose' in lines[2]
    assert len(lines) == 3


def test_exactly_one_shape_mismatch():
    ckpt = _ckpt()
    ckpt['backbone.conv.weight'] = torch.ones(3, 3)
    err, text = _refuse(ckpt)
    assert (err.missing, err.unexpected, err.mismatched) == \
        ([], [], ['backbone.conv.weight'])
    lines = text.splitlines()
    assert lines[0].endswith(': 0 missing, 0 unexpected, 1 shape-mismatched '
                             'keys')
    assert lines[1] == ('  shape mismatch: backbone.conv.weight checkpoint '
                        '(3, 3) model (2, 3)')
    assert 'to load only a part on purpose' in lines[2]
    assert len(lines) == 3


def test_a_value_without_a_shape_is_no_shape_mismatch():
    """A value with no ``shape`` (e.g. a number) is not compared by shape:
    torch's own loading judges it afterwards."""
    ckpt = _ckpt()
    ckpt['bbox_head.gfl_reg.0.weight'] = 3
    check_state_dict(ckpt, '', _own(), PartialLoad())
    assert ckpt['bbox_head.gfl_reg.0.weight'] == 3
    # a 0-d tensor does have a shape, () != (3, 2)
    ckpt['bbox_head.gfl_reg.0.weight'] = torch.tensor(3.)
    err, text = _refuse(ckpt)
    assert err.mismatched == ['bbox_head.gfl_reg.0.weight']
    assert 'checkpoint () model (3, 2)' in text


def test_keys_outside_the_prefix_are_not_ours():
    ckpt = _ckpt('det.')
    ckpt['other.weight'] = torch.ones(7)  # another module's key
    check_state_dict(ckpt, 'det.', _own(), PartialLoad())
    del ckpt['det.' + CLS_B]
    err, _ = _refuse(ckpt, prefix='det.')
    assert err.missing == [CLS_B] and err.unexpected == []


def test_no_key_at_all_says_so():
    _, text = _refuse({})
    assert text == ('the checkpoint holds no weights of this DAMO-YOLO model '
                    '(no key; 5 expected)')
    _, text = _refuse({'x.weight': torch.ones(1)}, prefix='det.')
    assert text == ('the checkpoint holds no weights of this DAMO-YOLO model '
                    "(no key under 'det.'; 5 expected)")


def test_the_key_lists_are_capped_after_three():
    own = {f'neck.k{i}': torch.zeros(1) for i in range(4)}
    ckpt = {f'neck.k{i}': torch.ones(1) for i in range(1)}
    _, text = _refuse(ckpt, own)  # 3 missing: all shown
    assert '  missing: neck.k1, neck.k2, neck.k3\n' in text
    _, text = _refuse({'neck.x': torch.ones(1)}, own)  # 4 missing
    assert '  missing: neck.k0, neck.k1, neck.k2, ... (4 in all)\n' in text
    assert 'neck.k3' not in text


# ---------------------------------------------------------------------------
# the hints
# ---------------------------------------------------------------------------
CLASS_HINT = 'only the class layers differ'


def test_class_hint_exactly_when_only_the_class_layers_differ():
    ckpt = _ckpt()
    ckpt[CLS_W], ckpt[CLS_B] = torch.ones(6, 2), torch.ones(6)
    err, text = _refuse(ckpt)
    assert err.mismatched == [CLS_W, CLS_B]
    assert text.splitlines()[-1] == (
        '  only the class layers differ (another class count?); to '
        'fine-tune, set model.partial_load=dict(skip=['
        'r"bbox_head\\.gfl_cls\\..*"]) (see configs/finetune/)')
    # one more disagreement of any kind outside gfl_cls: the generic hint
    for change in ('reg_shape', 'missing', 'unexpected'):
        other = dict(ckpt)
        if change == 'reg_shape':
            other['bbox_head.gfl_reg.0.weight'] = torch.ones(5, 2)
        elif change == 'missing':
            del other['neck.conv.weight']
        else:
            other['neck.extra'] = torch.ones(1)
        _, text = _refuse(other)
        assert CLASS_HINT not in text, change
        assert 'to load only a part on purpose' in text, change
    # a head key that merely starts like the class layers is not one
    own = dict(_own(), **{'bbox_head.gfl_cls_x.weight': torch.zeros(2)})
    _, text = _refuse(dict(_ckpt(), **{
        'bbox_head.gfl_cls_x.weight': torch.ones(3)}), own)
    assert CLASS_HINT not in text


def _register(monkeypatch, state_dict, variant, deploy=False, prefix=''):
    monkeypatch.setitem(strict_load.VARIANT_FINGERPRINTS,
                        variant_fingerprint(state_dict, prefix),
                        (variant, deploy))


def test_fingerprint_is_backbone_and_neck_shapes_only():
    base = variant_fingerprint(_own())
    assert len(base) == 12
    # values and head keys do not count
    assert variant_fingerprint(_ckpt()) == base
    assert variant_fingerprint(dict(_own(), **{
        CLS_W: torch.zeros(9, 2), 'bbox_head.x': torch.zeros(1)})) == base
    # the prefix is taken off; keys outside it do not count
    assert variant_fingerprint(dict(_ckpt('det.'), other=torch.zeros(3)),
                               'det.') == base
    # a backbone or neck shape or name does
    assert variant_fingerprint(dict(
        _own(), **{'neck.conv.weight': torch.zeros(2, 1)})) != base
    assert variant_fingerprint(dict(
        _own(), **{'backbone.conv2.weight': torch.zeros(1)})) != base


def test_variant_hint_exactly_when_the_checkpoint_fits_another_release(
        monkeypatch):
    ckpt = _ckpt()
    ckpt['neck.conv.weight'] = torch.ones(5, 5)  # another neck
    assert match_variant(ckpt) is None
    _, text = _refuse(ckpt)
    assert 'fits the released variant' not in text  # fits none
    _register(monkeypatch, ckpt, 'zz')
    assert match_variant(ckpt) == 'zz'
    _, text = _refuse(ckpt)
    assert text.splitlines()[-1] == (
        "  the checkpoint fits the released variant 'zz' "
        '(configs/damoyolo_zz_coco.py)')
    # the model itself is a known release: named too
    _register(monkeypatch, _own(), 'yy', deploy=True)
    assert match_variant(_own()) == 'yy (deploy form)'
    _, text = _refuse(ckpt)
    assert text.splitlines()[-1] == (
        "  the checkpoint fits the released variant 'zz' "
        "(configs/damoyolo_zz_coco.py); the model is 'yy (deploy form)'")
    # under a prefix the checkpoint's keys are read under it
    _, text = _refuse({'det.' + k: v for k, v in ckpt.items()}, prefix='det.')
    assert "fits the released variant 'zz'" in text


def test_no_variant_hint_when_the_checkpoint_fits_the_models_own_release(
        monkeypatch):
    """Same backbone and neck as the model (only the head differs): the
    variant is right, the class hint is the useful one."""
    _register(monkeypatch, _own(), 'yy')
    ckpt = _ckpt()
    ckpt[CLS_B] = torch.ones(6)
    assert match_variant(ckpt) == match_variant(_own()) == 'yy'
    _, text = _refuse(ckpt)
    assert 'fits the released variant' not in text
    assert CLASS_HINT in text.splitlines()[-1]


# ---------------------------------------------------------------------------
# declared skips (partial_load.skip), each kind alone
# ---------------------------------------------------------------------------
def _warnings(logger):
    return [r.getMessage() for r in logger.records
            if r.levelno == logging.WARNING]


def _infos(logger):
    return [r.getMessage() for r in logger.records
            if r.levelno == logging.INFO]


@pytest.mark.parametrize('prefix', ['', 'det.'])
def test_skip_a_missing_key(logger, prefix):
    own = _own()
    ckpt = _ckpt(prefix)
    del ckpt[prefix + CLS_B]
    check_state_dict(ckpt, prefix, own, PartialLoad([CLS_SKIP]), logger)
    # the model's own value fills the gap (torch then sees no missing key)
    assert ckpt[prefix + CLS_B] is own[CLS_B]
    assert bool((ckpt[prefix + CLS_W] == 1).all())  # fits: loaded
    assert _warnings(logger) == [
        'partial_load: 1 keys not loaded (they match model.partial_load.skip '
        f'and keep their initial values): {CLS_B} (not in the checkpoint)']


@pytest.mark.parametrize('prefix', ['', 'det.'])
def test_skip_an_unexpected_key(logger, prefix):
    ckpt = _ckpt(prefix)
    ckpt[prefix + 'bbox_head.gfl_cls.3.weight'] = torch.ones(2)
    check_state_dict(ckpt, prefix, _own(), PartialLoad([CLS_SKIP]), logger)
    assert prefix + 'bbox_head.gfl_cls.3.weight' not in ckpt  # removed
    assert sorted(ckpt) == sorted(_ckpt(prefix))
    assert _warnings(logger) == [
        'partial_load: 1 keys not loaded (they match model.partial_load.skip '
        'and keep their initial values): bbox_head.gfl_cls.3.weight '
        '(not in the model)']


@pytest.mark.parametrize('prefix', ['', 'det.'])
def test_skip_a_shape_mismatch(logger, prefix):
    own = _own()
    ckpt = _ckpt(prefix)
    ckpt[prefix + CLS_W] = torch.ones(6, 2)
    check_state_dict(ckpt, prefix, own, PartialLoad([CLS_SKIP]), logger)
    assert ckpt[prefix + CLS_W] is own[CLS_W]
    assert bool((ckpt[prefix + CLS_B] == 1).all())
    assert _warnings(logger) == [
        'partial_load: 1 keys not loaded (they match model.partial_load.skip '
        f'and keep their initial values): {CLS_W} (checkpoint (6, 2) model '
        '(4, 2))']
    # the key that matches the pattern but fits is loaded, and said so
    assert _infos(logger) == [
        'partial_load: 1 keys match model.partial_load.skip but fit the '
        f'model, loaded: {CLS_B}']


def test_a_skip_that_fits_loads_the_checkpoint_value(logger):
    ckpt = _ckpt()
    check_state_dict(ckpt, '', _own(), PartialLoad([CLS_SKIP]), logger)
    assert bool((ckpt[CLS_W] == 1).all()) and bool((ckpt[CLS_B] == 1).all())
    assert _warnings(logger) == []
    assert _infos(logger) == [
        'partial_load: 2 keys match model.partial_load.skip but fit the '
        f'model, loaded: {CLS_W}, {CLS_B}']


@pytest.mark.parametrize('pattern', [
    r'bbox_head\.gfl_cls',  # a prefix of the key
    r'gfl_cls\.0\.bias',  # a suffix
    r'cls',  # a part
])
def test_a_pattern_must_match_the_whole_key(pattern):
    ckpt = _ckpt()
    del ckpt[CLS_B]
    err, text = _refuse(ckpt, skip=[pattern])
    assert err.missing == [CLS_B]
    assert not PartialLoad([pattern]).skips(CLS_B)
    assert PartialLoad(['.*' + pattern + '.*']).skips(CLS_B)


def test_skips_take_out_only_their_keys():
    """A skipped mismatch next to one that is not skipped: the error counts
    and names only the latter."""
    ckpt = _ckpt()
    ckpt[CLS_W] = torch.ones(6, 2)
    del ckpt['neck.conv.weight']
    err, text = _refuse(ckpt, skip=[CLS_SKIP])
    assert (err.missing, err.unexpected, err.mismatched) == \
        (['neck.conv.weight'], [], [])
    assert '1 missing, 0 unexpected, 0 shape-mismatched keys' in text
    assert CLS_W not in text
    # nothing was changed before the refusal
    assert ckpt[CLS_W].shape == (6, 2)


def test_without_a_logger_the_skips_still_apply():
    own = _own()
    ckpt = _ckpt()
    ckpt[CLS_W] = torch.ones(6, 2)
    ckpt['bbox_head.gfl_cls.3.weight'] = torch.ones(1)
    check_state_dict(ckpt, '', own, PartialLoad([CLS_SKIP]))
    assert ckpt[CLS_W] is own[CLS_W]
    assert 'bbox_head.gfl_cls.3.weight' not in ckpt


# ---------------------------------------------------------------------------
# the partial_load option
# ---------------------------------------------------------------------------
def test_partial_load_config():
    assert PartialLoad.build(None).patterns == []
    same = PartialLoad([CLS_SKIP])
    assert PartialLoad.build(same) is same
    assert PartialLoad.build(dict(skip=[CLS_SKIP])).skips(CLS_W)
    assert PartialLoad.build(dict()).patterns == []
    # one string is one pattern, not a list of characters
    one = PartialLoad.build(dict(skip=CLS_SKIP))
    assert len(one.patterns) == 1 and one.skips(CLS_W)
    assert not one.skips('b')


@pytest.mark.parametrize('cfg,named', [
    (dict(keys=['x']), "{'keys': ['x']}"),
    (dict(skip=['x'], strict=False), "'strict': False"),
    ('bbox_head', "'bbox_head'"),
    ([CLS_SKIP], repr([CLS_SKIP])),
    (dict(skip=['bbox_head.(']), "['bbox_head.(']"),
    (dict(skip=[3]), '[3]'),
])
def test_bad_partial_load_is_refused_naming_the_value(cfg, named):
    with pytest.raises(ValueError) as err:
        PartialLoad.build(cfg)
    text = str(err.value)
    assert text.startswith('partial_load')
    assert named in text, text
    assert '\n' not in text


# ---------------------------------------------------------------------------
# official checkpoints: key mapping and in-memory conversion
# ---------------------------------------------------------------------------
def test_official_keys_must_match_a_rule_whole():
    ok = 'backbone.block_list.0.conv.conv.weight'
    assert official_key_to_ours(ok) == 'backbone.stem.conv.conv.weight'
    for bad in (ok + '_extra', ok + '.x', 'neck.bu_conv24.conv.weight2',
                'x' + ok, 'backbone.block_list.0.conv.conv'):
        assert official_key_to_ours(bad) is None, bad
    # 'module.' is taken off the front only
    assert official_key_to_ours('module.' + ok) == \
        'backbone.stem.conv.conv.weight'
    assert official_key_to_ours('a.module.' + ok) is None
    # stage 0 is the stem, not a stage; stage indices have no leading zero
    assert official_key_to_ours(
        'backbone.block_list.0.block_list.0.conv.0.weight') is None
    assert official_key_to_ours(
        'backbone.block_list.01.block_list.0.conv.0.weight') is None
    assert official_key_to_ours(
        'backbone.block_list.10.block_list.0.conv.0.weight') == \
        'backbone.stage10.0.expand.conv.weight'


def _official(**shapes):
    return {k: torch.ones(s, dtype=torch.float16) for k, s in shapes.items()}


HEAD = {'head.gfl_cls.0.weight': (4, 2), 'head.gfl_cls.0.bias': (4, ),
        'head.integral.project': (8, )}


def _reference():
    return {'bbox_head.integral.project': torch.zeros(8),
            'bbox_head.gfl_cls.0.bias': torch.zeros(4),
            'bbox_head.gfl_cls.0.weight': torch.zeros(4, 2)}


def test_official_conversion_fits_in_reference_order_and_casts():
    official = _official(**HEAD)
    official['head.count'] = torch.tensor(7)  # an integer tensor
    ref = dict(_reference(), **{'bbox_head.count': torch.tensor(0)})
    ours = convert_official_state_dict(official, ref)
    assert list(ours) == list(ref)
    assert ours['bbox_head.gfl_cls.0.weight'].dtype == torch.float32
    assert ours['bbox_head.count'].dtype == torch.int64
    assert int(ours['bbox_head.count']) == 7
    kept = convert_official_state_dict(official, to_float32=False)
    assert kept['bbox_head.gfl_cls.0.weight'].dtype == torch.float16


def _conversion_error(official, reference=None):
    with pytest.raises(CheckpointMismatchError) as err:
        convert_official_state_dict(official, reference)
    assert isinstance(err.value, ValueError)
    return err.value, str(err.value).splitlines()


def test_official_one_missing_key():
    official = _official(**HEAD)
    del official['head.gfl_cls.0.bias']
    err, lines = _conversion_error(official, _reference())
    assert (err.missing, err.unexpected, err.shape_mismatch) == \
        (['bbox_head.gfl_cls.0.bias'], [], [])
    assert lines == [
        'official checkpoint does not match the model:',
        '  missing (model keys with no official key): 1: '
        'bbox_head.gfl_cls.0.bias'
    ]


def test_official_one_unexpected_key_is_named_as_in_the_checkpoint():
    official = _official(**HEAD, **{'head.extra.weight': (1, )})
    err, lines = _conversion_error(official, _reference())
    assert (err.missing, err.unexpected, err.shape_mismatch) == \
        ([], ['head.extra.weight'], [])
    assert lines[1] == ('  unexpected (official keys with no model key): 1: '
                        'head.extra.weight')
    assert len(lines) == 2


def test_official_one_unmapped_key_without_reference():
    official = _official(**HEAD, **{'neck.merge_9.conv1.conv.weight': (1, )})
    err, lines = _conversion_error(official)
    assert (err.missing, err.unexpected, err.shape_mismatch) == \
        ([], ['neck.merge_9.conv1.conv.weight'], [])
    assert len(lines) == 2


def test_official_one_shape_mismatch():
    official = _official(**HEAD)
    official['head.gfl_cls.0.bias'] = torch.ones(6)
    err, lines = _conversion_error(official, _reference())
    assert (err.missing, err.unexpected, err.shape_mismatch) == ([], [], [
        'head.gfl_cls.0.bias -> bbox_head.gfl_cls.0.bias: checkpoint (6,), '
        'model (4,)'
    ])
    assert lines[1] == (
        '  shape mismatch: 1: head.gfl_cls.0.bias -> bbox_head.gfl_cls.0.bias'
        ': checkpoint (6,), model (4,)')
    assert len(lines) == 2


def test_official_key_given_twice_is_refused():
    """``module.head.x`` and ``head.x`` land on the same key: the second is
    not silently dropped or allowed to overwrite the first."""
    official = _official(**HEAD)
    official['module.head.gfl_cls.0.bias'] = torch.zeros(4)
    err, _ = _conversion_error(official, _reference())
    assert err.unexpected == ['module.head.gfl_cls.0.bias']
    err, _ = _conversion_error(official)
    assert err.unexpected == ['module.head.gfl_cls.0.bias']


def test_official_lists_are_capped_after_three():
    official = _official(**{f'head.x{i}': (1, ) for i in range(4)})
    _, lines = _conversion_error(official, {})
    assert lines[1] == ('  unexpected (official keys with no model key): 4: '
                        'head.x0, head.x1, head.x2, ...')
    official = _official(**{f'head.x{i}': (1, ) for i in range(3)})
    _, lines = _conversion_error(official, {})
    assert lines[1].endswith(': 3: head.x0, head.x1, head.x2')


def test_official_mismatch_names_the_release_it_fits(monkeypatch):
    official = _official(**HEAD, **{'neck.bu_conv24.conv.weight': (2, 2)})
    converted = convert_official_state_dict(official)
    _register(monkeypatch, converted, 'zz')
    err, lines = _conversion_error(official, _reference())
    assert err.fits == 'zz'
    assert lines[-1] == ("  the checkpoint fits the released variant 'zz': "
                         'use configs/damoyolo_zz_coco.py '
                         '(tools/convert_official.py --variant zz)')


def test_official_layout_detection_rules():
    assert is_official_checkpoint({'head.x': 1})
    assert is_official_checkpoint({'module.neck.merge_5.x': 1})
    assert is_official_checkpoint({'model': {'backbone.block_list.0.x': 1}})
    assert not is_official_checkpoint({})
    assert not is_official_checkpoint([('head.x', 1)])
    assert not is_official_checkpoint({'state_dict': {'head.x': 1}})
    assert not is_official_checkpoint({'bbox_head.x': 1})
    # one of our keys among official ones: ours (a mix is not official)
    assert not is_official_checkpoint({'head.x': 1, 'bbox_head.y': 2})
    assert not is_official_checkpoint({'head.x': 1, 'neck.td_blocks.0.y': 2})
    assert not is_official_checkpoint({'backbone.stem.x': 1, 'head.x': 1})


def test_extract_official_state_dict_rules():
    t = torch.ones(1)
    assert extract_official_state_dict({'model': {'module.head.a': t},
                                        'epoch': 3}) == {'head.a': t}
    assert list(extract_official_state_dict({'head.a': t})) == ['head.a']
    with pytest.raises(ValueError, match='must be a dict, got list'):
        extract_official_state_dict([t])
    with pytest.raises(ValueError,
                       match=r"no 'model' state dict \(top-level keys: "
                       r"\['epoch', 'head.a'\]\)"):
        extract_official_state_dict({'head.a': t, 'epoch': 3})


def test_in_place_conversion_touches_only_its_prefix():
    t = torch.ones(4, 2, dtype=torch.float16)
    state = {'det.head.gfl_cls.0.weight': t, 'other.head.x': t}
    assert convert_official_in_place(state, 'det.', logger='silent')
    assert list(state) == ['other.head.x', 'det.bbox_head.gfl_cls.0.weight']
    assert state['det.bbox_head.gfl_cls.0.weight'].dtype == torch.float32
    ours = dict(state)
    assert not convert_official_in_place(state, 'det.', logger='silent')
    assert state == ours


# ---------------------------------------------------------------------------
# the detector glue: DAMOYOLO._load_from_state_dict
# ---------------------------------------------------------------------------
@pytest.fixture(scope='module')
def ns():
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from damoyolo_mm.variants import variant_config
    return MODELS.build(Config.fromfile(variant_config('ns')).model)


@pytest.fixture
def ns_fresh(ns):
    """The module-scoped Ns with strict loading and its initial weights
    restored after the test."""
    saved = {k: v.clone() for k, v in ns.state_dict().items()}
    yield ns
    ns.partial_load = PartialLoad()
    ns.load_state_dict(saved)


def _shifted(model):
    return {k: v + 1 if v.is_floating_point() else v
            for k, v in model.state_dict().items()}


@pytest.fixture
def mm_records():
    from mmengine.logging import MMLogger
    handler = _Records()
    log = MMLogger.get_current_instance()
    log.addHandler(handler)
    yield handler.records
    log.removeHandler(handler)


@pytest.mark.parametrize('kind', ['missing', 'unexpected', 'mismatched'])
def test_detector_refuses_each_kind_alone(ns_fresh, kind):
    model = ns_fresh
    before = model.bbox_head.gfl_reg[0].bias.detach().clone()
    ckpt = _shifted(model)
    key = 'neck.td_blocks.0.final_conv.bn.running_var'
    if kind == 'missing':
        del ckpt[key]
    elif kind == 'unexpected':
        ckpt['neck.extra.weight'] = torch.ones(1)
        key = 'neck.extra.weight'
    else:
        ckpt[key] = torch.ones(3)
    # strict=False as mmengine's load_checkpoint: refused all the same
    with pytest.raises(StateDictMismatchError) as err:
        model.load_state_dict(ckpt, strict=False)
    assert getattr(err.value, kind) == [key]
    assert sum(map(len, (err.value.missing, err.value.unexpected,
                         err.value.mismatched))) == 1
    # refused before anything was loaded
    assert torch.equal(model.bbox_head.gfl_reg[0].bias, before)


def test_detector_checks_under_its_prefix(ns_fresh):
    wrapper = nn.Module()
    wrapper.det = ns_fresh
    wrapper.extra = nn.Linear(1, 1)
    ckpt = {'det.' + k: v for k, v in _shifted(ns_fresh).items()}
    ckpt.update({'extra.weight': torch.ones(1, 1),
                 'extra.bias': torch.ones(1)})
    wrapper.load_state_dict(ckpt, strict=True)
    assert torch.equal(ns_fresh.bbox_head.gfl_cls[0].bias,
                       ckpt['det.bbox_head.gfl_cls.0.bias'])
    del ckpt['det.' + CLS_B]
    with pytest.raises(StateDictMismatchError) as err:
        wrapper.load_state_dict(ckpt)
    assert err.value.missing == [CLS_B]


@pytest.mark.parametrize('kind', ['missing', 'unexpected', 'mismatched'])
def test_detector_skip_keeps_the_initial_value_and_logs(
        ns_fresh, mm_records, kind):
    model = ns_fresh
    model.partial_load = PartialLoad.build(dict(skip=[CLS_SKIP]))
    init_w = model.bbox_head.gfl_cls[0].weight.detach().clone()
    init_b = model.bbox_head.gfl_cls[0].bias.detach().clone()
    ckpt = _shifted(model)
    if kind == 'missing':
        del ckpt[CLS_B]
        reason = f'{CLS_B} (not in the checkpoint)'
    elif kind == 'unexpected':
        ckpt['bbox_head.gfl_cls.3.weight'] = torch.ones(1)
        reason = 'bbox_head.gfl_cls.3.weight (not in the model)'
    else:
        ckpt[CLS_B] = torch.ones(5)
        reason = f'{CLS_B} (checkpoint (5,) model (80,))'
    # torch's strict loading sees no missing or unexpected key
    model.load_state_dict(ckpt, strict=True)
    if kind == 'unexpected':  # nothing skipped in the model: all loaded
        assert torch.equal(model.bbox_head.gfl_cls[0].bias, ckpt[CLS_B])
    else:
        assert torch.equal(model.bbox_head.gfl_cls[0].bias, init_b)
    # the fitting class weight is loaded; so is everything else
    assert torch.equal(model.bbox_head.gfl_cls[0].weight, init_w + 1)
    assert torch.equal(model.neck.td_blocks[0].final_conv.bn.running_var,
                       ckpt['neck.td_blocks.0.final_conv.bn.running_var'])
    warnings = [r.getMessage() for r in mm_records
                if r.levelno == logging.WARNING]
    assert warnings == [
        'partial_load: 1 keys not loaded (they match model.partial_load.skip '
        f'and keep their initial values): {reason}']
