"""The distributed option of the batch overlap losses (process_group) and mmdet's reduce_mean, in real
multi-process gloo runs (2 and 4 processes on this machine): every rank's loss equals the loss of the
concatenated batch, and after DDP's gradient averaging the parameters' gradients equal a single
process's on the concatenated batch; a group of one (a subgroup of each run) equals the local loss.
(No run with world size 1: its gloo process aborted at exit under torch 2.13.)"""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import fastloss
import fastloss.distributed

N, C_IN, C, SIZE = 8, 2, 3, 6


def data():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(N, C_IN, SIZE, SIZE, generator=g, dtype=torch.float64)
    labels = torch.randint(0, C, (N, SIZE, SIZE), generator=g)
    return features, labels


def model():
    torch.manual_seed(1)
    return torch.nn.Conv2d(C_IN, C, 1).double()


LOSSES = {
    "dice": lambda x, t, group: fastloss.dice_loss(x, t, batch=True, process_group=group),
    "dice none": lambda x, t, group: fastloss.dice_loss(
        x, t, batch=True, reduction="none", jaccard=True, process_group=group
    ).sum(),
    "tversky": lambda x, t, group: fastloss.tversky_loss(
        x,
        t,
        batch=True,
        alpha=0.3,
        beta=0.7,
        gamma=0.75,
        activation="sigmoid",
        include_background=False,
        process_group=group,
    ),
    # the class weights 1/(Σt)² come from the global sums too
    "generalized dice": lambda x, t, group: fastloss.generalized_dice_loss(x, t, batch=True, process_group=group),
    # the cross entropy's sums (Σ loss, Σ w_y) are all-reduced with the Dice sums
    "dice ce": lambda x, t, group: fastloss.dice_focal_loss(
        x, t, batch=True, gamma=1.5, ce_weight=[1.0, 2.0, 0.5], dice="generalized_dice", process_group=group
    ),
    "dice ce sum": lambda x, t, group: fastloss.dice_ce_loss(
        x, t, batch=True, reduction="sum", label_smoothing=0.1, process_group=group
    ),
    "dice sigmoid focal": lambda x, t, group: fastloss.dice_focal_loss(
        x, t, batch=True, focal="sigmoid", alpha=0.25, activation="sigmoid", process_group=group
    ),
}


def _worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    features, labels = data()
    per_rank = N // world
    mine = slice(rank * per_rank, (rank + 1) * per_rank)
    results = {}
    for name, loss_fn in LOSSES.items():
        net = torch.nn.parallel.DistributedDataParallel(model())
        loss = loss_fn(net(features[mine]), labels[mine], dist.group.WORLD)
        loss.backward()
        results[name] = (loss.detach(), [p.grad.clone() for p in net.parameters()])
    results["reduce_mean"] = fastloss.distributed.reduce_mean(torch.tensor(float(rank + 1)))
    # a group of one (every rank creates every group, in the same order, as new_group requires)
    alone = [dist.new_group([r]) for r in range(world)][rank]
    x = model()(features[mine])
    results["group of one"] = (
        fastloss.dice_loss(x, labels[mine], batch=True, process_group=alone).detach(),
        fastloss.dice_loss(x, labels[mine], batch=True).detach(),
    )
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    # Every rank has written its results; then leave without tearing the process group down: its
    # threads raced at exit now and then (std::terminate, SIGABRT) in CI. An exception above still
    # reaches mp.spawn, which stops the other ranks.
    dist.barrier()
    os._exit(0)


@pytest.mark.parametrize("world", [2, 4])
def test_ddp_equals_one_process_on_the_whole_batch(world, tmp_path):
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world, join=True)
    features, labels = data()
    for name, loss_fn in LOSSES.items():
        net = model()
        loss = {
            "dice": lambda: fastloss.dice_loss(net(features), labels, batch=True),
            "dice none": lambda: fastloss.dice_loss(
                net(features), labels, batch=True, reduction="none", jaccard=True
            ).sum(),
            "tversky": lambda: loss_fn(net(features), labels, None),
            "generalized dice": lambda: loss_fn(net(features), labels, None),
            "dice ce": lambda: loss_fn(net(features), labels, None),
            "dice ce sum": lambda: loss_fn(net(features), labels, None),
            "dice sigmoid focal": lambda: loss_fn(net(features), labels, None),
        }[name]()
        loss.backward()
        want_grads = [p.grad for p in net.parameters()]
        for rank in range(world):
            got_loss, got_grads = torch.load(tmp_path / f"rank{rank}.pt")[name]
            torch.testing.assert_close(got_loss, loss.detach(), rtol=1e-12, atol=1e-14)
            for got, want in zip(got_grads, want_grads):
                torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-13)
    for rank in range(world):
        results = torch.load(tmp_path / f"rank{rank}.pt")
        assert results["reduce_mean"].item() == (world + 1) / 2
        torch.testing.assert_close(*results["group of one"], rtol=1e-13, atol=0)


def test_without_torch_distributed():
    features, labels = data()
    x = model()(features)
    with pytest.raises(RuntimeError, match="init_process_group"):
        fastloss.dice_loss(x, labels, batch=True, process_group=object())
    with pytest.raises(ValueError, match="batch=True"):
        fastloss.tversky_loss(x, labels, process_group=object())
    t = torch.tensor(3.0)
    assert fastloss.distributed.reduce_mean(t) is t  # mmdet's: the tensor itself when not distributed
