"""The CUDA emulation's own guarantees (tests/cuda_emulation; `make cuda-emulate` runs these):

- every op family gives bitwise the same results under three thread schedules (blocks and threads
  in other orders; the shared-memory poison differs between even and odd seeds), and in two
  processes that ran other kernel variants first (the occupancy of one variant must not decide
  another's grid);
- the emulation catches what it is built to catch: each seeded defect below, applied to a copy of
  csrc/cuda and built, makes the run fail with the report that names it.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

import fastloss
import test_cuda_parity as parity
from cuda_emulation import build, emulation

pytestmark = pytest.mark.emulation
TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


@pytest.mark.parametrize("family", list(parity.PLANS))
def test_bitwise_identical_under_three_schedules(family):
    case = parity.small(family, dtype=torch.float32, reduction="mean", **SCHEDULE_SIZES.get(family, {}))
    results = []
    for seed in (0, 1, 2):
        with emulation.schedule(seed), emulation.emulated_cuda():
            results.append(parity.run(*parity.make_call(family, case, "cpu")))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


# sizes past one wave of the emulated device (2 SMs, up to 8 blocks each)
SCHEDULE_SIZES = {
    "sigmoid_focal": dict(rows=4099, classes=5),
    "softmax_focal": dict(positions=9001),
    "box_iou": dict(pairs=20001),
    "balanced_l1": dict(elements=70001),
    "overlap": dict(n=2, spatial=(64, 64)),
    "box_matrix": dict(n=65, m=129),
    "quality_focal": dict(rows=4099),
    "distribution_focal": dict(rows=9001),
    "compound": dict(spatial=(64, 64)),
    "task_aligned": dict(gts=40, size=160),
    "matching_cost": dict(queries=300, targets=40),
}

# Two processes, two histories: the gradient-keeping forward of balanced_l1 after its plain
# forward, or alone. Its sum's grid comes from the variant's occupancy; a cache keyed by the kernel's
# signature (which both variants share) handed the first variant's to the second.
HISTORY = """
import sys
import torch
sys.path.insert(0, {tests!r})
from cuda_emulation import emulation
import fastloss
g = torch.Generator().manual_seed(0)
with emulation.emulated_cuda():
    for dtype in (torch.float32, torch.float64):
        x, t = torch.randn(300001, generator=g, dtype=dtype) * 3, torch.randn(300001, generator=g, dtype=dtype)
        if {first!r}:
            with torch.no_grad():
                fastloss.balanced_l1_loss(x, t, reduction="sum")
        loss = fastloss.balanced_l1_loss(x.requires_grad_(), t, reduction="sum")
        print("loss", loss.item().hex())
"""


def test_bitwise_identical_across_processes_with_other_histories():
    out = []
    for first in (True, False):
        code = HISTORY.format(tests=TESTS, first=first)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        out.append([line for line in result.stdout.splitlines() if line.startswith("loss")])
    assert out[0] == out[1] and out[0]


# ------------------------------------------------------------------------------ seeded defects

# (defect, file under csrc/, text, replacement, build variant, what the failed run says). Each is
# applied alone to a copy of the sources; balanced_l1's kernels (grid-stride loops, the block
# reduction, the launch) run it.
DEFECTS = [
    (
        "a removed __syncthreads in the block reduction",
        "cuda/reduce.cuh",
        "  if (lane_id() == 0) warp_sums[warp_id()] = v;\n  __syncthreads();\n",
        "  if (lane_id() == 0) warp_sums[warp_id()] = v;\n",
        "tsan",
        "ThreadSanitizer: data race",
    ),
    (
        "a shuffle with a wrong mask",
        "cuda/reduce.cuh",
        "v += __shfl_down_sync(kAllLanes, v, o);\n  __syncthreads();",
        "v += __shfl_down_sync(kAllLanes >> 1, v, o);\n  __syncthreads();",
        "plain",
        "leaves out",
    ),
    (
        "an off-by-one bound in the grid-stride loop",
        "cuda/launch.cuh",
        "  for (; i < n; i += stride) {",
        "  for (; i <= n; i += stride) {",
        "asan64",
        "AddressSanitizer: heap-buffer-overflow",
    ),
    (
        "a block of 2048 threads",
        "cuda/launch.cuh",
        "launch_kernel(kernel, blocks, dim3(kThreads),",
        "launch_kernel(kernel, blocks, dim3(2048),",
        "plain",
        "is outside CUDA's limits (1 to 1024 threads)",
    ),
    (
        "a shared-memory read before its write",
        "cuda/reduce.cuh",
        "  if (lane_id() == 0) warp_sums[warp_id()] = v;",
        "  if (lane_id() == 0 && warp_id() > 0) warp_sums[warp_id()] = v;",
        "plain",
        "differs from the CPU kernels",
    ),
    (
        "a launch off torch's current stream",
        "cuda/launch.cuh",
        "dim3(kThreads), current_stream(), args...);",
        "dim3(kThreads), nullptr, args...);",
        "plain",
        "not on torch's current stream",
    ),
    (
        "a host synchronisation inside an op",
        "cuda/launch.cuh",
        "  check(cudaGetLastError());\n}",
        "  check(cudaGetLastError());\n  check(cudaDeviceSynchronize());\n}",
        "plain",
        "a host synchronisation",
    ),
    (
        "a grid of 65536 rows (its check removed)",
        "cuda/launch.cuh",
        "  check_grid(blocks);\n",
        "",
        "plain",
        "outside CUDA's limits (x < 2^31, y and z <= 65535)",
    ),
    (
        "an output left as torch.empty made it",
        "cuda/reduce.cuh",
        "    loss[blockIdx.x] = static_cast<scalar_t>(mean ? sum / static_cast<acc_t>(n > 0 ? n : 1) : sum);\n",
        "",
        "plain",
        "differs from the CPU kernels",
    ),
]

# What runs the defective build: balanced_l1 forward and backward, compared with the CPU kernels;
# per_layer sigmoid focal over 65536 layers where the defect is the grid's.
DEFECT_RUN = """
import sys
import torch
sys.path.insert(0, {tests!r})
from cuda_emulation import emulation
import fastloss
g = torch.Generator().manual_seed(0)
x, t = torch.randn(20001, generator=g, dtype=torch.float64), torch.randn(20001, generator=g, dtype=torch.float64)
want = fastloss.balanced_l1_loss(x.clone().requires_grad_(), t)
with emulation.emulated_cuda():
    if {layers!r}:
        fastloss.sigmoid_focal_loss(torch.randn(65536, 1, 1), torch.zeros(65536, 1, dtype=torch.long), reduction="sum",
                                    per_layer=True)
    xe = x.clone().requires_grad_()
    got = fastloss.balanced_l1_loss(xe, t)
    got.backward()
xc = x.clone().requires_grad_()
fastloss.balanced_l1_loss(xc, t).backward()
if not (torch.allclose(got, want, rtol=1e-9, atol=0) and torch.allclose(xe.grad, xc.grad, rtol=1e-9, atol=0)):
    sys.exit("the emulated CUDA result differs from the CPU kernels: " + repr((got.item(), want.item())))
print("clean run")
"""


@pytest.fixture(scope="module")
def defect_tree(tmp_path_factory):
    """A copy of csrc/ to patch, one build folder per variant (ninja rebuilds only what a defect touches)."""
    root = tmp_path_factory.mktemp("defects")
    shutil.copytree(os.path.join(ROOT, "csrc"), root / "csrc")
    return root


CLEAN = {}  # variant → the run of the unpatched build passed


def run_defective(tree, variant, layers):
    families = ["balanced_l1", "sigmoid_focal"] if layers else ["balanced_l1"]
    library = build.build(
        variant, source=str(tree), out=str(tree / f"build-{variant}-{len(families)}"), only=families, quiet=True
    )
    env = {**os.environ, **build.environment(variant, library)}
    code = DEFECT_RUN.format(tests=TESTS, layers=layers)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.parametrize("defect", DEFECTS, ids=[d[0] for d in DEFECTS])
def test_a_seeded_defect_fails_the_run(defect_tree, defect):
    name, path, text, replacement, variant, report = defect
    source = defect_tree / "csrc" / path
    original = source.read_text()
    assert original.count(text) == 1, f"the defect's text is not in csrc/{path} once: update DEFECTS"
    layers = "65536" in name
    if variant not in CLEAN:  # the same build without the defect runs clean
        clean = run_defective(defect_tree, variant, layers=False)
        assert clean.returncode == 0 and "clean run" in clean.stdout, clean.stderr[-3000:]
        CLEAN[variant] = True
    source.write_text(original.replace(text, replacement))
    try:
        result = run_defective(defect_tree, variant, layers)
    finally:
        source.write_text(original)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and report in output, output[-4000:]
    if variant == "tsan":  # the report names the emulated thread: its block and thread index
        assert "block (" in output and "thread " in output


def test_the_emulated_device_and_stream():
    """Launches follow torch's current stream as the emulation sets it; the emulated warp is the
    build's (32, or 64 in the wavefront build)."""
    x, t = torch.randn(1000), torch.randn(1000)
    with emulation.emulated_cuda():
        want = fastloss.balanced_l1_loss(x, t)
        with emulation.current_stream(0x1234):
            got = fastloss.balanced_l1_loss(x, t)
    assert torch.equal(got, want)
    assert emulation.warp_size() in (32, 64)


def test_a_device_side_assert_is_an_error_naming_the_label():
    code = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {TESTS!r})
        from cuda_emulation import emulation
        import fastloss
        with emulation.emulated_cuda():
            fastloss.softmax_focal_loss(torch.randn(8, 5), torch.tensor([0, 1, 7, 2, 3, 4, 0, 1]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "label 7 outside [0," in result.stdout + result.stderr and "device-side assert" in result.stderr


def test_the_emulation_has_every_kernel_of_the_cuda_build():
    """The emulation's kernel instances (whose launches the coverage counts) are the CUDA build's:
    nvcc's cubin for the build's newest architecture holds the same __global__ instances, name for
    name (anonymous namespaces aside). Needs the CUDA build (`FASTLOSS_CUDA=1 make build`) and
    cuobjdump."""
    import re

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import check_wheel
    import fastloss

    cuda = os.path.join(ROOT, "python", "fastloss", "_cuda.abi3.so")
    tool = check_wheel.cuobjdump()
    if not os.path.exists(cuda) or tool is None:
        pytest.skip("no CUDA build here (FASTLOSS_CUDA=1 make build), or no cuobjdump")
    archs = fastloss._backend.info()["cuda_archs"]
    newest = max(check_wheel.expected_cuda_code(archs)[0], key=lambda code: int(code[3:]))
    elf = subprocess.run([tool, "-elf", "-arch", newest, cuda], capture_output=True, text=True).stdout
    assert elf, f"cuobjdump found no {newest} code in {cuda}"
    mangled = set(re.findall(r"\.text\.(_Z\w+)", elf))

    def gcc_anonymous(m):  # nvcc names an anonymous namespace after its file; GCC's is _GLOBAL__N_1
        at = m.find("_GLOBAL__N__")
        for k in (2, 3, 1):  # (the identifier's length prefix: the digits that cut it exactly)
            digits = m[at - k : at]
            ident = m[at : at + int(digits)] if at > 0 and digits.isdigit() else ""
            if re.fullmatch(r"_GLOBAL__N__[0-9a-f]+_\d+_\w+_cu_[0-9a-f]+_\d+", ident) and m[at + len(ident)].isdigit():
                return m[: at - k] + "12_GLOBAL__N_1" + m[at + len(ident) :]
        return m

    mangled = {gcc_anonymous(m) for m in mangled}
    demangled = subprocess.run(
        ["c++filt"], input="\n".join(sorted(mangled)), capture_output=True, text=True
    ).stdout.split("\n")
    cuda_kernels = {d.replace("void ", "", 1).strip() for d in demangled if d.strip()}
    emulated = {name.replace("void ", "", 1) for name in emulation.launches()}

    def normal(name):  # (c10's long long / long spelling differs between the two compilers' demanglers)
        return re.sub(r"\blong long\b", "long", name)

    assert {normal(n) for n in cuda_kernels} == {normal(n) for n in emulated}


def test_the_box_matrix_backward_spreads_over_the_gpu():
    """A GT × anchor matrix's gradient with respect to the GTs: a thread per GT walking every anchor
    made one block on a 132-SM GPU; a thread per (GT, chunk of anchors) fills it."""
    import fastloss

    gts = torch.rand(1, 40, 4) * 100
    gts[..., 2:] += gts[..., :2]
    anchors = torch.rand(1, 3000, 4) * 100
    anchors[..., 2:] += anchors[..., :2]

    def backward():
        with emulation.emulated_cuda():
            boxes = gts.clone().requires_grad_()
            fastloss.box_iou(boxes[0], anchors[0]).sum().backward()

    backward()  # first on the small default device, as earlier tests of a run do
    emulation.set_multiprocessors(132)
    try:
        backward()
    finally:
        emulation.set_multiprocessors(2)
    widest = max(
        blocks
        for name, (count, blocks) in emulation.report().items()
        if "box_matrix" in name and "backward" in name and count
    )
    assert widest >= 132


def test_too_many_layers_is_a_plain_error():
    """grid.y counts the layers of a per-layer loss: past CUDA's 65535 a ValueError says so."""
    import fastloss

    x, t = torch.randn(65536, 1, 1), torch.zeros(65536, 1, dtype=torch.long)
    assert fastloss.sigmoid_focal_loss(x, t, reduction="sum", per_layer=True).shape == (65536,)  # (the CPU's)
    with emulation.emulated_cuda(), pytest.raises(ValueError, match="outside CUDA's limits"):
        fastloss.sigmoid_focal_loss(x, t, reduction="sum", per_layer=True)


def test_assignments_equal_at_a_near_tie():
    """The CPU kernels and the CUDA sources compute every metric with the same bits (the same pow and
    atan, math/elementary.h; no contracted a·b + c on either side), so even two anchors whose metrics
    are one last place apart rank alike: the assignment is exactly the CPU's. (Before the shared math,
    the two sources disagreed on both anchors of this near-tie.)"""
    import fastloss
    from fastloss._inputs import assigner_inputs as make
    from fastloss.reference.task_aligned import near_ties, pair_metrics

    args = [t.clone() for t in make(batch=1, gts=3, valid=3, classes=4, size=320, seed=0)]
    labels, mask = args[3].view(1, -1).long(), args[5].view(1, -1).bool()
    candidate, _, metric = pair_metrics(*args[:3], labels, args[4], mask, 0.5, 6.0, 16.0, torch.float64)
    gt = int((candidate[0].sum(-1) > 10).nonzero()[0])
    ranked = metric[0, gt].argsort(descending=True)
    kth, rival = int(ranked[9]), int(ranked[10])
    args[1][0, rival] = args[1][0, kth]  # the same box, and a score a last place above: a near-tie
    args[0][0, rival] = args[0][0, kth] * (1 + 1e-7)
    assert near_ties(*args, topk=10).any()  # (the case is a near-tie)
    want = fastloss.task_aligned_assign(*args, num_classes=4)
    with emulation.emulated_cuda():
        got = fastloss.task_aligned_assign(*args, num_classes=4)
    for g, w in zip(got, want):
        assert torch.equal(g, w)
