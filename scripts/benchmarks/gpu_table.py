"""The GPU table of BENCHMARKS.md from the JSON ``scripts/gpu_check.sh`` brings back (``gpu_check.py``'s output).

    python scripts/benchmarks/gpu_table.py .gpu-check/gpu_check.json --markdown BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json

from report import markdown_table

__all__ = ["table", "main"]


def _fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def table(r: dict) -> str:
    """Markdown of one ``gpu_check.json``."""
    m = r.get("machine", {})
    lines = [f"Machine: {m.get('gpu', m.get('device', '?'))}, {m.get('cpus', '?')} CPU cores, torch "
             f"{m.get('torch', '?')}, written {m.get('date', '?')}. CUDA tests: {r.get('cuda_tests', 'not run')}.", ""]
    d = r.get("dps_1000", {})
    if "error" in d:
        lines.append(f"DPS 1,000 steps: failed ({d['error']})")
    elif d:
        lines.append(f"DPS, {d['steps']} steps, 64^2 CT-30, {d['particles']} samples: **{d['seconds']:.1f} s** "
                     f"(goal < 10 s on an H100), posterior-mean PSNR {d['psnr_db']:.1f} dB.")
    s = r.get("samplers", {})
    if s.get("rows"):
        lines += ["", f"Every sampler, {s['steps']} steps on 64^2 CT-30, {s['particles']} samples:", "",
                  "| sampler | seconds | NFE | peak GPU memory (MB) |", "|---|---|---|---|"]
        for name, row in s["rows"].items():
            if "error" in row:
                lines.append(f"| {name} | fails: {row['error'][:80]} | | |")
            else:
                lines.append(f"| {name} | {row['seconds']:.2f} | {row.get('nfe', '-')} | "
                             f"{_fmt(row.get('peak_memory_mb'), '.0f')} |")
    n = r.get("networks", {})
    if n.get("rows"):
        lines += ["", "Denoiser call, shipped UNet architecture (widths 32 64 64), randomly initialised:", "",
                  "| size | batch | ms |", "|---|---|---|"]
        lines += [f"| {x['size']}^2 | {x['batch']} | {1e3 * x['seconds']:.2f} |" for x in n["rows"]]
    b = r.get("batch", {})
    if b.get("rows"):
        first = b["rows"][0]
        lines += ["", f"`inverse reconstruct-batch`, {first['files']} CT files, DPS {first['steps']} steps, 2 samples, "
                  "CPU processes with one thread each (goal >= 1.8x at 2):", "",
                  "| processes | seconds | speed-up | posteriors written |", "|---|---|---|---|"]
        lines += [f"| {x['processes']} | {x['seconds']:.1f} | {x['speedup']:.2f}x | {x['written']} |"
                  + (f" fails: {x['error']}" if "error" in x else "") for x in b["rows"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json")
    p.add_argument("--markdown", default=None)
    a = p.parse_args(argv)
    with open(a.json) as f:
        r = json.load(f)
    body = table(r)
    text = markdown_table(r.get("command", "python scripts/benchmarks/gpu_check.py"), body, a.markdown,
                          key="gpu-check", heading="On a GPU: the GPU check")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
