"""The one checksum mechanism for shipped artifacts: a missing, changed or extra file, and invalid
JSON, each give an ArtifactError naming the rebuild command."""
import json

import pytest

from course_lib.artifacts import ArtifactError, read_json, verify, write_checksums
from course_lib.paths import DATA_DIR

REBUILD = "python -m course_lib.example build"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "sub" / "log.json").write_text(json.dumps({"loss": [1.0, 0.5]}))
    write_checksums(tmp_path)
    return tmp_path


def test_intact_folder_verifies(folder):
    verify(folder, REBUILD)
    assert read_json(folder / "sub" / "log.json", REBUILD) == {"loss": [1.0, 0.5]}
    verify(str(folder), REBUILD)  # str paths are fine


def test_one_changed_byte_is_caught(folder):
    (folder / "weights.bin").write_bytes(b"\x00\x01\x03")
    with pytest.raises(ArtifactError, match="corrupted.*python -m course_lib.example build"):
        verify(folder, REBUILD)


def test_missing_file_is_caught(folder):
    (folder / "sub" / "log.json").unlink()
    with pytest.raises(ArtifactError, match="missing.*course_lib.example build"):
        verify(folder, REBUILD)


def test_extra_file_is_caught(folder):
    (folder / "sub" / "tokenizer_extra.json").write_text("{}")
    with pytest.raises(ArtifactError, match="unexpected file.*sub/tokenizer_extra.json"):
        verify(folder, REBUILD)


def test_missing_folder_and_checksums(tmp_path, folder):
    with pytest.raises(ArtifactError, match="does not exist.*course_lib.example build"):
        verify(tmp_path / "nope", REBUILD)
    (folder / "checksums.json").unlink()
    with pytest.raises(ArtifactError, match="missing.*course_lib.example build"):
        verify(folder, REBUILD)


def test_invalid_json_names_the_rebuild(folder):
    (folder / "sub" / "log.json").write_text('{"loss": [1.0,')
    with pytest.raises(ArtifactError, match="not valid JSON.*course_lib.example build"):
        read_json(folder / "sub" / "log.json", REBUILD)


def test_every_shipped_folder_is_covered():
    """Every file in data/ lies in a folder with a checksums.json that lists it."""
    shipped = [p for p in DATA_DIR.rglob("*") if p.is_file() and p.name != "checksums.json"
               and not any(part.startswith(".") for part in p.relative_to(DATA_DIR).parts)]  # not a build in progress
    roots = [p.parent for p in DATA_DIR.rglob("checksums.json")]
    uncovered = [str(p.relative_to(DATA_DIR)) for p in shipped if not any(r in p.parents for r in roots)]
    assert not uncovered, f"shipped files without a checksum: {uncovered}"
    for root in roots:
        sums = json.loads((root / "checksums.json").read_text())
        listed = {root / name for name in sums}
        assert {p for p in shipped if root in p.parents} <= listed, f"{root}: files not listed in checksums.json"


def test_building_swaps_in_only_a_complete_folder(tmp_path):
    from course_lib.artifacts import building

    root = tmp_path / "shipped"
    root.mkdir()
    (root / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with building(root) as new:
            (new / "half.txt").write_text("half")
            raise RuntimeError("the build failed")
    assert [p.name for p in tmp_path.iterdir()] == ["shipped"] and (root / "old.txt").exists()
    with building(root) as new:
        (new / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["shipped"]
    assert [p.name for p in root.iterdir()] == ["new.txt"]
