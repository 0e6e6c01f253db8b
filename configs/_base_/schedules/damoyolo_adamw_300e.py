# DAMO-YOLO schedule for the Nano variants (Ns / Nm / Nl): 300 epochs, AdamW.
# Same schedule as damoyolo_sgd_300e.py (warm-up, cosine to 0.05 x lr, flat
# 16-epoch tail, lr scaled with the batch); AdamW with lr 0.001 per 64
# images and weight decay 0.01 (none on norms and biases).
_base_ = './damoyolo_sgd_300e.py'

base_lr = 0.001  # per 64 images
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True, type='AdamW', lr=base_lr, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
