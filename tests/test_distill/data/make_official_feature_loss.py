"""Write official_feature_loss.pt: outputs of the official DAMO-YOLO
``FeatureLoss`` (damo/base_models/losses/distill_loss.py at
tinyvision/DAMO-YOLO 319572eef367340267ab6ab8ae253527a71d7c3a) on small
random inputs, for test_feature_losses.py.

    python tests/test_distill/data/make_official_feature_loss.py \
        /path/to/DAMO-YOLO
"""
import importlib.util
import os.path as osp
import sys

import torch


def main(official_root):
    path = osp.join(official_root, 'damo', 'base_models', 'losses',
                    'distill_loss.py')
    spec = importlib.util.spec_from_file_location('official_distill', path)
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)
    torch.manual_seed(0)
    cs, ct = [2, 3, 4], [4, 6, 8]
    feats_s = [torch.randn(3, c, s, s) for c, s in zip(cs, (8, 4, 2))]
    feats_t = [torch.randn(3, c, s, s) * 2 + 1
               for c, s in zip(ct, (8, 4, 2))]
    out = dict(student_channels=cs, teacher_channels=ct, feats_s=feats_s,
               feats_t=feats_t, mask_seed=5)
    for name in ('cwd', 'mimic', 'mgd'):
        module = official.FeatureLoss(cs, ct, distiller=name)
        rec = dict(align=module.align_module.state_dict())
        if name == 'mgd':
            rec['generation'] = [g.state_dict()
                                 for g in module.feature_loss.generation]
        torch.manual_seed(out['mask_seed'])
        rec['loss'] = float(module(feats_s, feats_t).detach())
        out[name] = rec
    dst = osp.join(osp.dirname(osp.abspath(__file__)),
                   'official_feature_loss.pt')
    torch.save(out, dst)
    print({k: out[k]['loss'] for k in ('cwd', 'mimic', 'mgd')})


if __name__ == '__main__':
    main(sys.argv[1])
