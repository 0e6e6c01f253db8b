# Fine-tuning to another set of classes: which weights do not come from the
# checkpoint. List this file beside the variant config and set
#   model = dict(..., partial_load=_base_.finetune_partial_load)
#
# Only the class-dependent layers of ZeroHead are re-initialised: its
# per-level class convolutions `bbox_head.gfl_cls.{0,1,2}` (weight and bias,
# num_classes output channels). Backbone, neck, the class and box towers and
# the box layers (`gfl_reg`, `scales`) must load from the checkpoint: any
# other missing, unexpected or reshaped key is an error (strict loading).
# When the class layers do fit (same class count, or resuming this
# fine-tuning run) they load as usual. The keys not loaded are listed in the
# log, with their checkpoint and model shapes.
#
# (mmengine refuses a key defined by two sibling bases, hence the prefix.)
finetune_partial_load = dict(skip=[r'bbox_head\.gfl_cls\.\d+\.(weight|bias)'])

# (The class count of the head is checked against the dataset's classes by
# every config: `ClassCountCheckHook` in configs/_base_/default_runtime.py.)
