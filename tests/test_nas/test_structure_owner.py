"""A malformed structure gets the same error through the backbone (shipped
specs) and the search (emitted specs): one module validates both."""
import pytest

from damoyolo_mm.models.backbones import TinyNASRes, load_structure
from damoyolo_mm.models.backbones.structure import StructureError
from damoyolo_mm.nas import load_search_structure, save_structure_txt, score


def _break(blocks, idx, key, value):
    bad = [dict(b) for b in blocks]
    if value is None:
        del bad[idx][key]
    else:
        bad[idx][key] = value
    return bad


@pytest.mark.parametrize('idx,key,value,pattern', [
    (3, 'btn', None, r"stage 3 \(SuperResConvK1KX\) misses key 'btn'"),
    (2, 'class', 'SuperResConvK7', r"stage 2 key 'class' = 'SuperResConvK7'"),
    (4, 'in', 100, r"stage 4 key 'in' = 100 .*stage 3 key 'out' = 192"),
    (1, 'L', 0, r"stage 1 key 'L' must be a positive int, got 0"),
    (5, 's', 3, r"stage 5 key 's' must be 1 or 2, got 3"),
])
def test_same_error_through_backbone_and_search(tmp_path, idx, key, value,
                                               pattern):
    emitted = tmp_path / 'best_structure.txt'
    # what the search writes (DAMO-YOLO format), made malformed
    search_blocks = load_search_structure('tinynas_L20_k1kx')
    save_structure_txt(_break(search_blocks, idx, key, value), str(emitted))
    # a shipped spec, made malformed the same way
    shipped = _break(load_structure('tinynas_L20_k1kx'), idx, key, value)

    errors = []
    for load in (load_structure, load_search_structure):
        for spec in (str(emitted), shipped):
            with pytest.raises(StructureError, match=pattern) as err:
                load(spec)
            errors.append(str(err.value).split(': ', 1)[1])
    with pytest.raises(StructureError, match=pattern):
        score(str(emitted))
    with pytest.raises(StructureError, match=pattern) as err:
        TinyNASRes(structure=str(emitted))
    errors.append(str(err.value).split(': ', 1)[1])
    assert len(set(errors)) == 1, errors


def test_unknown_name_is_one_error_for_both():
    for load in (load_structure, load_search_structure):
        with pytest.raises(FileNotFoundError,
                           match="'tinynas_nope' is neither an existing "
                           'file') as err:
            load('tinynas_nope')
        assert isinstance(err.value, StructureError)


def test_search_start_point_is_a_shipped_file():
    from damoyolo_mm.nas import damoyolo_init_structure
    init = damoyolo_init_structure()
    assert init == load_search_structure('mae_nas_init_k1kx')
    assert [b['out'] for b in init] == [32, 48, 96, 96, 192, 384]
    assert init[0]['in'] == 12 and {b['L'] for b in init[1:]} == {1}
    kxkx = damoyolo_init_structure('SuperResConvKXKX')
    assert {b['class'] for b in kxkx[1:]} == {'SuperResConvKXKX'}
