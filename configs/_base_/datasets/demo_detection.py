# The embedded demo dataset (5 shape classes, 160 train / 40 val images of
# about 320 x 320 px), written by
#   python tools/misc/gen_demo_data.py --out-dir data/demo
# Paths are relative to the working directory.
#
# A demo config lists this file beside its detector config and takes what it
# needs (`_base_.demo_train_data`, ...). mmengine refuses a key defined by two
# sibling bases, so every name here but `metainfo` (which no detector config
# sets) starts with `demo_`.
metainfo = dict(
    classes=('disk', 'rectangle', 'triangle', 'ring', 'cross'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 165, 0),
             (145, 30, 180)])
demo_data_root = 'data/demo/'
# the fields of the train / val datasets that locate the demo data
demo_train_data = dict(
    data_root=demo_data_root,
    metainfo=metainfo,
    ann_file='annotations/instances_train.json',
    data_prefix=dict(img='train/'))
demo_val_data = dict(
    demo_train_data,
    ann_file='annotations/instances_val.json',
    data_prefix=dict(img='val/'))
demo_val_evaluator = dict(
    ann_file=demo_data_root + demo_val_data['ann_file'])
