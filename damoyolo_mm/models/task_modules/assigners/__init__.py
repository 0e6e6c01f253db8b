from .align_ota_assigner import AlignOTAAssigner, pairwise_iou

__all__ = ['AlignOTAAssigner', 'pairwise_iou']
