"""Benchmark registry and runner behind `python -m fastloss bench` and `python -m fastloss check`.

Each loss registers its cases in bench/<loss>.py, the module its op record names (fastloss._spec). A case
builds its inputs and names the implementations to compare: fastloss, the reference in eager mode,
torch.compile(reference), and peers such as torchvision. For each, the runner times
forward + backward and its forward within the same steps (medians of repeats after warm-up), and
measures the peak memory allocated during
one forward + backward beyond the inputs: on CUDA from the allocator's statistics, on CPU exactly
from the profiler's allocation events (not RSS).

By default each case runs fastloss beside the strongest form of each competitor: torch.compile of
the reference rather than the eager reference, and where a peer has a torch.compile row, that row
rather than its eager one; a row's repeats are time-boxed (ROW_SECONDS). The full
table (every implementation, every repeat) is `full=True` (`python -m fastloss bench --full`).
"""

import contextlib
import dataclasses
import datetime
import importlib
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, List, Tuple

import torch

MiB = 1 << 20
# the default run's time box per timed row: its repeats stop once this has passed with three of them
# in, or three times this with one (a row of seconds per call is not the one in doubt)
ROW_SECONDS = 0.3


@dataclasses.dataclass
class Case:
    name: str
    # make_inputs(device, dtype, small) -> dict of tensors; those named in `grad` require grad.
    make_inputs: Callable[[torch.device, torch.dtype, bool], Dict[str, torch.Tensor]]
    grad: Tuple[str, ...]
    fastloss: Callable[..., torch.Tensor]
    reference: Callable[..., torch.Tensor]
    peers: Dict[str, Callable[..., torch.Tensor]] = dataclasses.field(default_factory=dict)
    dtypes: Tuple[torch.dtype, ...] = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    # a forward-only case (no gradient: the assigners' and matchers' matrices, built under no_grad):
    # timed forward alone, its peak memory compared with its output's size instead of a gradient's
    forward_only: bool = False
    # False: the reference serves `python -m fastloss check` only; the competitors are the peers
    # (a criterion's reference is fastloss's own composition on the pure-torch ops)
    bench_reference: bool = True
    # False: run only when named (--case): a case of minutes per row on a CPU
    default_run: bool = True


CASES: List[Case] = []


def register(case: Case) -> Case:
    CASES.append(case)
    return case


def add_peer(case_pattern: str, name: str, fn: Callable[..., torch.Tensor]) -> int:
    """Adds an implementation row `name` to every case whose name contains case_pattern (for peers a
    file outside the package supplies: load_peers). Returns the number of cases it joined."""
    joined = [c for c in CASES if case_pattern in c.name]
    for case in joined:
        case.peers[name] = fn
    return len(joined)


def load_peers(path):
    """Runs a peers file (python -m fastloss bench --peers FILE): its add_peer calls add rows."""
    import runpy

    runpy.run_path(path, run_name="fastloss_bench_peers")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Clock:
    """Marks within one step, read after it: CUDA events on a GPU (no sync between forward and
    backward, so the step runs as in training), the host clock on the CPU (its ops are synchronous)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def mark(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def ms(self, begin, end):
        return begin.elapsed_time(end) if self.cuda else (end - begin) * 1e3


def _step(fn, inputs, grad_names, backward=True, clock=None):
    """One call of fn (a forward-only case's fn may return a tuple of outputs), and its backward; the
    clock's marks (start, end of the forward, end), or Nones without one."""
    mark = clock.mark if clock else lambda: None
    for name in grad_names:
        inputs[name].grad = None
    start = mark()
    loss = fn(**inputs)
    forward_end = mark()
    if backward:
        (loss if loss.dim() == 0 else loss.sum()).backward()
    return start, forward_end, mark()


def time_ms(fn, inputs, grad_names, device, repeat, warmup, backward=True, seconds=None):
    """(median ms of forward + backward, median ms of its forward) over `repeat` steps (a forward-only
    case: both are its forward), or fewer once `seconds` have passed with three in, or 3·`seconds` with
    one. The forward is timed inside the same steps, up to the loss. The warm-up's output is not ours
    to print (torch.compile's compiler processes start there, and log)."""
    with _quiet_stderr():
        for _ in range(warmup):
            _step(fn, inputs, grad_names, backward)
        _sync(device)
    clock = _Clock(device)
    marks = []
    began = time.perf_counter()
    for _ in range(repeat):
        marks.append(_step(fn, inputs, grad_names, backward, clock))
        _sync(device)
        spent = time.perf_counter() - began
        if seconds is not None and spent > seconds and (len(marks) >= 3 or spent > 3 * seconds):
            break
    total = statistics.median(clock.ms(start, end) for start, _, end in marks)
    forward = statistics.median(clock.ms(start, forward_end) for start, forward_end, _ in marks)
    return total, forward


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for a while: the profiler's C++ side logs a start/stop pair (and
    on a machine without a GPU, a failed device count) per measurement, which is not ours to print."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _quiet_compile():
    """torch.compile's warnings and log lines (a peer's formula that falls back to eager, recompiles)
    kept out of the benchmark's output: the table says what ran."""
    names = ("torch._dynamo", "torch._inductor", "torch.fx.experimental.symbolic_shapes", "torch.utils.cpp_extension")
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def peak_bytes(fn, inputs, grad_names, device, backward=True):
    """Peak bytes allocated during one forward + backward (or forward), beyond what existed before
    (the inputs)."""
    for name in grad_names:
        inputs[name].grad = None
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        _step(fn, inputs, grad_names, backward)
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(fn, inputs, grad_names, backward)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    running = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        running += e.nbytes()
        peak = max(peak, running)
    return peak


def implementations(case: Case, compile_reference: bool, full: bool = True):
    """The rows of a case: every implementation (full), or fastloss beside the strongest form of each
    competitor: torch.compile(reference) for the eager reference (when compiling), and the peers'
    torch.compile rows for their eager ones where the case has such rows."""
    impls = {"fastloss": case.fastloss}
    if case.bench_reference and (full or not compile_reference):
        impls["reference"] = case.reference
    if case.bench_reference and compile_reference:
        impls["reference+torch.compile"] = torch.compile(case.reference)
    # (a case without reference rows keeps its peers' eager rows too: the peers are its only competitors)
    compiled_peers = compile_reference and case.bench_reference and any("torch.compile" in n for n in case.peers)
    impls.update({name: fn for name, fn in case.peers.items() if full or not compiled_peers or "torch.compile" in name})
    return impls


def moved_bytes(inputs, grad_names, output_bytes=0):
    """The bytes a forward + backward must move at least: every input read once, every gradient (of a
    forward-only case: the output) written once (a fused implementation's floor; anything else re-reads
    or writes intermediates)."""
    read = sum(t.numel() * t.element_size() for t in inputs.values() if isinstance(t, torch.Tensor))
    written = sum(inputs[n].numel() * inputs[n].element_size() for n in grad_names)
    return read + written + output_bytes


def output_bytes(case, inputs):
    """The size of a forward-only case's output (its floor of memory and of bytes written); 0 otherwise."""
    if not case.forward_only:
        return 0
    with torch.no_grad():
        out = case.fastloss(**inputs)
    return sum(t.numel() * t.element_size() for t in (out if isinstance(out, tuple) else (out,)))


def copy_bandwidth(nbytes, device, repeat=5):
    """Bytes per second of `Tensor.copy_` between two buffers of `nbytes` on `device` (read + write
    counted): the memory roofline the losses are measured against, in the same run."""
    n = max(nbytes // 4, 1)
    src, dst = torch.ones(n, device=device), torch.empty(n, device=device)
    dst.copy_(src)  # (the destination's pages touched first)
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n * 4 / statistics.median(times)


def progress(message):
    print(message, file=sys.stderr, flush=True)


def compile_available(device):
    """torch.compile needs Triton for CUDA code; without it the compile rows are skipped (said once)."""
    if device.type != "cuda":
        return True
    import importlib.util

    return importlib.util.find_spec("triton") is not None


def run(cases, device, dtype, repeat=10, warmup=3, compile_reference=True, log=progress, full=True):
    """Times and measures every case's rows (implementations(); full=False: the strongest ones, each
    row's repeats time-boxed to ROW_SECONDS); returns one dict per row."""
    if compile_reference and not compile_available(device):
        log("no Triton here: torch.compile cannot compile for CUDA, so the reference+torch.compile rows are skipped")
        compile_reference = False
    with _quiet_compile():
        return _run(cases, device, dtype, repeat, warmup, compile_reference, log, full)


def _run(cases, device, dtype, repeat, warmup, compile_reference, log, full):
    seconds = None if full else ROW_SECONDS
    rows = []
    for number, case in enumerate(cases, 1):
        inputs = case.make_inputs(device, dtype, False)
        out_bytes = output_bytes(case, inputs)
        grad_bytes = sum(inputs[n].numel() * inputs[n].element_size() for n in case.grad) + out_bytes
        moved = moved_bytes(inputs, case.grad, out_bytes)
        copy_bps = copy_bandwidth(moved, device)
        log(
            f"[{number}/{len(cases)}] {case.name}: {moved / MiB:.1f} MiB to move; "
            f"copy runs at {copy_bps / 1e9:.1f} GB/s"
        )
        base_ms = None
        for impl, fn in implementations(case, compile_reference, full).items():
            backward = not case.forward_only
            if full or "torch.compile" in impl:  # (the warm-up compiles: the memory is measured after it)
                ms, forward_ms = time_ms(fn, inputs, case.grad, device, repeat, warmup, backward, seconds)
                peak = peak_bytes(fn, inputs, case.grad, device, backward=backward)
            else:  # an eager row's memory step is its first warm-up step
                peak = peak_bytes(fn, inputs, case.grad, device, backward=backward)
                ms, forward_ms = time_ms(fn, inputs, case.grad, device, repeat, warmup - 1, backward, seconds)
            base_ms = ms if base_ms is None else base_ms
            gbps = moved / (ms / 1e3) / 1e9
            row = dict(
                case=case.name,
                impl=impl,
                ms=ms,
                forward_ms=forward_ms,
                fastloss_over_this=base_ms / ms,
                peak_bytes=peak,
                peak_over_grad=peak / grad_bytes if grad_bytes else float("nan"),
                moved_bytes=moved,
                gb_per_s=gbps,
                copy_gb_per_s=copy_bps / 1e9,
                of_copy=gbps / (copy_bps / 1e9),
            )
            rows.append(row)
            log(
                f"      {impl:<24} {ms:9.2f} ms (forward {forward_ms:.2f})  {gbps:6.1f} GB/s  "
                f"peak {peak / MiB:8.1f} MiB"
            )
        for name in case.grad:
            inputs[name].grad = None
    return rows


def format_table(rows, meta):
    lines = [
        f"fastloss bench: {meta['device_name']}, {meta['dtype']}, {meta['threads']} CPU threads, "
        f"torch {meta['torch']}, {meta['date']}",
        f"command: {meta['command']}",
        "fwd+bwd: median time of forward + backward (fwd: its forward, timed within the same steps); "
        "fastloss/this: fastloss's fwd+bwd time ÷ this row's (below 1 = fastloss faster); "
        "GB/s: the bytes forward + backward must move "
        "(inputs read once, gradient written once) ÷ fwd+bwd time; of copy: that ÷ the bandwidth of "
        "Tensor.copy_ of as many bytes in the same run (1.00 = at the memory roofline); peak: memory allocated "
        "during forward + backward beyond the inputs; peak/grad: that ÷ the size of the gradient (1.00 is the "
        "floor). Forward-only cases (the assigners' matrices, no gradient): fwd+bwd is the forward, and "
        "peak/grad is ÷ the output's size.",
        "",
        f"| {'case':<34} | {'implementation':<24} | {'fwd+bwd ms':>10} | {'fwd ms':>8} | {'fastloss/this':>13} | "
        f"{'GB/s':>6} | {'of copy':>7} | {'peak MiB':>9} | {'peak/grad':>9} |",
        f"|{'-' * 36}|{'-' * 26}|{'-' * 11}:|{'-' * 9}:|{'-' * 14}:|{'-' * 7}:|{'-' * 8}:|{'-' * 10}:|{'-' * 10}:|",
    ]
    last = None
    for r in rows:
        case = r["case"] if r["case"] != last else ""
        last = r["case"]
        lines.append(
            f"| {case:<34} | {r['impl']:<24} | {r['ms']:>10.2f} | {r['forward_ms']:>8.2f} | "
            f"{r['fastloss_over_this']:>13.2f} | {r['gb_per_s']:>6.1f} | {r['of_copy']:>7.2f} | "
            f"{r['peak_bytes'] / MiB:>9.1f} | {r['peak_over_grad']:>9.2f} |"
        )
    return "\n".join(lines)


def plot_available():
    """matplotlib is an optional dependency: a one-line error before the run when it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        print(f"python -m fastloss: error: --plot needs matplotlib ({e}); pip install matplotlib", file=sys.stderr)
        raise SystemExit(2) from e


def plot(rows, meta, path):
    """Time and peak memory of every case and implementation, side by side, into a PNG."""
    plot_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    cases = list(dict.fromkeys(r["case"] for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    core = ["fastloss", "reference", "reference+torch.compile"]
    slots = len(core) + 1  # the peers (torchvision, MONAI, F.cross_entropy…) share the last slot
    colors = {impl: f"C{k}" for k, impl in enumerate(impls)}
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.55 * len(cases) + 1.8), sharey=True)
    height = 0.8 / slots
    for r in rows:
        i = cases.index(r["case"])
        y = i + height * (core.index(r["impl"]) if r["impl"] in core else len(core))
        for ax, key in zip(axes, ("ms", "peak_over_grad")):
            ax.barh(y, r[key], height=height, color=colors[r["impl"]])
    axes[0].set_xscale("log")
    axes[0].xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes[1].axvline(1.0, color="black", linewidth=0.8)  # the floor: the gradient itself
    for ax, title in zip(axes, ("forward + backward, ms (log scale)", "peak memory ÷ gradient size (1 = the floor)")):
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks([i + 0.4 - height / 2 for i in range(len(cases))], cases)
    axes[0].invert_yaxis()
    axes[1].legend(
        handles=[matplotlib.patches.Patch(color=colors[i], label=i) for i in impls], loc="lower right", fontsize="small"
    )
    fig.suptitle(f"fastloss bench: {meta['device_name']}, {meta['dtype']}, torch {meta['torch']}, {meta['date']}")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def metadata(device, dtype):
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    if device.type == "cpu":
        try:
            with open("/proc/cpuinfo") as f:
                name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
        except OSError:
            pass
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        device=str(device),
        device_name=name,
        dtype=str(dtype).replace("torch.", ""),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        command="python -m fastloss " + " ".join(sys.argv[1:]),
    )


def check(cases, device, log=print):
    """Compare fastloss with the reference (forward and every gradient) on small inputs of each case
    and dtype; returns the number of failures."""
    from .._tolerance import tolerance

    failures = 0
    for case in cases:
        for dtype in case.dtypes:
            inputs = case.make_inputs(device, dtype, True)
            results = []
            for fn in (case.fastloss, case.reference):
                for name in case.grad:
                    inputs[name].grad = None
                loss = fn(**inputs)
                if not case.forward_only:
                    (loss if loss.dim() == 0 else loss.sum()).backward()
                outputs = list(loss) if isinstance(loss, tuple) else [loss.detach()]
                results.append(outputs + [inputs[n].grad.clone() for n in case.grad])
            worst = 0.0
            for got, want in zip(*results):
                rtol, atol = tolerance(dtype)
                if got.numel() == 0:
                    continue
                err = ((got.double() - want.double()).abs() / (atol + rtol * want.double().abs())).max().item()
                worst = max(worst, err)
            ok = worst <= 1.0
            failures += not ok
            log(f"  {'ok  ' if ok else 'FAIL'} {case.name:<34} {str(dtype):<15} worst error / tolerance = {worst:.3f}")
    return failures


def write_json(path, rows, meta):
    with open(path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)


# The faces' composite criteria, whose cases are no op's.
FACES = ("ultralytics",)


# Each op record names its module here (fastloss._spec): importing it registers its cases.
def _import_cases():
    from .. import _spec

    for name in sorted({s.bench for s in _spec.specs() if s.bench}):
        importlib.import_module(f".{name}", __name__)
    for face in FACES:
        importlib.import_module(f".{face}", __name__)


_import_cases()
