"""Quick mode of the benchmark suite (scripts/benchmarks/), run in-process into tmp_path.

The suite is not installed: its scripts import their siblings by name, so this test puts
``scripts/benchmarks`` on ``sys.path`` (the folder Python gives ``python scripts/benchmarks/run.py``) and
imports them the same way; one test runs ``run.py`` by path in a subprocess to check that it needs nothing else.
"""

import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "scripts" / "benchmarks"
if str(SUITE) not in sys.path:
    sys.path.append(str(SUITE))

import bench_pseudo_inverse  # noqa: E402
import run  # noqa: E402
from common import BenchSettings, ResultStore, meter_calls  # noqa: E402
from run import run_benchmark  # noqa: E402
from trace_interp import linear_trace_interpolation, snr_db  # noqa: E402


def _script(name: str):
    """``scripts/<name>.py`` (a command line outside the suite) as a module."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings(tmp_path, **kw):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nheader paragraph\n")
    return BenchSettings(quick=True, out_dir=tmp_path / "out", markdown=md, log=lambda s: None, **kw)


def test_gmm_quick_writes_block_and_resumes(tmp_path):
    s = _settings(tmp_path)
    r = run_benchmark("gmm", s)
    text = s.markdown.read_text()
    assert "<!-- suite-gmm:begin -->" in text and "header paragraph" in text
    assert "seeds: 0-0 per cell" in r["table"] and "thread(s)" in r["table"] and "written" in r["table"]
    lines = (tmp_path / "out" / "gmm-quick.jsonl").read_text().splitlines()
    assert {json.loads(x)["key"]["sampler"] for x in lines} == {"dps", "mcg", "tds", "mcgdiff", "afes", "enkg", "eki"}
    run_benchmark("gmm", s)  # resume: every cell is done, nothing is appended
    assert len((tmp_path / "out" / "gmm-quick.jsonl").read_text().splitlines()) == len(lines)
    # the ratio's denominator is the instance's expected floor (10 exact pairs), stored once per instance
    fl = ResultStore(tmp_path / "out" / "gmm_floor-quick.jsonl").records()
    assert len(fl) == 1 and fl[0]["key"]["refs"] == 10 and fl[0]["floor"] > 0
    dps = json.loads(next(x for x in lines if json.loads(x)["key"]["sampler"] == "dps"))
    assert f"| dps | 1 | {dps['sw'] / fl[0]['floor']:.1f} " in r["table"]
    assert f"| {fl[0]['floor']:.3f} |" in r["table"]


def test_trace_interp_quick(tmp_path):
    s = _settings(tmp_path)
    r = run_benchmark("trace-interp", s)
    recs = ResultStore(tmp_path / "out" / "trace_interp-quick.jsonl").records()
    assert {x["key"]["method"] for x in recs} == {"zero-filled", "linear", "dps-wave"}
    zf = [x for x in recs if x["key"]["method"] == "zero-filled"]
    assert all(abs(x["snr_missing"]) < 1e-9 for x in zf)  # zero-filled recovers nothing on missing traces
    assert "| random-50% | linear |" in r["table"]


def test_cli_quick_only_gmm(tmp_path):
    md = tmp_path / "copy.md"
    md.write_text("# Benchmarks\n")
    assert run.main(["--quick", "--only", "gmm", "--out-dir", str(tmp_path), "--markdown", str(md)]) == 0
    summary = json.loads((tmp_path / "suite-quick.json").read_text())["runs"][-1]
    assert summary["quick"] and "gmm" in summary["benchmarks"]
    assert "suite-gmm" in md.read_text()


def test_run_log_keeps_every_run_and_sums_each_benchmark(tmp_path):
    """Part-by-part runs append to suite.json; a file in the older one-run format becomes the first run."""
    record_run = run.record_run
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"command": "old", "benchmarks": {"fwi": {"seconds": 10.0}}}))
    record_run(path, {"command": "a", "benchmarks": {"gmm": {"seconds": 5.0}, "fwi": {"seconds": 2.5}}})
    log = record_run(path, {"command": "b", "benchmarks": {"gmm": {"seconds": 1.0}}})
    assert [r["command"] for r in log["runs"]] == ["old", "a", "b"]
    assert log["seconds_by_benchmark"] == {"fwi": 12.5, "gmm": 6.0}
    assert json.loads(path.read_text()) == log
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        record_run(path, {"benchmarks": {}})
    assert path.read_text() == "{not json"  # left as it was


def test_linear_trace_interpolation_exact_on_linear_moveout():
    r = torch.arange(10.0)
    x = (2.0 * r + 1.0).expand(1, 5, 10).clone()   # linear across receivers
    mask = torch.ones(1, 10)
    mask[0, [2, 3, 6]] = 0
    y = x * mask[:, None, :]
    assert torch.allclose(linear_trace_interpolation(y, mask), x)
    assert snr_db(x, x + 1e-3) > 40


def test_meter_calls_counts_backward_and_restores():
    lin = torch.nn.Linear(3, 3)

    class Box:
        def f(self, x):
            return lin(x)

    box = Box()
    with meter_calls(box, "f") as m:
        x = torch.randn(4, 3, requires_grad=True)
        box.f(x).sum().backward()
    assert m.calls == 1 and m.items == 4 and m.seconds > 0 and x.grad is not None
    assert "f" not in vars(box)


def test_result_store_keys(tmp_path):
    st = ResultStore(tmp_path / "r.jsonl")
    st.add({"a": 1, "b": [1, 2]}, {"v": 3.0})
    again = ResultStore(tmp_path / "r.jsonl")
    assert again.done({"b": [1, 2], "a": 1}) and not again.done({"a": 2, "b": [1, 2]})
    assert again.records(a=1)[0]["v"] == 3.0


def test_result_store_discard_keeps_other_processes_rows(tmp_path):
    """``discard`` drops the matching cells (list values: any member), keeps rows appended by another
    store on the same file since this one loaded, and the dropped cells count as not done."""
    path = tmp_path / "r.jsonl"
    st = ResultStore(path)
    for method in ("mcg", "dps"):
        for seed in range(3):
            st.add({"problem": "ct-30", "method": method, "seed": seed}, {"psnr": 20.0 + seed})
    other = ResultStore(path)  # a second process sharing the file
    other.add({"problem": "mri-x4", "method": "mcg", "seed": 0}, {"psnr": 30.0})
    assert st.discard(problem=["ct-30"], method="mcg", seed=range(0, 2)) == 2
    assert not st.done({"problem": "ct-30", "method": "mcg", "seed": 1})
    assert st.done({"problem": "ct-30", "method": "mcg", "seed": 2})
    reloaded = ResultStore(path)
    assert len(reloaded.records()) == 5 and reloaded.records(problem="mri-x4")[0]["psnr"] == 30.0
    assert not reloaded.records(method="mcg", seed=0, problem="ct-30")
    assert st.discard(method="tds") == 0 and len(ResultStore(path).records()) == 5
    with pytest.raises(ValueError, match="at least one key item"):
        st.discard()


def test_result_store_survives_a_line_cut_short_by_a_killed_run(tmp_path):
    path = tmp_path / "r.jsonl"
    ResultStore(path).add({"seed": 0}, {"v": 1.0})
    with open(path, "a") as f:
        f.write('{"key": {"seed": 1}, "v": 2.')  # the run died mid-write: no newline
    with pytest.warns(RuntimeWarning, match="unreadable line.*2"):
        st = ResultStore(path)
    assert st.done({"seed": 0}) and not st.done({"seed": 1})
    st.add({"seed": 1}, {"v": 2.5})  # re-run cell: starts its own line, not glued to the cut one
    with pytest.warns(RuntimeWarning, match="unreadable line"):
        again = ResultStore(path)
    assert again.done({"seed": 1}) and again.records(seed=1)[0]["v"] == 2.5
    assert len(again.records()) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fwi", "imaging", "overhead", "navier-stokes"])
def test_heavier_quick_benchmarks(tmp_path, name):
    s = _settings(tmp_path)
    r = run_benchmark(name, s)
    assert "Machine:" in r["table"] and "seeds:" in r["table"]


def test_overhead_meters_the_samplers_one_off_setup_apart():
    """TDS decomposes the operator once in ``setup``: the meter reports it and the share of the rest."""
    from overhead import measure_overhead

    from inverse.problems import gmm_case
    from samplers import get_sampler

    case = gmm_case(8, 2, seed=0)
    sampler = get_sampler("tds", num_steps=5)
    r = measure_overhead(sampler, case.problem, case.prior, 16)
    assert r["setup_s"] > 0
    assert r["network_calls"] == 5  # one batched call per level (the last step reuses the cached denoiser)
    assert 0 < r["share"] <= r["share_steps"] <= 1.0 + 1e-9
    assert "setup" not in vars(sampler)  # the meter is removed afterwards


def test_navier_stokes_budget_follows_the_device():
    """CPU: the measured CPU-sized budget of the issue-5 table; CUDA: the script's InverseBench defaults."""
    from navier_stokes import CPU_ARGS, plan

    cpu = plan(BenchSettings())["args"]
    gpu = plan(BenchSettings(device="cuda"))["args"]
    assert all(a in cpu for a in CPU_ARGS) and "--device" not in cpu
    assert gpu[gpu.index("--device") + 1] == "cuda" and "--particles" not in gpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cli_refuses_cuda_without_a_gpu(tmp_path, capsys):
    assert run.main(["--only", "navier-stokes", "--device", "cuda", "--out-dir", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_imaging_problems_filter_is_checked(tmp_path):
    from imaging import plan

    s = _settings(tmp_path, extra={"problems": ["mri-x8"]})
    assert plan(s)["problems"] == ["mri-x8"]
    assert plan(_settings(tmp_path))["problems"] == ["ct-30", "mri-mc-x4"]  # quick default
    with pytest.raises(ValueError, match="unknown imaging problem.*ct-40"):
        plan(_settings(tmp_path, extra={"problems": ["ct-40"]}))


def test_imaging_instance_range_is_parsed_and_checked():
    from imaging import parse_instance_range

    assert parse_instance_range("14-16") == (14, 17)
    assert parse_instance_range(" 3 ") == (3, 4)
    for bad, msg in [("16-14", "below START"), ("a-b", "expected START-STOP"), ("-3", "expected START-STOP")]:
        with pytest.raises(ValueError, match=msg):
            parse_instance_range(bad)


def test_imaging_instance_range_computes_only_those_instances(tmp_path, monkeypatch):
    """``--instances 1-2`` of 4: only phantoms 1 and 2 are simulated and stored; others stay to other processes."""
    from types import SimpleNamespace

    import imaging

    s = _settings(tmp_path, seeds=4, extra={"problems": ["ct-30"], "instances": imaging.parse_instance_range("1-2")})
    assert list(imaging.plan(s)["seeds"]) == [1, 2]
    simulated = []

    def fake_simulate(name, options, seed):
        simulated.append(seed)
        return SimpleNamespace(noise=SimpleNamespace(config=lambda: {"sigma": 0.1}), forward_model=None,
                               y=torch.zeros(3), truth=None)

    def fake_method(*a, **k):
        return {"psnr": 20.0, "time_per_sample_s": 0.0}

    monkeypatch.setattr(imaging, "simulate", fake_simulate)
    monkeypatch.setattr(imaging, "select_tv_weight", lambda *a: 0.01)
    monkeypatch.setattr(imaging, "select_deepinv_dps_weight", lambda *a: 1.0)
    monkeypatch.setattr(imaging, "measurement_view", lambda *a: None)
    for name in ("score_samples", "run_tv", "run_deepinv", "_ours"):
        monkeypatch.setattr(imaging, name, fake_method)
    imaging.run(s, prior=object())
    assert simulated == [1, 2]
    assert {r["key"]["seed"] for r in s.store("imaging").records()} == {1, 2}
    # --rerun mcg on instance 2 only: its row is discarded and computed again, nothing else runs
    n_before = len(s.store("imaging").records())
    simulated.clear()
    s.extra.update(rerun=["mcg"], instances=(2, 3))
    imaging.run(s, prior=object())
    assert simulated == [2]
    assert len(s.store("imaging").records()) == n_before
    with pytest.raises(ValueError, match="unknown method.*mgc"):
        imaging.check_methods(["mgc"])
    with pytest.raises(ValueError, match="instances 0-3"):
        imaging.plan(_settings(tmp_path, seeds=4, extra={"instances": (4, 5)}))


def test_imaging_warns_about_rows_run_with_superseded_settings(tmp_path, monkeypatch):
    """Stored rows of one of our samplers whose settings differ from the current defaults are reported (with the
    --rerun command), and the table's note says the rows mix settings; rows at the current settings stay quiet."""
    from types import SimpleNamespace

    import imaging

    s = _settings(tmp_path, seeds=2, extra={"problems": ["ct-30"]})
    p = imaging.plan(s)
    current = imaging.sampler_settings("mcg", p["steps"], "ct", eki_iterations=p["eki_iterations"])
    alpha = current["alpha"]

    def fake_ours(m, prior, name, p, label, seed):
        cfg = imaging.sampler_settings(name, p["steps"], "ct", eki_iterations=p["eki_iterations"])
        if name == "mcg" and seed == 1:
            cfg = {**cfg, "alpha": alpha + 1.0}  # as if run before a change of the default
        return {"psnr": 20.0, "time_per_sample_s": 0.0, "nfe_per_sample": 1, "settings": cfg}

    monkeypatch.setattr(imaging, "simulate", lambda *a, **k: SimpleNamespace(
        noise=SimpleNamespace(config=lambda: {"sigma": 0.1}), forward_model=None, y=torch.zeros(3), truth=None))
    monkeypatch.setattr(imaging, "select_tv_weight", lambda *a: 0.01)
    monkeypatch.setattr(imaging, "select_deepinv_dps_weight", lambda *a: 1.0)
    monkeypatch.setattr(imaging, "measurement_view", lambda *a: None)
    for name in ("score_samples", "run_tv", "run_deepinv"):
        monkeypatch.setattr(imaging, name, lambda *a, **k: {"psnr": 20.0, "time_per_sample_s": 0.0})
    monkeypatch.setattr(imaging, "_ours", fake_ours)
    imaging.run(s, prior=object())  # first run: computes everything, nothing stale yet
    with pytest.warns(RuntimeWarning, match=r"1 stored mcg row.*\(instances 1\).*--rerun mcg"):
        records = imaging.run(s, prior=object())
    mcg = [r for r in records if r["key"]["method"] == "mcg"]
    assert imaging.settings_note(mcg).startswith("mixed settings: ")
    assert imaging.settings_note(mcg[:1]) == f"alpha = {alpha:g}"
    dps = [r for r in records if r["key"]["method"] == "dps"]
    assert len(dps) == 2 and imaging.settings_note(dps) == f"zeta = {dps[0]['settings']['zeta']:g}"
    assert imaging.settings_note([]) == ""


def test_benchmark_cli_rejects_imaging_options_elsewhere_and_bad_values(capsys):
    mod = run
    assert mod.main(["--only", "gmm", "--instances", "1-2", "--no-markdown"]) == 2
    assert "imaging benchmark only" in capsys.readouterr().err
    assert mod.main(["--only", "imaging", "--instances", "2-1", "--no-markdown"]) == 2
    assert "below START" in capsys.readouterr().err
    assert mod.main(["--only", "gmm", "--rerun", "mcg", "--no-markdown"]) == 2
    assert "--rerun applies to the imaging benchmark only" in capsys.readouterr().err
    assert mod.main(["--only", "imaging", "--rerun", "mgc", "--no-markdown"]) == 2
    assert "unknown method(s) mgc" in capsys.readouterr().err


def test_deepinv_dps_weight_is_the_best_on_the_held_out_phantoms(tmp_path):
    """The weight with the best mean PSNR over the held-out phantoms wins; stored cells are not re-run."""
    from imaging import plan, select_deepinv_dps_weight

    p = plan(_settings(tmp_path))
    p = {**p, "tv_held_out": [10_000, 10_001], "dps_grid": [1.0, 10.0, 100.0]}
    st = ResultStore(tmp_path / "s.jsonl")
    psnr = {(1.0, 10_000): 20.0, (1.0, 10_001): 20.0, (10.0, 10_000): 25.0, (10.0, 10_001): 17.0,
            (100.0, 10_000): 22.0, (100.0, 10_001): 21.0}  # means 20, 21, 21.5
    for (w, seed), v in psnr.items():
        st.add({"problem": "ct-30", "method": "deepinv-dps-select", "weight": w, "seed": seed, "steps": p["steps"],
                "samples": p["select_samples"]}, {"psnr": v})
    with pytest.warns(RuntimeWarning, match="an end of its grid"):  # 100 tops this grid
        assert select_deepinv_dps_weight("ct-30", p, st, prior=None) == 100.0
    p = {**p, "dps_grid": [1.0, 10.0, 100.0, 1000.0]}
    for seed, v in ((10_000, 19.0), (10_001, 19.0)):
        st.add({"problem": "ct-30", "method": "deepinv-dps-select", "weight": 1000.0, "seed": seed,
                "steps": p["steps"], "samples": p["select_samples"]}, {"psnr": v})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an interior choice does not warn
        assert select_deepinv_dps_weight("ct-30", p, st, prior=None) == 100.0


def test_imaging_table_drops_deepinv_dps_rows_at_a_superseded_weight(tmp_path):
    """Rows run at a weight the held-out cells no longer choose are left out of the table (they stay stored)."""
    from imaging import plan, table

    s = _settings(tmp_path)
    p = plan(s)
    st = s.store("imaging")
    for seed in p["tv_held_out"]:
        for w, v in ((1.0, 18.0), (10.0, 22.0)):
            st.add({"problem": "ct-30", "method": "deepinv-dps-select", "weight": w, "seed": seed,
                    "steps": p["steps"], "samples": p["select_samples"]}, {"psnr": v})
    row = {"ssim": 0.5, "coverage_90": 0.9, "time_per_sample_s": 1.0, "nfe_per_sample": 4}
    for w, v in ((1.0, 11.0), (10.0, 33.0)):
        st.add({"problem": "ct-30", "method": "deepinv-dps", "seed": 0, "steps": p["steps"], "samples": p["samples"],
                "weight": w}, {"psnr": v, **row, "settings": {"weight": w}})
    block = table(s.store("imaging").records(method="deepinv-dps"), s)
    assert "33.00" in block and "11.00" not in block and "weight 10 (chosen" in block


def test_imaging_time_charges_a_reused_decomposition(monkeypatch):
    """A run that took the operator's decomposition from the cache is timed as a standalone run."""
    from types import SimpleNamespace

    import imaging

    def fake_reconstruct(m, prior, name, **kw):
        d = {"psnr": 30.0, "relative_l2": 0.1, "wall_time_s": 8.0, "nfe": 80, "basis_s": 24.0, "basis_reused": reused}
        return SimpleNamespace(diagnostics=d)

    monkeypatch.setattr(imaging, "reconstruct", fake_reconstruct)
    m = SimpleNamespace(problem="mri")
    p = {"steps": 10, "samples": 8, "eki_iterations": 2}
    for reused, per_sample in ((False, 1.0), (True, 4.0)):
        rec = imaging._ours(m, None, "tds", p, "mri-x4", 0)
        assert rec["time_per_sample_s"] == per_sample and rec["basis_reused"] is reused and rec["wall_time_s"] == 8.0


def test_pseudo_inverse_benchmark_writes_exact_svd_rows(tmp_path):
    """scripts/benchmarks/bench_pseudo_inverse.py on single-coil MRI: the per-row SVD matches the float64 solution
    to float32 round-off at every damping, its block lands in the Markdown file and the JSON is whole."""
    mod = bench_pseudo_inverse
    md = tmp_path / "B.md"
    md.write_text("# Benchmarks\n")
    out = tmp_path / "pi.json"
    assert mod.main(["--problems", "mri-x4", "--repeats", "1", "--json", str(out), "--markdown", str(md)]) == 0
    rows = json.loads(out.read_text())
    svd = [r for r in rows if r["solver"] == "per-row SVD"]
    assert len(svd) == len(mod.DAMPINGS) and len(rows) == 2 * len(mod.DAMPINGS)
    assert max(r["relative_error"] for r in svd) < 1e-5  # measured 1.7e-7
    assert "<!-- pseudo-inverse-table:begin -->" in md.read_text() and "per-row SVD" in md.read_text()
    with pytest.raises(SystemExit):
        mod.main(["--problems", "no-such-problem"])


def test_tune_reconstruct_scans_held_out_seeds_with_problem_options(tmp_path, monkeypatch):
    """scripts/tune_reconstruct.py: ``--first-seed`` moves the scan off the test instances, ``--option`` reaches
    every simulated problem and each JSON line names the sampler, the option and the scanned value."""
    from types import SimpleNamespace

    mod = _script("tune_reconstruct")
    seen = []

    def fake_simulate(problem, options=None, seed=0):
        seen.append((problem, dict(options), seed))
        return SimpleNamespace(problem=problem)

    def fake_reconstruct(m, prior, sampler, **kw):
        d = {"relative_l2": 0.1 * kw["sampler_options"]["alpha"], "psnr": 30.0, "misfit": 1.0, "wall_time_s": 1.0}
        return SimpleNamespace(diagnostics=d)

    monkeypatch.setattr(mod, "simulate", fake_simulate)
    monkeypatch.setattr(mod, "reconstruct", fake_reconstruct)
    out = tmp_path / "tune.jsonl"
    assert mod.main(["--problems", "mri", "--sampler", "mcg", "--param", "alpha", "--zetas", "1", "3", "--seeds", "2",
                     "--first-seed", "10000", "--option", "acceleration=8", "--out", str(out)]) == 0
    assert [s for _, _, s in seen] == [10000, 10001, 10000, 10001]
    assert all(o == {"acceleration": 8.0} for _, o, _ in seen)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["sampler"], r["acceleration"], r["alpha"]) for r in rows} == {("mcg", 8.0, 1.0), ("mcg", 8.0, 3.0)}
    for bad in (["--option", "acceleration"], ["--seeds", "0"], ["--first-seed", "-1"],
                ["--problems", "mri", "--option", "foo=1"], ["--problems", "no-such-problem"]):
        with pytest.raises(SystemExit):
            mod.main(["--out", str(tmp_path / "x.jsonl"), *bad])


def test_suite_runs_by_path_from_the_repository_root(tmp_path):
    """``python scripts/benchmarks/run.py`` finds its siblings and the installed packages with no path set-up
    (a refused option exits 2 after every import has run)."""
    proc = subprocess.run([sys.executable, "scripts/benchmarks/run.py", "--only", "gmm", "--instances", "1-2",
                           "--no-markdown", "--out-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "imaging benchmark only" in proc.stderr


def test_packages_do_not_ship_the_suite():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("inverse.benchmarking")


def test_gpu_check_runs_its_sections_on_the_cpu_and_its_table_reads_them(tmp_path):
    """``scripts/gpu_check.sh``'s measurements (``gpu_check.py``) in quick mode on the CPU, and the table made of them:
    the script a leased GPU runs must not be first exercised there."""
    import gpu_check
    import gpu_table

    out = tmp_path / "gpu_check.json"
    gpu_check.main(["--device", "cpu", "--quick", "--out", str(out), "--sections", "dps_1000", "networks"])
    r = json.loads(out.read_text())
    assert "error" not in r["dps_1000"] and r["dps_1000"]["steps"] == 5 and r["dps_1000"]["seconds"] > 0
    assert {(x["size"], x["batch"]) for x in r["networks"]["rows"]} == {(16, 1), (16, 2), (32, 1), (32, 2)}
    md = tmp_path / "B.md"
    gpu_table.main([str(out), "--markdown", str(md)])
    text = md.read_text()
    assert "<!-- gpu-check:begin -->" in text and "DPS, 5 steps" in text and "| 32^2 | 2 |" in text
