"""Packaging for damoyolo_mm.

``configs/``, ``tools/``, ``projects/`` and ``model-index.yml`` ship inside
the package as ``damoyolo_mm/.mim/...`` so that ``mim train damoyolo_mm
CONFIG`` finds the configs and ``mim search damoyolo_mm`` the model zoo: copied for regular installs (wheel / sdist / ``pip install .``),
symlinked for editable installs (both the legacy ``develop`` command and the
PEP 660 ``editable_wheel`` command that modern pip uses).
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64
    editable_wheel = None

HERE = osp.dirname(osp.abspath(__file__))
# folders and files copied into damoyolo_mm/.mim (model-index.yml: the model
# zoo metadata that `mim search` / `mim download` read; it points to
# configs/metafile.yml)
MIM_FILES = ('configs', 'tools', 'projects', 'model-index.yml')


def readme():
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version():
    scope = {}
    with open(osp.join(HERE, 'damoyolo_mm', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def add_mim_extension(mode: str) -> None:
    """Place configs/tools under ``damoyolo_mm/.mim``.

    Args:
        mode (str): ``'symlink'`` for editable installs, ``'copy'`` otherwise.
    """
    mim_path = osp.join(HERE, 'damoyolo_mm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(HERE, name)
        dst = osp.join(mim_path, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst,
                       target_is_directory=osp.isdir(src))
        elif osp.isfile(src):
            shutil.copyfile(src, dst)
        else:
            shutil.copytree(
                src, dst,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


class BuildPy(build_py):

    def run(self):
        add_mim_extension('copy')
        super().run()


class Develop(develop):

    def run(self):
        add_mim_extension('symlink')
        super().run()


cmdclass = dict(build_py=BuildPy, develop=Develop)
if editable_wheel is not None:

    class EditableWheel(editable_wheel):

        def run(self):
            add_mim_extension('symlink')
            super().run()

    cmdclass['editable_wheel'] = EditableWheel

# torch is deliberately not an install requirement: the CPU build must be
# installed first (tools/setup_env.sh), and listing it here would let pip pull
# another build. mmcv (with ops) is compiled by tools/setup_env.sh.
install_requires = [
    'mmengine==0.10.7',
    'mmcv==2.1.0',
    'mmdet==3.3.0',
    'numpy>=1.24,<2.3',
    'opencv-python-headless>=4.8,<5.1',
    'pycocotools',
    'matplotlib',
    'scipy',
    'tqdm',
]
extras_require = {
    'tests': ['pytest', 'hypothesis'],
    'mim': ['openmim==0.3.9'],
    # mmdeploy 1.3.1 is installed with --no-deps by tools/setup_env.sh (its
    # protobuf pin conflicts with onnx); its real runtime deps are listed here.
    # openvino: the OpenVINO backend (FP32 and INT8 IR); INT8 quantization
    # uses onnxruntime.quantization (no extra package)
    'deploy': ['onnx>=1.16', 'onnxruntime>=1.17', 'openvino>=2024',
               'prettytable', 'aenum', 'multiprocess', 'grpcio'],
    'tensorrt': ['tensorrt>=10,<11'],
    # optional packages of mmdet's own tools: analyze_logs.py (seaborn),
    # benchmark.py (psutil), TensorboardVisBackend (tensorboard)
    'tools': ['seaborn', 'psutil', 'tensorboard'],
}

if __name__ == '__main__':
    setup(
        name='damoyolo_mm',
        version=get_version(),
        description='DAMO-YOLO as an MMDetection 3.x plugin: TinyNAS '
        'backbones, RepGFPN, ZeroHead, MAE-NAS, distillation, deployment',
        long_description=readme(),
        long_description_content_type='text/markdown',
        python_requires='>=3.8',
        packages=find_packages(exclude=('tests', 'tests.*', 'configs',
                                        'tools', 'projects')),
        include_package_data=True,
        package_data={'damoyolo_mm': ['.mim/**/*', 'models/backbones/structures/*.txt',
                                      'nas/structures/*.txt',
                                      'nas/*.json', 'nas/**/*.json']},
        install_requires=install_requires,
        extras_require=extras_require,
        cmdclass=cmdclass,
        license='Apache License 2.0',
        zip_safe=False,
    )
