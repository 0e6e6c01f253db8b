"""The search runner: a MAE-NAS search described by an mmengine config.

Registered in mmengine's ``RUNNERS`` as ``NASSearchRunner``; a search config
sets ``runner_type = 'NASSearchRunner'`` and is launched with
``tools/nas_search.py CONFIG`` (or ``mim run damoyolo_mm nas_search
CONFIG``). Config keys::

    search_space = dict(type='ResK1KXSpace', channel_range=[...], ...)
    init_structure = [...]             # list / file / official name
    score = dict(type='madnas', stage_weights=[0, 0, 1, 1, 16])
    budgets = dict(layers=20, flops=None, params=None, latency=None)
    latency = dict(lut=None)           # table path, None = shipped table
    search = dict(popu_size=512, num_candidates=500000, seed=13, ...)
    outputs = dict(detection_config=dict(base='../damoyolo_t_coco.py'))

Files written to ``work_dir``:

* ``best_structure.txt`` -- the best structure, DAMO-YOLO format (stem
  ``in`` = 3), loadable by the detector's ``backbone.structure``;
* ``<name>.py`` -- a ready-to-train detection config inheriting the variant
  config and overriding ``model.backbone.structure`` (the found spec, shown
  inline; the config points to ``best_structure.txt`` beside it unless
  ``inline_structure=True``) and the neck input channels;
* ``nas_info.json`` -- best structure, its metrics, budgets, run statistics
  and the final top of the population;
* ``candidates.csv`` -- every generated candidate (in budget or not);
* ``pareto.png`` -- score against FLOPs / latency of in-budget candidates;
* ``search_state.pkl`` -- the resumable state, written atomically every
  ``checkpoint_interval`` candidates (``--resume`` continues from it). It
  holds plain Python values only and is read back by an unpickler that
  refuses every global (no class or function of the file is ever called);
* ``<timestamp>.log`` -- the log.
"""
import copy
import csv
import hashlib
import json
import math
import os
import os.path as osp
import pickle
import platform
import time
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import RUNNERS

from damoyolo_mm.utils.fileio import atomic_open

from .budget import Budget, BudgetError
from .evolution import EvolutionSearch, check_feasible
from .latency import DEFAULT_LUT, LatencyLUT
from .registry import NAS_SCORES, NAS_SPACES
from .structure import (format_structure, from_config_keys,
                        save_structure_txt, to_config_keys,
                        to_damoyolo_format)

STATE_FILE = 'search_state.pkl'
CSV_FILE = 'candidates.csv'
CSV_HEADER = ['index', 'in_budget', 'violation', 'score', 'layers', 'params',
              'flops', 'latency', 'structure']
STATE_VERSION = 1

_SEARCH_DEFAULTS = dict(popu_size=512, num_candidates=500000, seed=13,
                        checkpoint_interval=10000, log_interval=5000,
                        save_candidates=True, plot=True, progress=True,
                        max_plot_points=50000)
_IGNORED_CFG_KEYS = ('custom_imports', 'default_scope', 'runner_type',
                     '_scope_', 'log_level', 'launcher', 'env_cfg',
                     'randomness', 'filename')


class SearchConfigError(ValueError):
    """The search config is malformed."""


class _PlainValuesUnpickler(pickle.Unpickler):
    """Unpickles plain values only (numbers, strings, tuples, lists, dicts,
    sets): any class or function named in the file is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(
            f'global {module}.{name} is not allowed in a search state')


def _load_state(path: str) -> dict:
    with open(path, 'rb') as f:
        try:
            state = _PlainValuesUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            raise SearchConfigError(
                f'{path} is not a search state of this tool ({e}); nothing '
                'of it was run. Use another work_dir or drop --resume') \
                from None
    if not isinstance(state, dict):
        raise SearchConfigError(f'{path} is not a search state of this '
                                f'tool (holds a {type(state).__name__})')
    return state


def _to_plain(obj):
    """ConfigDict / tuples -> plain python (for hashing and JSON)."""
    if isinstance(obj, dict):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def _file_sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def neck_in_channels(backbone_cfg: dict, blocks_damoyolo: list) -> list:
    """Channels of the backbone outputs the neck receives: the backbone of
    the detection config, built on the meta device (no weights allocated)
    from the searched structure, reports its ``out_channels``."""
    from mmdet.registry import MODELS
    cfg = copy.deepcopy(dict(backbone_cfg))
    cfg.update(structure=copy.deepcopy(blocks_damoyolo), init_cfg=None)
    try:
        with torch.device('meta'):
            backbone = MODELS.build(cfg)
    except ValueError as err:
        raise SearchConfigError(
            f'backbone {cfg.get("type")!r} (out_indices '
            f'{list(cfg.get("out_indices", ()))}) does not fit the searched '
            f'structure: {err}') from err
    return list(backbone.out_channels)


@RUNNERS.register_module()
class NASSearchRunner:
    """Run a MAE-NAS evolutionary search from a config (see module doc).

    Args:
        work_dir: output folder.
        search_space: space config (``type`` from ``NAS_SPACES``).
        init_structure: the initial structure.
        score: score config (``type``: ``'madnas'`` or ``'entropy'``).
        budgets: budgets (see :mod:`damoyolo_mm.nas.budget`).
        latency: ``dict(lut=path)``; the table is loaded when a latency
            budget is set or ``lut`` is given.
        search: evolution settings (popu_size, num_candidates, seed,
            checkpoint_interval, log_interval, save_candidates, plot,
            progress).
        outputs: ``dict(detection_config=dict(base=..., filename=...))``.
        resume: continue from ``work_dir/search_state.pkl``.
        cfg_dir: folder relative paths of the config resolve against.
    """

    def __init__(self, work_dir: str, search_space: dict,
                 init_structure, score: Optional[dict] = None,
                 budgets: Optional[dict] = None,
                 latency: Optional[dict] = None,
                 search: Optional[dict] = None,
                 outputs: Optional[dict] = None,
                 resume: bool = False,
                 cfg_dir: Optional[str] = None) -> None:
        self.work_dir = osp.abspath(work_dir)
        self.cfg_dir = osp.abspath(cfg_dir or os.getcwd())
        self.resume = bool(resume)
        self.space_cfg = _to_plain(search_space)
        # the config spelling (class_ / in_) and the file spelling give
        # the same fingerprint
        self.init_cfg = from_config_keys(_to_plain(init_structure))
        self.score_cfg = _to_plain(score or dict(type='madnas'))
        self.budget_cfg = _to_plain(budgets or {})
        self.latency_cfg = _to_plain(latency or {})
        search = _to_plain(search or {})
        unknown = [k for k in search if k not in _SEARCH_DEFAULTS]
        if unknown:
            raise SearchConfigError(
                f'search: unknown key(s) {unknown}; allowed '
                f'{sorted(_SEARCH_DEFAULTS)}')
        self.search_cfg = dict(_SEARCH_DEFAULTS, **search)
        for key in ('popu_size', 'num_candidates', 'checkpoint_interval',
                    'log_interval'):
            v = self.search_cfg[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SearchConfigError(
                    f'search.{key} must be a positive int, got {v!r}')
        self.outputs_cfg = _to_plain(outputs or {})
        os.makedirs(self.work_dir, exist_ok=True)
        timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
        self.logger = MMLogger.get_instance(
            f'nas_search_{timestamp}_{id(self)}',
            log_file=osp.join(self.work_dir, f'{timestamp}.log'),
            log_level='INFO')
        self._build()

    # ------------------------------------------------------------ config
    @classmethod
    def from_cfg(cls, cfg) -> 'NASSearchRunner':
        cfg = copy.deepcopy(cfg)
        filename = getattr(cfg, 'filename', None)
        if isinstance(cfg, Config):
            cfg = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
        cfg = dict(cfg)
        for key in _IGNORED_CFG_KEYS:
            cfg.pop(key, None)
        required = ('work_dir', 'search_space', 'init_structure')
        missing = [k for k in required if cfg.get(k) is None]
        if missing:
            raise SearchConfigError(
                f'search config {filename or ""}: missing key(s) {missing}')
        allowed = ('work_dir', 'search_space', 'init_structure', 'score',
                   'budgets', 'latency', 'search', 'outputs', 'resume')
        unknown = [k for k in cfg if k not in allowed]
        if unknown:
            raise SearchConfigError(
                f'search config {filename or ""}: unknown key(s) {unknown}; '
                f'a NASSearchRunner config has {list(allowed)}')
        cfg_dir = osp.dirname(osp.abspath(filename)) if filename else None
        return cls(cfg_dir=cfg_dir, **cfg)

    def _resolve(self, path: str) -> str:
        if osp.isabs(path):
            return osp.normpath(path)
        cand = osp.normpath(osp.join(self.cfg_dir, path))
        return cand if osp.exists(cand) else osp.abspath(path)

    def _build(self) -> None:
        # search space
        space_cfg = dict(self.space_cfg)
        if 'type' not in space_cfg:
            raise SearchConfigError(
                f'search_space needs a type, one of '
                f'{sorted(NAS_SPACES.module_dict)}')
        space_cls = NAS_SPACES.get(space_cfg.pop('type'))
        if space_cls is None:
            raise SearchConfigError(
                f'search_space.type {self.space_cfg["type"]!r} is unknown; '
                f'expected one of {sorted(NAS_SPACES.module_dict)}')
        try:
            self.space = space_cls(**space_cfg)
        except TypeError as err:
            raise SearchConfigError(f'search_space ({space_cls.__name__}): '
                                    f'{err}') from err
        # budgets, score
        self.budget = Budget.from_cfg(self.budget_cfg)
        score_cfg = dict(self.score_cfg)
        stype = score_cfg.pop('type', 'madnas')
        if NAS_SCORES.get(stype) is None:
            raise SearchConfigError(
                f'score.type {stype!r} is unknown; expected one of '
                f'{sorted(NAS_SCORES.module_dict)}')
        self.stage_weights = tuple(score_cfg.get(
            'stage_weights', (0, 0, 1, 1, 16)))
        score_cfg.setdefault('block_impl', self.space.block_impl)
        if stype == 'entropy':
            score_cfg.setdefault('image_size', self.space.image_size)
        try:
            self.score_obj = NAS_SCORES.get(stype)(**score_cfg)
        except TypeError as err:
            raise SearchConfigError(f'score ({stype}): {err}') from err
        self.score_type = stype
        # latency table
        lut_path = self.latency_cfg.get('lut')
        unknown = [k for k in self.latency_cfg if k != 'lut']
        if unknown:
            raise SearchConfigError(f'latency: unknown key(s) {unknown}; '
                                    "allowed ['lut']")
        self.lut = None
        if lut_path is not None or self.budget['latency'] is not None:
            self.lut = LatencyLUT.load(
                self._resolve(lut_path) if lut_path else DEFAULT_LUT)
        # initial structure
        init = self.init_cfg
        if isinstance(init, str) and not osp.isabs(init) and \
                osp.isfile(osp.join(self.cfg_dir, init)):
            init = osp.join(self.cfg_dir, init)
        self.init_enc = self.space.bind(
            init, max_layers=self.budget['layers'], lut=self.lut,
            stage_weights=self.stage_weights)
        self.space.max_stages = self.budget.stages
        n_stages = len(self.space.stage_last)
        if len(self.stage_weights) != n_stages:
            raise SearchConfigError(
                f'score.stage_weights has {len(self.stage_weights)} entries '
                f'but the initial structure has {n_stages} stages')
        # budgets: units, feasibility
        layers, params, flops, lat, _ = self.space.evaluate(self.init_enc)
        self.init_metrics = dict(layers=layers, params=params, flops=flops,
                                 latency=lat)
        self.budget.check_plausible(self.init_metrics)
        self.minimum = check_feasible(self.space, self.init_enc, self.budget)
        # detection config output
        det = dict(self.outputs_cfg.get('detection_config') or {})
        unknown = [k for k in self.outputs_cfg if k != 'detection_config']
        unknown += [f'detection_config.{k}' for k in det
                    if k not in ('base', 'filename', 'inline_structure')]
        if unknown:
            raise SearchConfigError(f'outputs: unknown key(s) {unknown}')
        self.det_base = None
        # inline=True writes the structure list into the config itself
        # (keys class_ / in_, which mmengine can print and dump); the
        # default points to best_structure.txt beside the config.
        self.det_inline = bool(det.get('inline_structure', False))
        if det.get('base'):
            self.det_base = self._resolve(det['base'])
            if not osp.isfile(self.det_base):
                raise SearchConfigError(
                    f'outputs.detection_config.base {det["base"]!r} not '
                    f'found (resolved to {self.det_base})')
            base_name = osp.splitext(osp.basename(self.det_base))[0]
            self.det_filename = det.get('filename') or \
                base_name.replace('_coco', '') + '_nas_coco.py'

    def fingerprint(self) -> str:
        """Hash of everything that determines the search trajectory."""
        key = dict(space=self.space_cfg, init=self.init_cfg,
                   score=self.score_cfg, budgets=self.budget.as_dict(),
                   popu_size=self.search_cfg['popu_size'],
                   seed=self.search_cfg['seed'],
                   lut=_file_sha1(self.lut.path) if self.lut and
                   osp.isfile(self.lut.path) else None)
        return hashlib.sha1(json.dumps(key, sort_keys=True,
                                       default=str).encode()).hexdigest()

    # ------------------------------------------------------------- run
    def run(self) -> dict:
        cfg = self.search_cfg
        log = self.logger
        search = EvolutionSearch(
            self.space, self.init_enc, self.budget,
            score_fn=None if self.score_type == 'madnas' else self.score_obj,
            popu_size=cfg['popu_size'], seed=cfg['seed'])
        state_path = osp.join(self.work_dir, STATE_FILE)
        csv_path = osp.join(self.work_dir, CSV_FILE)
        fp = self.fingerprint()
        csv_bytes = 0
        elapsed_before = 0.0
        if self.resume and osp.isfile(state_path):
            state = _load_state(state_path)
            if state.get('version') != STATE_VERSION:
                raise SearchConfigError(
                    f'{state_path}: state version {state.get("version")} is '
                    f'not {STATE_VERSION}')
            if state['fingerprint'] != fp:
                raise SearchConfigError(
                    f'{state_path} was written by a search with different '
                    'settings (space, initial structure, score, budgets, '
                    'population, seed or latency table); use another '
                    'work_dir or drop --resume')
            search.load_state_dict(state['search'])
            csv_bytes = state['csv_bytes']
            elapsed_before = state['elapsed']
            log.info(f'resumed from {state_path} at candidate '
                     f'{search.count}')
        elif self.resume:
            log.warning(f'--resume: no {state_path}, starting a new search')
        self._log_setup(fp)

        writer_file = writer = None
        if cfg['save_candidates']:
            if search.count > 0 and osp.isfile(csv_path):
                writer_file = open(csv_path, 'r+', newline='')
                writer_file.truncate(csv_bytes)
                writer_file.seek(csv_bytes)
            else:
                writer_file = open(csv_path, 'w', newline='')
                writer_file.write(','.join(CSV_HEADER) + '\n')
            writer = csv.writer(writer_file)
        total = cfg['num_candidates']
        pbar = None
        if cfg['progress']:
            from tqdm import tqdm
            pbar = tqdm(total=total, initial=min(search.count, total),
                        unit='cand', dynamic_ncols=True, mininterval=0.5,
                        smoothing=0.05)
        has_lat = self.lut is not None
        key_str = self.space.key_str
        t_start = time.time()
        start_count = search.count
        rows = []
        next_log = (search.count // cfg['log_interval'] + 1) * \
            cfg['log_interval']
        interrupted = False
        try:
            while search.count < total:
                stop = min(total, (search.count // cfg['checkpoint_interval']
                                   + 1) * cfg['checkpoint_interval'])
                while search.count < stop:
                    c = search.step()
                    if writer_file is not None:
                        rows.append((
                            c.index, 0 if c.violation else 1, c.violation,
                            '' if c.score is None else repr(c.score),
                            c.layers, int(c.params), int(c.flops),
                            repr(c.latency) if has_lat else '',
                            key_str(c.enc)))
                    if pbar is not None and search.count % 256 == 0:
                        pbar.update(search.count - pbar.n)
                        pbar.set_postfix(best=f'{search.best[0]:.2f}',
                                         refresh=False)
                    if search.count >= next_log:
                        self._log_progress(search, t_start, start_count,
                                           total)
                        next_log += cfg['log_interval']
                csv_bytes = self._flush_rows(writer_file, writer, rows,
                                             csv_bytes)
                rows = []
                self._save_state(state_path, search, fp, csv_bytes,
                                 elapsed_before + time.time() - t_start)
        except KeyboardInterrupt:
            interrupted = True
            log.warning('interrupted: the state of the last checkpoint is '
                        f'kept in {state_path}; continue with --resume')
        finally:
            if pbar is not None:
                pbar.close()
            if writer_file is not None:
                writer_file.close()
        if interrupted:
            raise KeyboardInterrupt
        elapsed = time.time() - t_start
        n_run = search.count - start_count
        rate = n_run / elapsed if elapsed > 0 else float('inf')
        log.info(f'search done: {search.count} candidates '
                 f'({search.n_in_budget} in budget), this run {n_run} in '
                 f'{elapsed:.1f} s = {rate:.0f} candidates/s')
        return self._write_outputs(search, rate,
                                   elapsed_before + elapsed)

    # ------------------------------------------------------------ helpers
    def _flush_rows(self, f, writer, rows, csv_bytes) -> int:
        if f is None:
            return csv_bytes
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
        return f.tell()

    def _save_state(self, path, search, fp, csv_bytes, elapsed) -> None:
        state = dict(version=STATE_VERSION, fingerprint=fp,
                     search=search.state_dict(), csv_bytes=csv_bytes,
                     elapsed=elapsed)
        with atomic_open(path, 'wb') as f:
            f.write(pickle.dumps(state, protocol=4))

    def _log_setup(self, fp: str) -> None:
        log = self.logger
        log.info('MAE-NAS search: space %s, score %s %s, budgets %s',
                 type(self.space).__name__, self.score_type,
                 list(self.stage_weights), self.budget.as_dict())
        log.info('initial structure: %s', self.init_metrics)
        log.info('minimum reachable: %s', self.minimum)
        if self.lut is not None:
            log.info('latency table: %s', self.lut.describe())
        log.info('machine: %s, %s CPUs, torch threads %d', platform.platform(),
                 os.cpu_count(), torch.get_num_threads())
        log.info('search settings: %s, fingerprint %s', self.search_cfg, fp)

    def _log_progress(self, search, t_start, start_count, total) -> None:
        el = time.time() - t_start
        rate = (search.count - start_count) / el if el > 0 else 0.0
        eta = (total - search.count) / rate if rate > 0 else float('nan')
        score, enc, info = search.best
        self.logger.info(
            f'candidates {search.count}/{total} ({search.n_in_budget} in '
            f'budget), {rate:.0f} cand/s, ETA {eta:.0f} s, best '
            f'{score:.4f} (layers {info[1]}, params {info[2]:.4g}, FLOPs '
            f'{info[3]:.4g}, latency {info[4]:.4g}) {self.space.key_str(enc)}')

    def _write_outputs(self, search, rate, elapsed) -> dict:
        score, enc, info = search.best
        blocks = self.space.decode(enc)
        wd = self.work_dir
        best_txt = osp.join(wd, 'best_structure.txt')
        save_structure_txt(blocks, best_txt, damoyolo_format=True)
        top = [dict(score=i[0], layers=i[1], params=i[2], flops=i[3],
                    latency=i[4], structure=self.space.key_str(k))
               for k, i in search.population.ranked()[:20]]
        result = dict(
            score=score, score_type=self.score_type,
            stage_weights=list(self.stage_weights), layers=info[1],
            params=info[2], flops=info[3],
            latency=info[4] if self.lut is not None else None,
            structure=blocks, structure_damoyolo=to_damoyolo_format(blocks),
            budgets=self.budget.as_dict(), minimum_reachable=self.minimum,
            initial=self.init_metrics, candidates=search.count,
            in_budget=search.n_in_budget, elapsed_s=elapsed,
            candidates_per_s=rate, seed=self.search_cfg['seed'],
            popu_size=self.search_cfg['popu_size'],
            image_size=self.space.image_size,
            latency_table=self.lut.path if self.lut is not None else None,
            top=top)
        with open(osp.join(wd, 'nas_info.json'), 'w') as f:
            json.dump(result, f, indent=1, default=float)
        files = dict(best_structure=best_txt,
                     nas_info=osp.join(wd, 'nas_info.json'))
        if self.search_cfg['save_candidates']:
            files['candidates'] = osp.join(wd, CSV_FILE)
            if self.search_cfg['plot']:
                files['pareto'] = self._plot(osp.join(wd, CSV_FILE),
                                             osp.join(wd, 'pareto.png'),
                                             score, info)
        if self.det_base is not None:
            files['detection_config'] = self._write_detection_config(blocks,
                                                                     result)
        self.logger.info('best: score %.4f, layers %d, params %.4g, FLOPs '
                         '%.4g, latency %s\n%s', score, info[1], info[2],
                         info[3], result['latency'],
                         format_structure(blocks))
        for k, v in files.items():
            self.logger.info('wrote %s: %s', k, v)
        result['files'] = files
        return result

    def _write_detection_config(self, blocks, result) -> str:
        base_cfg = Config.fromfile(self.det_base, import_custom_modules=False)
        backbone = dict(base_cfg.model.get('backbone', {}))
        damo = to_damoyolo_format(blocks)
        neck_in = neck_in_channels(backbone, damo)
        path = osp.join(self.work_dir, self.det_filename)
        # relative when the work dir and the base config share a folder
        # below the file-system root (e.g. both in the repository)
        common = osp.commonpath([self.work_dir, self.det_base])
        rel = osp.relpath(self.det_base, self.work_dir) \
            if common != osp.dirname(common) else self.det_base
        spec = ['[']
        spec += [f'    {b!r},' for b in damo]
        spec.append(']')
        # inline in the config: the class_ / in_ spelling, which mmengine
        # can print and dump (pretty_text writes dict(class=...) otherwise)
        config_spec = ['[']
        config_spec += [f'    {b!r},' for b in to_config_keys(damo)]
        config_spec.append(']')
        lines = [
            '# Detection config with the backbone found by MAE-NAS',
            f'# ({self.score_type} {list(self.stage_weights)} = '
            f'{result["score"]:.4f}; layers {result["layers"]}, params '
            f'{result["params"]:.0f}, FLOPs {result["flops"]:.0f} at '
            f'{self.space.image_size} px search input'
            + (f', predicted latency {result["latency"]:.4g} s' if
               result['latency'] is not None else '') + ').',
            f"_base_ = '{rel}'",
            '',
        ]
        if self.det_inline:
            lines += ['model = dict(', '    backbone=dict(structure=']
            lines += ['        ' + ln for ln in config_spec]
            lines[-1] += '),'
        else:
            # the structure file beside this config; the found spec is:
            lines += ['# backbone structure (DAMO-YOLO format, also in '
                      'best_structure.txt):']
            lines += ['#   ' + ln for ln in spec]
            lines += ['model = dict(',
                      "    backbone=dict(structure='{{ fileDirname }}/"
                      "best_structure.txt'),"]
        if 'neck' in base_cfg.model:
            lines.append(f'    neck=dict(in_channels={neck_in!r}),')
        lines.append(')')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return path

    def _plot(self, csv_path, png_path, best_score, best_info) -> str:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        import numpy as np
        score, flops, lat = [], [], []
        with open(csv_path, newline='') as f:
            reader = csv.reader(f)
            next(reader)
            for row in reader:
                if row[1] == '1':
                    score.append(float(row[3]))
                    flops.append(float(row[6]))
                    lat.append(float(row[7]) if row[7] else math.nan)
        score = np.asarray(score)
        flops = np.asarray(flops)
        lat = np.asarray(lat)
        panels = [('FLOPs (G, search input)', flops / 1e9, best_info[3] / 1e9,
                   self.budget['flops'])]
        if self.lut is not None:
            panels.append((f'predicted latency (ms, {self.lut.target})',
                           lat * 1e3, best_info[4] * 1e3,
                           self.budget['latency']))
        fig, axes = plt.subplots(1, len(panels),
                                 figsize=(6 * len(panels), 4.5), squeeze=False)
        rng = np.random.default_rng(0)
        for ax, (label, cost, best_cost, limit) in zip(axes[0], panels):
            idx = np.arange(len(score))
            if len(idx) > self.search_cfg['max_plot_points']:
                idx = rng.choice(idx, self.search_cfg['max_plot_points'],
                                 replace=False)
            ax.scatter(cost[idx], score[idx], s=3, alpha=0.3,
                       label='in-budget candidates')
            order = np.argsort(cost, kind='stable')
            front_x, front_y, run = [], [], -np.inf
            for i in order:
                if score[i] > run:
                    run = score[i]
                    front_x.append(cost[i])
                    front_y.append(score[i])
            ax.step(front_x, front_y, where='post', color='C3',
                    label='Pareto front')
            ax.scatter([best_cost], [best_score], marker='*', s=150,
                       color='C1', zorder=5, label='best')
            if limit is not None:
                scale = 1e9 if 'FLOPs' in label else 1e-3
                ax.axvline(limit / scale, color='gray', ls='--',
                           label='budget')
            ax.set_xlabel(label)
            ax.set_ylabel(f'{self.score_type} score')
            ax.grid(alpha=0.3)
            ax.legend(loc='lower right', fontsize=8)
        fig.suptitle(f'MAE-NAS {type(self.space).__name__}: '
                     f'{len(score)} in-budget candidates')
        fig.tight_layout()
        fig.savefig(png_path, dpi=100)
        plt.close(fig)
        return png_path
