from . import (backbones, dense_heads, detectors, distillers, layers,  # noqa
               necks, task_modules)
