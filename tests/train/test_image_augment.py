"""Random crop after zero padding and horizontal flips on image rows."""

import torch

from kiloml.train.image_augment import random_crop_flip


def _rows(images: torch.Tensor) -> torch.Tensor:
    n, c, h, w = images.shape
    return images.permute(0, 2, 3, 1).reshape(n, h, w * c)


def _images(rows: torch.Tensor, c: int) -> torch.Tensor:
    n, h, wc = rows.shape
    return rows.reshape(n, h, wc // c, c).permute(0, 3, 1, 2)


def test_no_padding_and_no_flip_is_the_identity():
    x = torch.rand(3, 4, 15)
    torch.testing.assert_close(random_crop_flip(x, (3, 4, 5), 0, False, torch.Generator()), x)


def test_flips_mirror_left_right_about_half_the_images():
    images = torch.rand(400, 2, 3, 4)
    out = _images(random_crop_flip(_rows(images), (2, 3, 4), 0, True,
                                   torch.Generator().manual_seed(0)), 2)
    flipped = (out == images.flip(3)).flatten(1).all(dim=1)
    kept = (out == images).flatten(1).all(dim=1)
    assert bool((flipped | kept).all()) and 160 < int(flipped.sum()) < 240


def test_crops_shift_the_image_and_fill_with_zeros():
    images = torch.arange(1, 1 + 2 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5)
    images = images.repeat(200, 1, 1, 1)
    out = _images(random_crop_flip(_rows(images), (2, 5, 5), 2, False,
                                   torch.Generator().manual_seed(0)), 2)
    shifts = set()
    for original, cropped in zip(images, out, strict=True):
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                padded = torch.nn.functional.pad(original, (2, 2, 2, 2))
                if torch.equal(padded[:, 2 + dy:7 + dy, 2 + dx:7 + dx], cropped):
                    shifts.add((dy, dx))
                    break
            else:
                continue
            break
        else:
            raise AssertionError("a crop that is no shift of the padded image")
    assert len(shifts) == 25  # every offset of the 5x5 range occurs


def test_the_same_generator_state_gives_the_same_augmentation():
    x = torch.rand(8, 6, 18)
    a = random_crop_flip(x, (3, 6, 6), 1, True, torch.Generator().manual_seed(5))
    b = random_crop_flip(x, (3, 6, 6), 1, True, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, x)
