# The comparison of the fine-tuning demo: the same model, data, schedule and
# seed as configs/finetune/damoyolo_demo_ns_finetune.py, from random weights.
_base_ = './damoyolo_demo_ns_finetune.py'

load_from = None
