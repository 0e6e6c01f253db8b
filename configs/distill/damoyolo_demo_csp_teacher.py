# Demo teacher of the heterogeneous pair: a small DAMO-YOLO-M-style model
# (TinyNAS-CSP backbone with SiLU, RepGFPN of M's depth) at half of M's
# widths, trained on the embedded demo data like the demo's Nm teacher
# (damoyolo_demo_nm_teacher.py: the quickstart recipe for 110 epochs). Its
# student is the residual (T-style) damoyolo_demo_res.py; distillation:
# damoyolo_demo_res_distill_from_csp.py.
_base_ = ['./damoyolo_demo_nm_teacher.py']

norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
model = dict(
    backbone=dict(
        _delete_=True,
        type='TinyNASCSP',
        # tinynas_L35_kxkx (M) with half the channels and blocks
        structure=[
            dict(class_='ConvKXBNRELU', in_=3, out=16, k=3, s=1),
            dict(class_='SuperResConvKXKX', in_=16, out=64, btn=32, k=3,
                 s=2, L=1),
            dict(class_='SuperResConvKXKX', in_=64, out=64, btn=32, k=3,
                 s=2, L=2),
            dict(class_='SuperResConvKXKX', in_=64, out=128, btn=128, k=3,
                 s=2, L=2),
            dict(class_='SuperResConvKXKX', in_=128, out=128, btn=128, k=3,
                 s=1, L=2),
            dict(class_='SuperResConvKXKX', in_=128, out=256, btn=128, k=3,
                 s=2, L=2),
        ],
        out_indices=(2, 3, 4),
        use_focus=True,
        with_spp=True,
        reparam=True,
        act_cfg=dict(type='SiLU', inplace=True),
        spp_act_cfg=dict(type='SiLU', inplace=True),
        transition_act_cfg=dict(type='ReLU', inplace=True),
        norm_cfg=norm_cfg),
    neck=dict(
        in_channels=[64, 128, 256],
        out_channels=[64, 128, 256],
        depth=1.5,
        hidden_ratio=1.0,
        block_type='rep',
        act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(in_channels=[64, 128, 256], reg_max=16,
                   last_kernel_size=3))
