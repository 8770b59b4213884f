"""A MONAI U-Net trained for a few steps on synthetic 2-D segmentations with fastloss.monai's losses.

fastloss.monai.DiceLoss / FocalLoss / TverskyLoss / GeneralizedDiceLoss take MONAI's constructor
arguments and give MONAI's numbers, so switching is an import:

    from fastloss.monai import DiceLoss, FocalLoss   # instead of: from monai.losses import ...

Run: python examples/monai_unet.py  (CPU, a few seconds)
"""

import torch
from monai.networks.nets import UNet

import fastloss.monai


def make_model(seed=0, classes=3):
    torch.manual_seed(seed)
    return UNet(
        spatial_dims=2, in_channels=1, out_channels=classes, channels=(8, 16, 32), strides=(2, 2), num_res_units=1
    )


def synthetic_batch(generator, batch=4, size=64, classes=3):
    """Images with a bright square and a bright disc; labels 0 background, 1 square, 2 disc."""
    images = torch.rand(batch, 1, size, size, generator=generator) * 0.2
    labels = torch.zeros(batch, 1, size, size, dtype=torch.long)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for i in range(batch):
        x0, y0 = torch.randint(4, size // 2, (2,), generator=generator).tolist()
        labels[i, 0, y0 : y0 + 16, x0 : x0 + 16] = 1
        cx, cy = torch.randint(size // 2, size - 10, (2,), generator=generator).tolist()
        labels[i, 0][(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 2
    images = images + (labels > 0).float() * 0.8
    return images, labels


def losses(loss_module):
    """DiceLoss + FocalLoss as a MONAI user configures them."""
    dice = loss_module.DiceLoss(to_onehot_y=True, softmax=True, include_background=False)
    focal = loss_module.FocalLoss(to_onehot_y=True, use_softmax=True, gamma=2.0)
    return lambda logits, labels: dice(logits, labels) + focal(logits, labels)


def loss_at_step0(loss_module):
    model = make_model()
    images, labels = synthetic_batch(torch.Generator().manual_seed(1))
    return losses(loss_module)(model(images), labels).item()


def train(steps=5):
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    images, labels = synthetic_batch(torch.Generator().manual_seed(1))
    criterion = losses(fastloss.monai)
    history = []
    for _ in range(steps):
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return history


def main():
    import monai.losses

    ours, theirs = loss_at_step0(fastloss.monai), loss_at_step0(monai.losses)
    print(f"step 0: fastloss.monai {ours:.6f}, monai.losses {theirs:.6f}")
    history = train()
    print("training (fastloss.monai):", [round(x, 4) for x in history])
    return ours, theirs, history


if __name__ == "__main__":
    main()
