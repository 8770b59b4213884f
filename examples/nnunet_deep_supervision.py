"""nnU-Net's training loss — Dice + cross entropy with deep supervision — on fastloss's fused kernel.

nnU-Net v2's trainer builds
    DeepSupervisionWrapper(DC_and_CE_loss({"batch_dice": ..., "smooth": 1e-5, "do_bg": False,
                                           "ddp": ...}, {}, weight_ce=1, weight_dice=1,
                                          ignore_label=..., dice_class=MemoryEfficientSoftDiceLoss),
                           weights)
with weights 1/2^i, the lowest resolution 0, normalised. fastloss.nnunet has the same two classes
(same arguments, same numbers); fastloss.deep_supervision_loss is the same loss in one call from the
full-resolution labels. A small 2-D network with outputs at three resolutions trains for a few steps
on synthetic images here.

Run: python examples/nnunet_deep_supervision.py  (CPU, a few seconds)
"""

import torch
import torch.nn.functional as F

import fastloss
import fastloss.nnunet

CLASSES = 3


class DeepSupervisedNet(torch.nn.Module):
    """An encoder–decoder whose decoder emits logits at full, 1/2 and 1/4 resolution."""

    def __init__(self, classes=CLASSES, width=8):
        super().__init__()
        self.down1 = torch.nn.Conv2d(1, width, 3, padding=1)
        self.down2 = torch.nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.down3 = torch.nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1)
        self.up2 = torch.nn.Conv2d(4 * width + 2 * width, 2 * width, 3, padding=1)
        self.up1 = torch.nn.Conv2d(2 * width + width, width, 3, padding=1)
        self.heads = torch.nn.ModuleList([torch.nn.Conv2d(c, classes, 1) for c in (width, 2 * width, 4 * width)])

    def forward(self, x):
        f1 = F.relu(self.down1(x))
        f2 = F.relu(self.down2(f1))
        f3 = F.relu(self.down3(f2))
        u2 = F.relu(self.up2(torch.cat([F.interpolate(f3, size=f2.shape[2:]), f2], 1)))
        u1 = F.relu(self.up1(torch.cat([F.interpolate(u2, size=f1.shape[2:]), f1], 1)))
        return [head(f) for head, f in zip(self.heads, (u1, u2, f3))]  # full resolution first


def synthetic_batch(generator, batch=4, size=48):
    """Images with a bright square (label 1) and a bright disc (label 2) on background 0, made for the
    whole batch at once; nnU-Net's targets: float labels (b, 1, ...)."""
    grid = torch.arange(size).view(1, size, 1), torch.arange(size).view(1, 1, size)
    corner = torch.randint(2, size // 2, (2, batch, 1, 1), generator=generator)
    centre = torch.randint(size // 2, size - 8, (2, batch, 1, 1), generator=generator)
    square = ((grid[0] - corner[0]).clamp(min=-1) // 12 == 0) & ((grid[1] - corner[1]).clamp(min=-1) // 12 == 0)
    disc = (grid[0] - centre[0]) ** 2 + (grid[1] - centre[1]) ** 2 < 36
    labels = torch.where(disc, 2.0, torch.where(square, 1.0, 0.0)).unsqueeze(1)
    return torch.rand(labels.shape, generator=generator) * 0.2 + (labels > 0).float() * 0.8, labels


def nnunet_criterion(module=fastloss.nnunet, dice_class=None, levels=3):
    """nnU-Net's trainer loss from `module` (fastloss.nnunet, or nnU-Net's own classes)."""
    loss = module.DC_and_CE_loss(
        {"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False},
        {},
        weight_ce=1,
        weight_dice=1,
        ignore_label=None,
        dice_class=dice_class,
    )
    return module.DeepSupervisionWrapper(loss, fastloss.nnunet.nnunet_weights(levels))


def targets_per_level(labels, outputs):
    """nnU-Net's DownsampleSegForDSTransform: the labels at each output's size, nearest-exact."""
    return [F.interpolate(labels, size=o.shape[2:], mode="nearest-exact") for o in outputs]


def train(steps=8):
    """nnU-Net's optimiser (SGD, Nesterov momentum 0.99), a few steps; the loss at each."""
    torch.manual_seed(0)
    model = DeepSupervisedNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.99, nesterov=True)
    images, labels = synthetic_batch(torch.Generator().manual_seed(1))
    criterion = nnunet_criterion()

    def closure():
        optimizer.zero_grad()
        outputs = model(images)
        loss = criterion(outputs, targets_per_level(labels, outputs))
        loss.backward()
        return loss

    return [optimizer.step(closure).item() for _ in range(steps)]


def main():
    torch.manual_seed(0)
    model = DeepSupervisedNet()
    images, labels = synthetic_batch(torch.Generator().manual_seed(1))
    outputs = model(images)
    wrapped = nnunet_criterion()(outputs, targets_per_level(labels, outputs))
    # the same loss in one call of the core API, the targets downsampled inside
    loss = fastloss.nnunet.DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False}, {})
    core = fastloss.deep_supervision_loss(outputs, labels[:, 0].long(), loss=lambda x, t: loss(x, t.unsqueeze(1)))
    print(f"step 0: fastloss.nnunet {wrapped.item():.6f}, fastloss.deep_supervision_loss {core.item():.6f}")
    history = train()
    print("training (fastloss.nnunet):", [round(x, 4) for x in history])
    return model, images, labels, wrapped.item(), core.item(), history


if __name__ == "__main__":
    main()
