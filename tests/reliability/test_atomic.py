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


def test_write_error_names_the_target_not_the_temporary_file(tmp_path):
    """An OSError while writing becomes OutputWriteError: target and errno in one line, no temporary left."""
    import errno

    from samplers.atomic import OutputWriteError

    target = tmp_path / "o.nc"
    with pytest.raises(OutputWriteError) as info:
        with atomic_output(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert str(info.value) == f"cannot write {target}: [Errno 28] No space left on device"
    assert info.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []
    with pytest.raises(OutputWriteError, match=r"cannot write /proc/o.nc: \[Errno") as info:
        with atomic_output("/proc/o.nc") as tmp:
            tmp.write_bytes(b"x")
    assert ".o.nc." not in str(info.value)


def test_check_output_path_refusals(tmp_path):
    """Every unusable target is refused before any work, each with its own message."""
    from samplers.atomic import check_output_path
    from samplers.errors import SamplerConfigError

    (tmp_path / "exists.nc").write_bytes(b"x")
    (tmp_path / "file").write_bytes(b"x")
    assert check_output_path(tmp_path / "new.nc") == tmp_path / "new.nc"
    assert check_output_path(tmp_path / "exists.nc", overwrite=True) == tmp_path / "exists.nc"
    cases = [("", SamplerConfigError, "empty output path"), ("  ", SamplerConfigError, "empty output path"),
             (tmp_path / ("a" * 300 + ".nc"), SamplerConfigError, "file name too long"),
             (tmp_path, IsADirectoryError, "is a directory"), (tmp_path / ".", IsADirectoryError, "is a directory"),
             (tmp_path / "missing" / "o.nc", FileNotFoundError, "does not exist"),
             (tmp_path / "file" / "o.nc", NotADirectoryError, "is not a directory"),
             (tmp_path / "exists.nc", OutputExistsError, "already exists")]
    for path, kind, message in cases:
        with pytest.raises(kind, match=message):
            check_output_path(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.nc", "file"]
