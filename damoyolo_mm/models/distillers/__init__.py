from .damoyolo_distiller import DAMOYOLODistiller, load_teacher_weights
from .feature_losses import (FEATURE_LOSS_ALIASES, CWDLoss, MGDLoss,
                             MimicLoss, NeckDistillLoss)
from .prediction_losses import HeadDistillLoss
from .grad_balance import (GradNormBalance, distill_gradient_stats,
                           feature_gradient_scales)

__all__ = [
    'DAMOYOLODistiller', 'load_teacher_weights', 'NeckDistillLoss',
    'HeadDistillLoss',
    'CWDLoss', 'MimicLoss', 'MGDLoss', 'FEATURE_LOSS_ALIASES',
    'GradNormBalance', 'distill_gradient_stats', 'feature_gradient_scales'
]
