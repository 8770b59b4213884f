"""python -m fastloss {bench, check, info}."""
import argparse
import sys

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _device(name):
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    return device


def _cases(pattern):
    from .bench import CASES

    cases = [c for c in CASES if pattern is None or pattern in c.name]
    if not cases:
        raise SystemExit(f"no benchmark case matches {pattern!r}; cases: {', '.join(c.name for c in CASES)}")
    return cases


def cmd_bench(args):
    from . import bench

    device, dtype = _device(args.device), DTYPES[args.dtype]
    meta = bench.metadata(device, dtype)
    print(f"running {len(_cases(args.case))} case(s) on {meta['device_name']} ({device}), {args.dtype}; "
          f"torch.compile warm-up takes a while", flush=True)
    rows = bench.run(_cases(args.case), device, dtype, repeat=args.repeat, warmup=args.warmup,
                     compile_reference=not args.no_compile)
    print()
    print(bench.format_table(rows, meta))
    if args.json:
        bench.write_json(args.json, rows, meta)
        print(f"\nwrote {args.json}")


def cmd_check(args):
    from . import bench

    device = _device(args.device)
    print(f"checking fastloss against fastloss.reference on {device}")
    failures = bench.check(_cases(args.case), device)
    print("all good" if not failures else f"{failures} failure(s)")
    return 1 if failures else 0


def cmd_info(_args):
    from . import __version__, _backend

    info = _backend.info()
    print(f"fastloss {__version__}")
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), python {sys.version.split()[0]}")
    print(f"kernels: {info['backend']}" + (f" ({info['unavailable_reason']})" if info["unavailable_reason"] else ""))
    print(f"CPU kernels: {info['cpu_capability'] or '-'}; threads {torch.get_num_threads()}")
    print(f"CUDA kernels compiled: {'yes, archs ' + info['cuda_archs'] if info['cuda_compiled'] else 'no'}; "
          f"CUDA device available: {torch.cuda.is_available()}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastloss", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bench", help="time and memory of forward+backward against the peers (the main job)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--case", help="only cases whose name contains this")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile(reference)")
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("check", help="quick self-test of the built kernels against the reference")
    p.add_argument("--device")
    p.add_argument("--case")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("info", help="version, torch, and which kernels were compiled")
    p.set_defaults(fn=cmd_info)
    args = parser.parse_args(argv)
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
