"""mmdet's MultiImageMixDataset without its defensive deep copies.

mmdet 3.3's :class:`~mmdet.datasets.MultiImageMixDataset.__getitem__`
deep-copies the loaded sample, every image it mixes in and the whole
results dict before *every* transform, so that it can retry a transform
that returns None on an untouched input. The items of the wrapped
(mmengine ``BaseDataset``) dataset are built afresh on every access
(``get_data_info`` copies the annotations, the pipeline loads the image),
and the training transforms of the DAMO-YOLO recipe never return None, so
for them these copies only cost time (about 5 ms per 640-pixel image, an
eighth of the pipeline). :class:`DAMOYOLOMixDataset` skips the copies for
the transforms listed in ``NEVER_NONE`` (exact types) and keeps mmdet's
behaviour, copies and refetching included, for any other transform.
"""
import collections.abc
import copy

from mmdet.datasets import MultiImageMixDataset
from mmdet.datasets.transforms import PackDetInputs, RandomFlip, Resize
from mmdet.registry import DATASETS

from .transforms import (SADA, DAMOYOLOMixUp, DAMOYOLOMosaic,
                         DAMOYOLORandomAffine)

#: transforms that always return their (possibly modified) input dict
NEVER_NONE = (DAMOYOLOMosaic, DAMOYOLORandomAffine, DAMOYOLOMixUp, SADA,
              Resize, RandomFlip, PackDetInputs)


@DATASETS.register_module()
class DAMOYOLOMixDataset(MultiImageMixDataset):
    """:class:`~mmdet.datasets.MultiImageMixDataset` that passes the samples
    to the transforms of ``NEVER_NONE`` without deep copies (same output,
    same random draws). Arguments, ``skip_type_keys`` and
    ``update_skip_type_keys`` (used by ``PipelineSwitchHook``) as mmdet's.
    """

    def __getitem__(self, idx):
        results = self.dataset[idx]  # built afresh by the wrapped dataset
        for transform, transform_type in zip(self.pipeline,
                                             self.pipeline_types):
            if self._skip_type_keys is not None and \
                    transform_type in self._skip_type_keys:
                continue
            trusted = type(transform) in NEVER_NONE
            if hasattr(transform, 'get_indexes'):
                for _ in range(self.max_refetch):
                    indexes = transform.get_indexes(self.dataset)
                    if not isinstance(indexes, collections.abc.Sequence):
                        indexes = [indexes]
                    mix_results = [self.dataset[i] for i in indexes]
                    if None not in mix_results:
                        results['mix_results'] = mix_results
                        break
                else:
                    raise RuntimeError(
                        'The loading pipeline of the dataset wrapped by '
                        f'{type(self).__name__} always returns None: check '
                        'the dataset and its pipeline.')
            if trusted:
                results = transform(results)
                if results is None:
                    raise RuntimeError(
                        f'{type(transform).__name__} returned None in '
                        f'{type(self).__name__}; remove its type from '
                        'NEVER_NONE in damoyolo_mm/datasets/mix_dataset.py')
            else:
                results = self._refetch(transform, results)
            if 'mix_results' in results:
                results.pop('mix_results')
        return results

    def _refetch(self, transform, results: dict) -> dict:
        """mmdet's behaviour: retry on a fresh copy while the transform
        returns None."""
        for _ in range(self.max_refetch):
            updated = transform(copy.deepcopy(results))
            if updated is not None:
                return updated
        raise RuntimeError(
            f'{type(transform).__name__} in the pipeline of '
            f'{type(self).__name__} always returns None: check the '
            'transform and its input.')
