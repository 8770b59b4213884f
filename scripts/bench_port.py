"""Old build against new, interleaved: the forward+backward time of every benchmark case of
`python -m fastloss bench`, measured in alternating processes (one per build and round; a process
cannot hold two builds: both register the fastloss ops), median of the rounds' medians.

    python scripts/bench_port.py OLD_PYTHONPATH NEW_PYTHONPATH [--rounds 20] [--case PATTERN]

Each round runs each build's process once; each process times every case `--reps` times after a
warm-up and prints its per-case median. Prints one line per case: old ms, new ms, new/old.
"""

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time, fnmatch, torch
import fastloss
from fastloss import bench
pattern, reps = sys.argv[1], int(sys.argv[2])
out = {}
for case in bench.CASES:
    if not fnmatch.fnmatch(case.name, pattern):
        continue
    inputs = case.make_inputs(torch.device("cpu"), torch.float32, False)
    for _ in range(2):
        bench._step(case.fastloss, inputs, case.grad)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); bench._step(case.fastloss, inputs, case.grad); times.append(time.perf_counter() - t0)
    out[case.name] = sorted(times)[len(times) // 2] * 1e3
print(json.dumps(out))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--case", default="*")
    a = p.parse_args()
    results = {"old": [], "new": []}
    for r in range(a.rounds):
        for which in ("old", "new") if r % 2 == 0 else ("new", "old"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, a.case, str(a.reps)],
                capture_output=True,
                text=True,
                env={"PYTHONPATH": getattr(a, which), "PATH": "/usr/bin:/bin"},
                check=True,
            )
            results[which].append(json.loads(out.stdout.strip().splitlines()[-1]))
    worst = 0.0
    for name in results["old"][0]:
        old = statistics.median(r[name] for r in results["old"])
        new = statistics.median(r[name] for r in results["new"])
        worst = max(worst, new / old)
        print(f"{name:60s} old {old:9.3f} ms  new {new:9.3f} ms  new/old {new / old:5.2f}")
    print(f"worst new/old: {worst:.2f} ({a.rounds} interleaved rounds, medians of {a.reps} per process)")


if __name__ == "__main__":
    main()
