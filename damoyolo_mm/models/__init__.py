from . import (backbones, data_preprocessors, dense_heads, detectors,  # noqa
               distillers, layers, necks, task_modules)
