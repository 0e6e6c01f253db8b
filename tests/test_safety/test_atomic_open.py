"""damoyolo_mm.utils.fileio.atomic_open: all or nothing under the name."""
import os

import pytest

from damoyolo_mm.utils.fileio import atomic_open


def test_atomic_open_writes_and_renames(tmp_path):
    path = tmp_path / 'sub' / 'out.json'
    with atomic_open(str(path), 'w', encoding='utf-8') as f:
        f.write('{"a": 1}\n')
        # nothing under the final name until the block ends
        assert not path.exists()
        assert os.path.basename(f.name).startswith('.out.json.')
    assert path.read_text(encoding='utf-8') == '{"a": 1}\n'
    assert sorted(os.listdir(path.parent)) == ['out.json']
    # permissions as a plain open gives them (not mkstemp's 0600)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_open_keeps_old_file_on_error(tmp_path):
    path = tmp_path / 'ckpt.pth'
    path.write_bytes(b'old')
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(str(path), prefix='.ckpt.pth.partial-') as f:
            f.write(b'new, half written')
            tmp_name = os.path.basename(f.name)
            raise KeyboardInterrupt
    assert tmp_name.startswith('.ckpt.pth.partial-')
    assert tmp_name.endswith('.tmp')
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['ckpt.pth']


def test_atomic_open_refuses_other_modes(tmp_path):
    with pytest.raises(ValueError, match='"w" or "wb"'):
        with atomic_open(str(tmp_path / 'x'), 'a'):
            pass
    assert os.listdir(tmp_path) == []


def test_full_disk_error_names_the_path(tmp_path, monkeypatch):
    """A write that finds no room (here: the temporary file is /dev/full)
    raises OSError naming the file being written; the old one stays."""
    import builtins

    import torch

    from damoyolo_mm.utils import fileio
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'old')
    real_open = builtins.open

    def full_open(file, mode='r', *args, **kwargs):
        if str(file).startswith(str(tmp_path / '.epoch_1.pth.')):
            return real_open('/dev/full', 'wb')
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(fileio, 'open', full_open, raising=False)
    with pytest.raises(OSError) as err:
        with atomic_open(str(path), 'wb') as f:
            torch.save({'w': torch.ones(1000)}, f)
    assert err.value.errno == 28 and err.value.filename == str(path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == b'old'
