# DAMO-YOLO model with the CSP TinyNAS backbone (values of DAMO-YOLO-M):
# the residual model (S) with CSP stages, SiLU and a deeper neck.
_base_ = ['./damoyolo_tinynas_res.py']

model = dict(
    backbone=dict(
        type='TinyNASCSP',
        structure='tinynas_L35_kxkx',
        out_indices=(2, 3, 4),
        act_cfg=dict(type='SiLU', inplace=True),
        transition_act_cfg=dict(type='ReLU', inplace=True)),
    neck=dict(
        depth=1.5,  # round(3 * 1.5) == 4 blocks per node
        hidden_ratio=1.0,
        act_cfg=dict(type='SiLU', inplace=True)))
