"""Draw detections on a BGR image with OpenCV (numpy + OpenCV only).

mmdet's ``DetLocalVisualizer`` needs torch; a deployed model is drawn
without it. Boxes in the class colour, ``name score`` on a filled tag.
"""
from typing import Dict, Sequence

import numpy as np


def draw_detections(img: np.ndarray, result: Dict,
                    palette: Sequence[Sequence[int]],
                    thickness: int = 0) -> np.ndarray:
    """A copy of ``img`` (BGR) with the boxes of ``result`` drawn.

    Args:
        result (dict): ``bboxes`` (N, 4) x1y1x2y2, ``scores``, ``labels``,
            ``class_names``.
        palette: RGB colour per class.
        thickness (int): line width (default: from the image size).
    """
    import cv2
    out = img.copy()
    h, w = out.shape[:2]
    lw = thickness or max(1, round((h + w) / 600))
    font_scale = max(0.35, lw / 3)
    order = np.argsort(result['scores'], kind='stable')  # best on top
    for i in order:
        x1, y1, x2, y2 = (int(round(float(v))) for v in result['bboxes'][i])
        label = int(result['labels'][i])
        r, g, b = palette[label % len(palette)] if len(palette) else (0, 255,
                                                                      0)
        color = (int(b), int(g), int(r))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, lw, cv2.LINE_AA)
        text = f'{result["class_names"][i]} {float(result["scores"][i]):.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                         font_scale, max(1, lw // 2))
        ty = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1
        cv2.rectangle(out, (x1, ty), (x1 + tw + 2, ty + th + base + 2),
                      color, -1)
        text_color = (0, 0, 0) if (r * 0.299 + g * 0.587 + b * 0.114) > 140 \
            else (255, 255, 255)
        cv2.putText(out, text, (x1 + 1, ty + th + 1),
                    cv2.FONT_HERSHEY_SIMPLEX, font_scale, text_color,
                    max(1, lw // 2), cv2.LINE_AA)
    return out


__all__ = ['draw_detections']
