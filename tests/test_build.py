"""The build and the package around the kernels: registration per backend, fallbacks, the CLI."""
import json
import os
import subprocess
import sys

import pytest
import torch

import fastloss
from helpers import peer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fastloss_ops():
    return sorted({s.name for s in torch._C._jit_get_all_schemas() if s.name.startswith("fastloss::")})


def test_kernels_are_loaded():
    assert fastloss._backend.info()["backend"] == "kernels", fastloss._backend.unavailable_reason


def test_every_op_has_cpu_and_a_fake_kernel():
    assert "fastloss::sigmoid_focal_loss" in fastloss_ops()
    for op in fastloss_ops():
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "CPU"), op
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "Meta"), op


def test_every_op_has_a_cuda_kernel_when_cuda_was_built():
    info = fastloss._backend.info()
    if os.environ.get("FASTLOSS_CUDA") == "1":  # CI builds with FASTLOSS_CUDA=1
        assert info["cuda_compiled"], "FASTLOSS_CUDA=1 but the extension has no CUDA kernels"
    if not info["cuda_compiled"]:
        pytest.skip("built without CUDA")
    assert info["cuda_archs"]
    missing = [op for op in fastloss_ops() if not torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA")]
    assert not missing


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=600)


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
    code = ("import torch, fastloss\n"
            "g = torch.Generator().manual_seed(0)\n"
            "x, b = torch.randn(300, 21, generator=g), torch.rand(300, 4, generator=g)\n"
            "y = torch.randint(0, 21, (300,), generator=g)\n"
            "m = torch.randn(2, 5, 40, generator=g); t = torch.randint(0, 5, (2, 40), generator=g)\n"
            "print('flavour:' + fastloss._backend.info()['cpu_capability'])\n"
            "print(fastloss.sigmoid_focal_loss(x, y, reduction='sum').item(),"
            " fastloss.softmax_focal_loss(x, y).item(), fastloss.giou_loss(torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1),"
            " torch.cat([b[:, 2:], b[:, 2:] + 1], 1), reduction='sum').item(), fastloss.dice_loss(m, t).item())")
    out = run_python(code, FASTLOSS_CPU_CAPABILITY=flavour)
    assert out.returncode == 0, out.stderr
    got = out.stdout.split()
    assert got[0] == "flavour:" + flavour
    expected = run_python(code, FASTLOSS_BACKEND="reference")
    assert expected.returncode == 0, expected.stderr
    for a, b in zip(map(float, got[1:]), map(float, expected.stdout.split()[1:])):
        assert abs(a - b) <= 1e-5 * abs(b) + 1e-6


def test_unusable_cpu_flavour_falls_back_to_the_reference():
    out = run_python("import warnings; warnings.simplefilter('always')\n"
                     "import fastloss; print(fastloss._backend.info()['backend'])", FASTLOSS_CPU_CAPABILITY="sse9")
    assert out.returncode == 0 and out.stdout.split() == ["reference"]
    assert "FASTLOSS_CPU_CAPABILITY=sse9 is not one this CPU runs" in out.stderr


def test_reference_backend_by_environment():
    out = run_python("import torch, fastloss; x = torch.randn(4, 3, requires_grad=True); "
                     "loss = fastloss.sigmoid_focal_loss(x, torch.tensor([0, 1, 2, 3]), reduction='sum'); "
                     "print(fastloss._backend.info()['backend'], type(loss.grad_fn).__name__)",
                     FASTLOSS_BACKEND="reference")
    assert out.returncode == 0, out.stderr
    backend, grad_fn = out.stdout.split()
    assert backend == "reference" and "fastloss" not in grad_fn


def test_missing_extension_warns_once_and_falls_back():
    code = ("import sys, warnings; sys.modules['fastloss._C'] = None\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import torch, fastloss\n"
            "    x = torch.randn(4, 3, dtype=torch.float64)\n"
            "    a = fastloss.sigmoid_focal_loss(x, torch.tensor([0, 1, 2, 3]), reduction='sum')\n"
            "    b = fastloss.reference.sigmoid_focal_loss(x, torch.tensor([0, 1, 2, 3]), reduction='sum')\n"
            "msgs = [str(m.message) for m in w if 'fastloss' in str(m.message)]\n"
            "print(len(msgs), bool(torch.equal(a, b)), msgs)")
    out = run_python(code, FASTLOSS_BACKEND="auto")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1 True") and "pure-torch reference" in out.stdout


def test_unknown_backend_is_an_error():
    out = run_python("import fastloss", FASTLOSS_BACKEND="fast")
    assert out.returncode != 0 and "FASTLOSS_BACKEND must be one of" in out.stderr


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "fastloss", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})


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


@pytest.mark.parametrize("args,message", [
    (("bench", "--repeat", "0"), "--repeat must be >= 1"),
    (("bench", "--warmup", "-1"), "--warmup must be >= 0"),
    (("bench", "--device", "tpu"), "--device tpu"),
    (("bench", "--device", "cuda:7"), "--device cuda:7"),
    (("bench", "--case", "no such case"), "no benchmark case matches"),
])
def test_cli_bad_arguments_give_one_line_errors(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_cli_bench_writes_table_and_json(tmp_path):
    path = tmp_path / "bench.json"
    out = subprocess.run([sys.executable, "-m", "fastloss", "bench", "--device", "cpu", "--case", "labels",
                          "--repeat", "1", "--warmup", "1", "--no-compile", "--json", str(path)],
                         capture_output=True, text=True, timeout=600)
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
