"""The build and the package around the kernels: registration per backend, fallbacks, the CLI."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest
import torch

import fastloss
from fastloss import _spec
from helpers import peer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import check_wheel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fastloss_ops():
    return sorted({s.name for s in torch._C._jit_get_all_schemas() if s.name.startswith("fastloss::")})


def test_kernels_are_loaded():
    assert fastloss._backend.info()["backend"] == "kernels", fastloss._backend.unavailable_reason


@pytest.mark.skipif(
    "FASTLOSS_EXPECT_INSTALLED" not in os.environ,
    reason="only when testing an installed wheel (scripts/test_installed.sh)",
)
def test_the_installed_package_is_tested():
    """scripts/test_installed.sh: the tests run against the wheel installed in a clean virtualenv."""
    assert fastloss.__file__.startswith(os.environ["FASTLOSS_EXPECT_INSTALLED"])
    assert not fastloss.__file__.startswith(ROOT)


def test_every_op_has_cpu_and_a_fake_kernel():
    assert "fastloss::sigmoid_focal_loss" in fastloss_ops()
    for op in fastloss_ops():
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "CPU"), op
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "Meta"), op


def test_every_op_is_declared_by_exactly_one_record():
    """Each schema op belongs to one op record (fastloss._spec), whose `register` gave it its fake
    kernel (test above) and its autograd; each record's ops exist; each family with a parity plan has
    its test file (scripts/gpu_check.sh runs them by family)."""
    declared = [f"fastloss::{op}" for s in _spec.specs() for op in s.ops]
    assert sorted(declared) == fastloss_ops()
    for name in _spec.plans():
        assert os.path.exists(os.path.join(ROOT, "tests", f"test_{name}.py")), name


def test_every_op_has_a_cuda_kernel_when_cuda_was_built():
    info = fastloss._backend.info()
    if os.environ.get("FASTLOSS_CUDA") == "1":  # CI builds with FASTLOSS_CUDA=1
        assert info["cuda_compiled"], "FASTLOSS_CUDA=1 but the extension has no CUDA kernels"
    if not info["cuda_compiled"]:
        pytest.skip("built without CUDA")
    assert info["cuda_archs"]
    if torch.version.cuda is None:  # a CUDA build under a CPU-only torch: CPU kernels only, and it says so
        assert not info["cuda_loaded"] and info["cuda_unavailable_reason"].endswith("is CPU-only")
        assert not any(torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA") for op in fastloss_ops())
        return
    assert info["cuda_loaded"]
    missing = [op for op in fastloss_ops() if not torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA")]
    assert not missing


def run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=600
    )


def test_best_cpu_flavour_is_loaded():
    """On x86-64 the CPU kernels come in AVX-512 and AVX2 builds; the best one this CPU runs loads."""
    info = fastloss._backend.info()
    usable, _ = fastloss._backend._cpu_flavours(fastloss._backend._C)
    expected = fastloss._backend.CPU_CAPABILITY_REQUEST or usable[0]
    assert info["cpu_capability"] == expected


@pytest.mark.parametrize("flavour", ["avx2", "avx512"])
def test_every_cpu_flavour_gives_the_same_losses(flavour):
    """Each flavour in its own process (two CPU kernel libraries cannot both register)."""
    if flavour not in fastloss._backend._cpu_flavours(fastloss._backend._C)[0]:
        pytest.skip(f"this CPU does not run {flavour}")
    code = (
        "import torch, fastloss\n"
        "g = torch.Generator().manual_seed(0)\n"
        "x, b = torch.randn(300, 21, generator=g), torch.rand(300, 4, generator=g)\n"
        "y = torch.randint(0, 21, (300,), generator=g)\n"
        "m = torch.randn(2, 5, 40, generator=g); t = torch.randint(0, 5, (2, 40), generator=g)\n"
        "print('flavour:' + fastloss._backend.info()['cpu_capability'])\n"
        "print(fastloss.sigmoid_focal_loss(x, y, reduction='sum').item(),"
        " fastloss.softmax_focal_loss(x, y).item(), fastloss.giou_loss(torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1),"
        " torch.cat([b[:, 2:], b[:, 2:] + 1], 1), reduction='sum').item(), fastloss.dice_loss(m, t).item())"
    )
    out = run_python(code, FASTLOSS_CPU_CAPABILITY=flavour)
    assert out.returncode == 0, out.stderr
    got = out.stdout.split()
    assert got[0] == "flavour:" + flavour
    expected = run_python(code, FASTLOSS_BACKEND="reference")
    assert expected.returncode == 0, expected.stderr
    for a, b in zip(map(float, got[1:]), map(float, expected.stdout.split()[1:])):
        assert abs(a - b) <= 1e-5 * abs(b) + 1e-6


def test_unusable_cpu_flavour_is_an_import_error():
    out = run_python("import fastloss", FASTLOSS_CPU_CAPABILITY="sse9")
    assert out.returncode != 0
    assert "ImportError: FASTLOSS_CPU_CAPABILITY=sse9 is not a CPU kernel flavour this CPU runs" in out.stderr


def test_reference_backend_by_environment():
    out = run_python(
        "import torch, fastloss; x = torch.randn(4, 3, requires_grad=True); "
        "loss = fastloss.sigmoid_focal_loss(x, torch.tensor([0, 1, 2, 3]), reduction='sum'); "
        "print(fastloss._backend.info()['backend'], type(loss.grad_fn).__name__)",
        FASTLOSS_BACKEND="reference",
    )
    assert out.returncode == 0, out.stderr
    backend, grad_fn = out.stdout.split()
    assert backend == "reference" and "fastloss" not in grad_fn


def package_copy(tmp_path, keep_libraries):
    """A copy of the fastloss package (with or without its compiled libraries), importable alone."""
    source = os.path.dirname(fastloss.__file__)
    target = tmp_path / "fastloss"
    skipped = ("__pycache__",) + (() if keep_libraries else ("*.so", "_build_info.py"))
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*skipped))
    return target


def test_unbuilt_checkout_warns_once_and_uses_the_reference(tmp_path):
    package_copy(tmp_path, keep_libraries=False)
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import torch, fastloss\n"
        "    x = torch.randn(4, 3, dtype=torch.float64)\n"
        "    a = fastloss.sigmoid_focal_loss(x, torch.tensor([0, 1, 2, 3]), reduction='sum')\n"
        "    b = fastloss.reference.sigmoid_focal_loss(x, torch.tensor([0, 1, 2, 3]), reduction='sum')\n"
        "msgs = [str(m.message) for m in w if 'fastloss' in str(m.message)]\n"
        "print(fastloss.__file__.startswith(%r), len(msgs), bool(torch.equal(a, b)), msgs)" % str(tmp_path)
    )
    out = run_python(code, PYTHONPATH=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True 1 True") and "never built" in out.stdout


def test_unbuilt_checkout_with_backend_extension_is_an_error(tmp_path):
    package_copy(tmp_path, keep_libraries=False)
    out = run_python("import fastloss", PYTHONPATH=str(tmp_path), FASTLOSS_BACKEND="extension")
    assert out.returncode != 0 and "FASTLOSS_BACKEND=extension, but fastloss._C is not built" in out.stderr


def test_a_library_that_cannot_load_is_a_plain_import_error(tmp_path):
    """No silent fallback when the compiled library is there but broken."""
    target = package_copy(tmp_path, keep_libraries=True)
    for library in target.glob("_C.*so"):
        library.write_bytes(b"not a shared library")
    out = run_python("import fastloss", PYTHONPATH=str(tmp_path))
    assert out.returncode != 0
    assert "ImportError: fastloss 0.2.0" in out.stderr and "cannot be loaded" in out.stderr
    built = fastloss._backend.info()["built_torch"]
    assert f"built with torch {built}; this is torch {torch.__version__}" in out.stderr
    assert "pip install --no-build-isolation" in out.stderr


def test_a_torch_older_than_the_stable_abi_is_refused():
    """The binaries target torch 2.10's stable ABI: any later torch loads them (CI runs the suite
    under 2.13 with the 2.14 build), an older one is refused in one plain sentence."""
    with pytest.raises(
        ImportError,
        match=r"needs torch 2.10 or later .* this is torch 2.9.1\+cpu. Upgrade torch: "
        r"pip install 'torch>=2.10'",
    ):
        fastloss._backend.check_torch("2.9.1+cpu")
    for version in ("2.10.0", "2.13.0+cpu", "2.14.1+cu130", "2.15.0.dev20270101"):
        fastloss._backend.check_torch(version)


def test_cuda_kernels_of_another_cuda_major_are_refused():
    with pytest.raises(
        ImportError,
        match=r"built for CUDA 13 \(CUDA 13.0\); this torch .* uses CUDA 12.8. Install "
        r"the fastloss wheel for CUDA 12 \(local version \+cu120\)",
    ):
        fastloss._backend.check_cuda_major("13.0", "12.8")
    fastloss._backend.check_cuda_major("13.0", "13.2")  # the same major: the kernels load
    fastloss._backend.check_cuda_major("13.0", None)  # a CPU-only torch: the CPU kernels serve


def test_extension_modules_reference_no_torch_cxx_symbol():
    """Only the stable C shim: no c10::, at:: or torch:: symbol (the reason one build serves every
    torch since 2.10), and libtorch_cpu stays a dependency (the shim lives there)."""
    modules = [str(p) for p in pathlib.Path(fastloss.__file__).parent.glob("_*.so")]
    assert any("_cpu_" in m for m in modules)
    for module in modules:
        assert not check_wheel.torch_cxx_symbols(module), module
        if "_cpu_" in module or "_cuda" in module:
            needed = subprocess.run(["readelf", "-d", module], capture_output=True, text=True, check=True).stdout
            assert "libtorch_cpu.so" in needed, module


@pytest.mark.parametrize(
    "archs,capability,runs",
    [
        ("8.0;9.0+PTX", (8, 0), True),
        ("8.0;9.0+PTX", (8, 6), True),
        ("8.0;9.0+PTX", (9, 0), True),
        ("8.0;9.0+PTX", (10, 0), True),
        ("8.0;9.0+PTX", (7, 5), False),
        ("8.0;9.0", (10, 0), False),
        ("9.0", (8, 9), False),
        ("7.5 8.6", (8, 9), True),
    ],
)
def test_cuda_architecture_check(archs, capability, runs):
    assert fastloss._backend._arch_runs(archs, capability) == runs


def test_unknown_backend_is_an_error():
    out = run_python("import fastloss", FASTLOSS_BACKEND="fast")
    assert out.returncode != 0 and "FASTLOSS_BACKEND must be one of" in out.stderr


def run_cli(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "fastloss", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def test_cli_info_lines_are_name_value():
    out = run_cli("info")
    assert out.returncode == 0, out.stderr
    fields = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    assert fields["backend"] == "kernels"
    assert fields["fastloss"] == fastloss.__version__ and fields["torch"] == torch.__version__
    assert fields["CPU kernels"] == fastloss._backend.info()["cpu_capability"]
    assert "CUDA kernels" in fields and "CUDA device" in fields


def test_cli_check_passes_and_names_what_it_tested():
    out = run_cli("check", "--device", "cpu", "--case", "giou")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "checking CPU kernels" in out.stdout and "all good" in out.stdout and "FAIL" not in out.stdout


def test_cli_check_fails_when_the_kernels_did_not_load():
    """`check` of the reference against itself proves nothing: it must fail, and say so."""
    out = run_cli("check", "--case", "giou", FASTLOSS_BACKEND="reference")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "reference vs reference" in out.stdout and "did not load" in out.stdout and "all good" not in out.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (("bench", "--repeat", "0"), "--repeat must be >= 1"),
        (("bench", "--warmup", "-1"), "--warmup must be >= 0"),
        (("bench", "--device", "tpu"), "--device tpu"),
        (("bench", "--device", "cuda:7"), "--device cuda:7"),
        (("bench", "--case", "no such case"), "no benchmark case matches"),
    ],
)
def test_cli_bad_arguments_give_one_line_errors(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_cli_bench_writes_table_and_json(tmp_path):
    path = tmp_path / "bench.json"
    out = run_cli(
        "bench",
        "--device",
        "cpu",
        "--case",
        "labels",
        "--repeat",
        "1",
        "--warmup",
        "1",
        "--no-compile",
        "--json",
        str(path),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "| sigmoid_focal labels" in out.stdout
    rows = json.loads(path.read_text())["rows"]
    impls = {r["impl"] for r in rows}
    assert {"fastloss", "reference"} <= impls
    if peer("torchvision") is not None:
        assert "torchvision (+one_hot)" in impls
    fast = next(r for r in rows if r["impl"] == "fastloss")
    # fastloss's peak is its gradient (the 1.00 floor, and a little slack for the tiny outputs)
    assert 0.99 <= fast["peak_over_grad"] <= 1.1
    # the roofline: the bytes that must move, the rate achieved, and that as a share of copy's rate
    assert fast["moved_bytes"] == 100_000 * 80 * 4 * 2 + 100_000 * 8  # logits read, gradient written, labels read
    assert fast["gb_per_s"] > 0 and fast["copy_gb_per_s"] > 0
    assert abs(fast["of_copy"] - fast["gb_per_s"] / fast["copy_gb_per_s"]) < 1e-9
    assert "GB/s" in out.stdout
    assert "[1/1] sigmoid_focal labels" in out.stderr  # progress, on stderr


def test_bench_default_rows_are_each_competitors_strongest_form():
    """Without --full: torch.compile(reference) stands for the eager reference, and a peer's compiled row
    for its eager one, where the case has one; --no-compile keeps the eager rows."""
    from fastloss import bench

    def f(x):
        return x.sum()

    both = bench.Case(
        name="t", make_inputs=None, grad=(), fastloss=f, reference=f, peers={"lib": f, "lib torch.compile": f}
    )
    eager_only = bench.Case(name="u", make_inputs=None, grad=(), fastloss=f, reference=f, peers={"lib": f})
    assert list(bench.implementations(both, True, full=False)) == [
        "fastloss",
        "reference+torch.compile",
        "lib torch.compile",
    ]
    assert list(bench.implementations(eager_only, True, full=False)) == ["fastloss", "reference+torch.compile", "lib"]
    assert list(bench.implementations(both, False, full=False)) == ["fastloss", "reference", "lib", "lib torch.compile"]
    assert list(bench.implementations(both, True, full=True)) == [
        "fastloss",
        "reference",
        "reference+torch.compile",
        "lib",
        "lib torch.compile",
    ]


def test_bench_time_box():
    """A row's repeats stop once the time box has passed (one repeat when three boxes pass); without a
    box, every repeat runs."""
    from fastloss import bench

    calls = []

    def slow(x):
        calls.append(1)
        time.sleep(0.01)
        return x.sum()

    x = torch.ones(3)
    for seconds, want in ((0.0, 1 + 1), (1000.0, 1 + 10), (None, 1 + 10)):
        calls.clear()
        bench.time_ms(slow, {"x": x}, (), torch.device("cpu"), repeat=10, warmup=1, backward=False, seconds=seconds)
        assert len(calls) == want, seconds


def test_bench_times_the_forward_within_the_step():
    """time_ms's second number is the forward of the same steps: here 10 ms of a ≥ 30 ms step."""
    from fastloss import bench

    class SlowBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            time.sleep(0.01)
            return x.sum()

        @staticmethod
        def backward(ctx, grad):
            time.sleep(0.02)
            return grad.expand(3)

    x = torch.ones(3, requires_grad=True)
    total, forward = bench.time_ms(lambda x: SlowBackward.apply(x), {"x": x}, ("x",), torch.device("cpu"), 3, 0)
    assert 10 <= forward < 20 and total >= 30, (forward, total)


def test_cli_bench_prints_only_its_progress_and_table():
    """No profiler start/stop lines (its memory measurement), no torch.compile log lines."""
    out = run_cli("bench", "--device", "cpu", "--case", "cdiou", "--repeat", "1", "--warmup", "0")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("[1/1] cdiou_loss") and len(lines) == 3, out.stderr  # the case, then its two rows
    assert "USDT" not in out.stdout + out.stderr and "profiler" not in out.stdout + out.stderr


def test_cli_bench_plot(tmp_path):
    path = tmp_path / "bench.png"
    out = run_cli(
        "bench",
        "--device",
        "cpu",
        "--case",
        "cdiou",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--no-compile",
        "--plot",
        str(path),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def pretend_build(monkeypatch, cuda_compiled, cuda_archs):
    """Make fastloss._backend see a build with (or without) CUDA kernels for `cuda_archs`."""

    class Cuda:
        pass

    Cuda.cuda_archs = cuda_archs
    monkeypatch.setattr(fastloss._backend, "_CUDA", Cuda if cuda_compiled else None)
    monkeypatch.setattr(
        fastloss._backend, "cuda_unavailable_reason", "" if cuda_compiled else "this build has no CUDA kernels"
    )
    monkeypatch.setattr(fastloss._backend, "_checked_cuda_devices", set())


def test_cuda_tensors_without_cuda_kernels_raise(monkeypatch):
    """A build without CUDA kernels never runs the reference on CUDA tensors quietly."""
    pretend_build(monkeypatch, False, "")
    with pytest.raises(
        RuntimeError,
        match=r"no CUDA kernels loaded \(this build has no CUDA kernels\), and this "
        r"tensor is on cuda:0",
    ):
        fastloss._backend.use_kernels(torch.device("cuda", 0))


def test_a_gpu_outside_the_built_architectures_raises(monkeypatch):
    pretend_build(monkeypatch, True, "8.0;9.0")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "Tesla T4")
    with pytest.raises(
        RuntimeError,
        match=r"built for the architectures 8.0;9.0, none of which runs on this GPU "
        r"\(Tesla T4, compute capability 7.5\)",
    ):
        fastloss._backend.use_kernels(torch.device("cuda", 0))


def test_a_build_without_torch_stops_with_one_sentence():
    """What `pip install .` (an isolated build, with no torch in it) prints: one sentence saying to
    build with --no-build-isolation, no traceback. The base interpreter of this virtualenv has no
    torch, as pip's isolated build environment has none."""
    base_python = os.path.join(sys.base_prefix, "bin", "python3")
    probe = subprocess.run([base_python, "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0, "the base interpreter has torch: this test needs one without"
    out = subprocess.run([base_python, "setup.py", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "pip install --no-build-isolation ." in out.stderr


def test_default_cuda_architectures_are_torch_s_own():
    """The default TORCH_CUDA_ARCH_LIST (build_facts.mk's, which setup.py and CMake read) is torch's
    cu130 build's list (T4 to Blackwell), with PTX for the newest: what the release wheel carries
    (scripts/check_wheel.py checks the wheel's code)."""
    import build_facts

    archs = build_facts.read()["CUDA_ARCHS"]
    assert archs.endswith("+PTX") and archs.count("+PTX") == 1
    codes = {"sm_" + a.replace("+PTX", "").replace(".", "") for a in archs.split(";")}
    if torch.version.cuda is not None:  # (a CPU-only torch lists none)
        assert codes == set(torch._C._cuda_getArchFlags().split())
    assert codes == {"sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"}
