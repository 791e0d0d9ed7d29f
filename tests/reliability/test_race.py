"""Two writers racing for one output: without ``overwrite`` exactly one wins and the other gets
:class:`~samplers.atomic.OutputExistsError` (one line, exit 2 on the command line); the file is one
writer's complete output, and no temporary file is left."""

import errno
import os
import subprocess
import sys
import threading

import pytest

from samplers.atomic import OutputExistsError, atomic_output, write_bytes_atomic

WRITERS = 6


def _race(target, overwrite: bool):
    """Each writer has passed every check and holds its finished temporary file when all publish at once."""
    barrier = threading.Barrier(WRITERS)
    outcomes = [None] * WRITERS

    def write(i):
        try:
            with atomic_output(target, overwrite=overwrite) as tmp:
                tmp.write_bytes(f"writer {i} ".encode() * 1000)
                barrier.wait(timeout=30)
            outcomes[i] = "won"
        except OutputExistsError as e:
            outcomes[i] = e

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


@pytest.mark.parametrize("hard_links", [True, False])
def test_exactly_one_writer_wins(tmp_path, monkeypatch, hard_links):
    """With hard links (``os.link``) and without them (the ``O_EXCL`` reservation)."""
    if not hard_links:
        def no_link(src, dst, *a, **k):
            raise OSError(errno.EPERM, os.strerror(errno.EPERM))

        monkeypatch.setattr(os, "link", no_link)
    target = tmp_path / "same.nc"
    outcomes = _race(target, overwrite=False)
    winners = [i for i, o in enumerate(outcomes) if o == "won"]
    assert len(winners) == 1, outcomes
    losers = [o for o in outcomes if o != "won"]
    assert len(losers) == WRITERS - 1 and all(isinstance(o, OutputExistsError) for o in losers)
    assert all("already exists" in str(o) and "\n" not in str(o) for o in losers)
    assert target.read_bytes() == f"writer {winners[0]} ".encode() * 1000  # complete, and the winner's
    assert [p.name for p in tmp_path.iterdir()] == ["same.nc"]


def test_with_overwrite_every_writer_succeeds_and_one_complete_file_remains(tmp_path):
    target = tmp_path / "same.nc"
    assert _race(target, overwrite=True) == ["won"] * WRITERS
    data = target.read_bytes()
    assert data in {f"writer {i} ".encode() * 1000 for i in range(WRITERS)}
    assert [p.name for p in tmp_path.iterdir()] == ["same.nc"]


def test_a_file_that_appears_during_the_write_is_never_replaced(tmp_path):
    target = tmp_path / "o.nc"
    with pytest.raises(OutputExistsError, match="already exists"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"mine")
            target.write_bytes(b"theirs")  # another program, between the check and the end of the write
    assert target.read_bytes() == b"theirs" and [p.name for p in tmp_path.iterdir()] == ["o.nc"]
    with pytest.raises(OutputExistsError):
        write_bytes_atomic(target, b"mine")
    assert target.read_bytes() == b"theirs"


def test_two_simulate_commands_for_one_output(tmp_path):
    """``inverse simulate ... --out same.nc`` twice at once: one exit 0, one exit 2 with one line; the file
    is the winner's complete measurement file."""
    from inverse.measurements import open_measurements

    target = tmp_path / "same.nc"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = {seed: subprocess.Popen([sys.executable, "-m", "inverse.cli", "simulate", "--problem", "ct", "-o",
                                     "size=16", "-o", "angles=8", "--seed", str(seed), "--out", str(target)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for seed in (1, 2)}
    results = {seed: (p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for seed, p in procs.items()}
    for p in procs.values():
        p.stdout.close()
        p.stderr.close()
    codes = sorted(r[0] for r in results.values())
    assert codes == [0, 2], results
    (winner,) = [s for s, r in results.items() if r[0] == 0]
    (loser,) = [r for r in results.values() if r[0] == 2]
    err = loser[2].strip()
    assert "already exists" in err and err.count("\n") == 0 and "Traceback" not in err
    assert "measurements:" not in loser[1]
    assert open_measurements(target).seed == winner
    assert [p.name for p in tmp_path.iterdir()] == ["same.nc"]
