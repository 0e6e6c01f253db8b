# The embedded demo dataset (5 shape classes), written by
#   python tools/misc/gen_demo_data.py --out-dir data/demo
# Paths are relative to the working directory.
dataset_type = 'CocoDataset'
data_root = 'data/demo/'
metainfo = dict(
    classes=('disk', 'rectangle', 'triangle', 'ring', 'cross'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 165, 0),
             (145, 30, 180)])
backend_args = None
