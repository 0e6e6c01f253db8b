# Demo student of the heterogeneous pair: a small DAMO-YOLO-T-style model
# (residual TinyNAS backbone with ReLU, focus and SPP, RepGFPN with rep
# blocks) at about half of T's widths, trained on the embedded demo data
# with the quickstart recipe (damoyolo_demo_ns.py). Without a teacher this
# config is the baseline; damoyolo_demo_res_distill_from_csp.py distills it
# from the CSP teacher damoyolo_demo_csp_teacher.py.
_base_ = ['./damoyolo_demo_ns.py']

norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
model = dict(
    backbone=dict(
        _delete_=True,
        type='TinyNASRes',
        # tinynas_L20_k1kx (T) with about half the channels and blocks
        structure=[
            dict(class_='ConvKXBNRELU', in_=3, out=16, k=3, s=1),
            dict(class_='SuperResConvK1KX', in_=16, out=32, btn=16, k=3,
                 s=2, L=1),
            dict(class_='SuperResConvK1KX', in_=32, out=48, btn=32, k=3,
                 s=2, L=1),
            dict(class_='SuperResConvK1KX', in_=48, out=96, btn=48, k=3,
                 s=2, L=2),
            dict(class_='SuperResConvK1KX', in_=96, out=96, btn=76, k=3,
                 s=1, L=1),
            dict(class_='SuperResConvK1KX', in_=96, out=192, btn=96, k=3,
                 s=2, L=1),
        ],
        out_indices=(2, 4, 5),
        use_focus=True,
        with_spp=True,
        reparam=True,
        act_cfg=dict(type='ReLU', inplace=True),
        spp_act_cfg=dict(type='SiLU', inplace=True),
        norm_cfg=norm_cfg),
    neck=dict(
        in_channels=[48, 96, 192],
        out_channels=[32, 64, 128],
        depth=1.0,
        hidden_ratio=1.0,
        block_type='rep',
        act_cfg=dict(type='ReLU', inplace=True)),
    bbox_head=dict(in_channels=[32, 64, 128], reg_max=16,
                   last_kernel_size=3))
