"""The augmentation a vision model trains with: a random crop after zero padding, and a random
horizontal flip (the CIFAR recipe of He et al. 2016 and torchvision's ``RandomCrop(padding=p)``
+ ``RandomHorizontalFlip()``), on kiloml's image rows."""

import torch
import torch.nn.functional as F


def random_crop_flip(x: torch.Tensor, image_shape: tuple[int, int, int], pad: int, flip: bool,
                     gen: torch.Generator) -> torch.Tensor:
    """``x`` ``[B, H, W·C]`` (rows of interleaved pixels) with every image padded by ``pad``
    black (zero) pixels on each side and cropped back to ``H × W`` at a random offset, then
    mirrored left-right with probability 1/2 if ``flip``; draws from ``gen`` (offsets first,
    then flips) so that an epoch's augmentation is reproducible."""
    channels, height, width = image_shape
    batch = x.shape[0]
    images = x.reshape(batch, height, width, channels)
    if pad > 0:
        padded = F.pad(images, (0, 0, pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (batch,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (batch,), generator=gen)
        rows = (dy[:, None] + torch.arange(height))[:, :, None]
        cols = (dx[:, None] + torch.arange(width))[:, None, :]
        images = padded[torch.arange(batch)[:, None, None], rows, cols]
    if flip:
        mirrored = torch.rand(batch, generator=gen) < 0.5
        images = torch.where(mirrored[:, None, None, None], images.flip(2), images)
    return images.reshape(batch, height, width * channels)
