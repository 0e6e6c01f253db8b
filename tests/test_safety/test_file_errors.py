"""Bad files get one clear line naming the file and what it is."""
import json
import os.path as osp

import pytest
import torch

from damoyolo_mm.datasets.coco_checked import BadAnnotationError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_invalid_json_names_file_line_and_column(demo_data_root, tmp_path):
    from mmdet.registry import DATASETS
    src = osp.join(demo_data_root, 'annotations', 'instances_val.json')
    with open(src) as f:
        text = json.dumps(json.load(f), indent=1)
    lines = text.splitlines()
    lines[5] = lines[5] + ' oops'  # a syntax error on line 6
    bad = tmp_path / 'bad.json'
    bad.write_text('\n'.join(lines))
    with pytest.raises(BadAnnotationError) as err:
        DATASETS.build(dict(
            type='DAMOYOLOCocoDataset', data_root=demo_data_root,
            ann_file=str(bad), data_prefix=dict(img='val/'),
            metainfo=dict(classes=('disk', 'rectangle', 'triangle', 'ring',
                                   'cross')), pipeline=[]))
    text = str(err.value)
    assert str(bad) in text and 'line 6' in text and 'column' in text, text


@pytest.fixture
def convert_tool(load_tool):
    return load_tool('convert_official')


def _last_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err


def test_convert_official_bad_files(convert_tool, golden_dir, tmp_path,
                                    capsys):
    src = osp.join(golden_dir, 'Ns_ckpt_fp16.pth')
    dst = str(tmp_path / 'out.pth')
    # random bytes
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(bytes(range(256)) * 4)
    assert convert_tool.main([str(junk), dst, '--variant', 'ns']) == 1
    err = _last_line(capsys)
    assert len(err) == 1 and 'is not a torch checkpoint' in err[0], err
    assert str(junk) in err[0] and '--trust-pickle' not in err[0]
    # truncated
    cut = tmp_path / 'cut.pth'
    with open(src, 'rb') as f:
        cut.write_bytes(f.read()[:100000])
    assert convert_tool.main([str(cut), dst, '--variant', 'ns']) == 1
    err = _last_line(capsys)
    assert len(err) == 1 and 'truncated' in err[0] and str(cut) in err[0]
    # already converted
    assert convert_tool.main([src, dst, '--variant', 'ns']) == 0
    capsys.readouterr()
    again = str(tmp_path / 'again.pth')
    assert convert_tool.main([dst, again, '--variant', 'ns']) == 1
    err = _last_line(capsys)
    assert len(err) == 1 and 'already a damoyolo_mm' in err[0], err
    assert not osp.exists(again)
    # wrong variant: short, names the one that fits
    assert convert_tool.main([src, again, '--variant', 't']) == 1
    err = _last_line(capsys)
    assert len(err) <= 10, err
    assert any("fits the released variant 'ns'" in line for line in err)
    assert not osp.exists(again)
    assert torch.load(dst, weights_only=True)['state_dict']


@pytest.mark.parametrize('kind', ['pth', 'renamed'])
def test_test_deployed_names_a_file_that_is_no_model(tmp_path, kind,
                                                     load_tool, capsys):
    """tools/test_deployed.py --model x.pth: one line naming the file and
    the kinds it accepts (was: a protobuf traceback)."""
    name = 'x.pth' if kind == 'pth' else 'end2end.onnx'
    model = tmp_path / name
    torch.save({'state_dict': {}}, model)
    tool = load_tool('test_deployed')
    with pytest.raises(SystemExit) as err:
        tool.parse_args(['configs/deploy/detection_onnxruntime_dynamic.py',
                         'configs/damoyolo_t_coco.py', '--model', str(model)])
    assert err.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f'--model {model}: ' in last, last
    assert 'end2end.onnx (ONNX Runtime)' in last and 'OpenVINO' in last
    what = ('unknown extension' if kind == 'pth' else
            'a PyTorch checkpoint, not an exported model')
    assert what in last
