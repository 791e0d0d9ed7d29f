"""Atomic outputs: a failure at any point leaves the old file (or nothing) and no temporary file;
an existing output is never replaced without ``overwrite``."""

import pytest

from samplers.atomic import OutputExistsError, atomic_output


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_mid_write_keeps_the_old_file(tmp_path, exc):
    target = tmp_path / "out.nc"
    target.write_bytes(b"old")
    with pytest.raises(type(exc)):
        with atomic_output(target, overwrite=True) as tmp:
            tmp.write_bytes(b"half of the new")
            raise exc
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]


def test_success_replaces_in_one_step_and_refusals(tmp_path):
    target = tmp_path / "out.nc"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.nc.")  # same file system: rename is atomic
        tmp.write_bytes(b"new")
        assert not target.exists()  # readers never see a partial file
    assert target.read_bytes() == b"new"
    with pytest.raises(OutputExistsError, match="already exists"):
        with atomic_output(target):
            pass
    with pytest.raises(IsADirectoryError):
        with atomic_output(tmp_path, overwrite=True):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_output(tmp_path / "missing" / "x.nc"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]
