"""Every shipped config prints and dumps with mmengine (what mmdet's
``print_config.py`` and the Runner's config dump do), and the dumped file
loads back to the same config; so does the config a NAS search emits with
the structure inline."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for pattern in ('configs/**/*.py', 'projects/*/configs/**/*.py')
    for p in glob.glob(osp.join(REPO, pattern), recursive=True))


def _check_print_dump_reload(cfg, tmp_path):
    text = cfg.pretty_text  # yapf-formatted python: raises if invalid
    compile(text, 'pretty_text', 'exec')
    out = str(tmp_path / 'dumped.py')
    cfg.dump(out)
    back = Config.fromfile(out)
    assert back.to_dict() == cfg.to_dict()
    return text


def test_config_list_is_complete():
    assert len(CONFIGS) >= 40
    assert 'configs/nas/damoyolo_t_search.py' in CONFIGS
    assert ('projects/tinynas_faster_rcnn/configs/'
            'mae-nas_k1kx_frcnn-t-budget_search.py') in CONFIGS


@pytest.mark.parametrize('path', CONFIGS)
def test_pretty_text_dump_reload(path, tmp_path):
    cfg = Config.fromfile(osp.join(REPO, path))
    _check_print_dump_reload(cfg, tmp_path)


def test_nas_config_keys_read_back_as_structure():
    """The class_ / in_ spelling that configs use for an inline structure is
    the structure of the files (class / in) for every reader."""
    from damoyolo_mm.models.backbones.structure import \
        load_structure as backbone_structure
    from damoyolo_mm.models.backbones.structure import to_config_keys
    from damoyolo_mm.nas import load_search_structure as load_structure
    cfg = Config.fromfile(osp.join(REPO, 'configs/nas/damoyolo_t_search.py'))
    blocks = load_structure(cfg.init_structure)
    assert blocks[0] == {'class': 'ConvKXBNRELU', 'in': 12, 'out': 32,
                         's': 1, 'k': 3}
    assert blocks[1]['class'] == 'SuperResConvK1KX'
    config_spelling = to_config_keys(blocks)
    assert config_spelling[0]['class_'] == 'ConvKXBNRELU'
    assert config_spelling[0]['in_'] == 12
    assert load_structure(config_spelling) == blocks
    # the same through a config file (what a user writes inline)
    inline = Config(dict(init_structure=config_spelling))
    assert load_structure(inline.init_structure) == blocks
    assert 'class_' in inline.pretty_text
    assert backbone_structure(config_spelling, stem_in=12) == \
        backbone_structure(blocks, stem_in=12)
    with pytest.raises(ValueError, match="both 'class_' and 'class'"):
        load_structure([dict(blocks[0], class_='ConvKXBNRELU')] + blocks[1:])


def test_emitted_inline_config_prints_and_dumps(tmp_path):
    """A search's detection config with the structure inline (the case
    mmengine could not dump with 'class' / 'in' keys)."""
    from damoyolo_mm.nas import NASSearchRunner
    from damoyolo_mm.nas import load_search_structure as load_structure
    cfg = Config.fromfile(osp.join(REPO, 'configs/nas/damoyolo_t_search.py'))
    cfg.work_dir = str(tmp_path / 'search')
    cfg.outputs.detection_config.inline_structure = True
    runner = NASSearchRunner.from_cfg(cfg)
    blocks = load_structure(cfg.init_structure)
    path = runner._write_detection_config(
        blocks, dict(score=1.0, layers=20, params=1e6, flops=1e9,
                     latency=None))
    det = Config.fromfile(path)
    text = _check_print_dump_reload(det, tmp_path)
    assert "class_='SuperResConvK1KX'" in text
    assert load_structure(det.model.backbone.structure,
                          search_format=False)[0]['in'] == 3
