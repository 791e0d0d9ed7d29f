"""A folder of greyscale PNG images cut from the real images that installed packages ship, standing for a
user's own training images (``inverse train-prior --data FOLDER``).

    python scripts/make_user_images.py --out /tmp/user-images --num 500 --size 64 --seed 0

Each image is a random ``size x size`` crop, at a random scale (the crop side is ``size`` times a factor drawn
log-uniformly from ``[1, 4]``, capped by the source, then resized with antialiasing), of one of the TRAIN
sources below, taken in turn. The HELD_OUT sources (the standard test images: camera, moon, coins, ...) are
never used, so reconstructions of them measure a prior on images unlike its training data. Colour sources are
reduced to luma (ITU-R BT.601). Sources: scikit-image's bundled ``skimage.data`` files and pydicom's bundled
test files (the uncompressed greyscale ones).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

__all__ = ["TRAIN", "HELD_OUT", "train_sources", "main"]

#: scikit-image sources kept out of training (the lead evaluates reconstructions on them)
HELD_OUT = ("camera", "moon", "coins", "astronaut", "brick", "page", "text", "chelsea", "coffee", "retina", "cell",
            "rocket")

#: files of scikit-image's data folder (skimage.data) the training images are cut from
TRAIN = ("grass.png", "gravel.png", "hubble_deep_field.jpg", "horse.png", "ihc.png", "microaneurysms.png",
         "motorcycle_left.png", "motorcycle_right.png", "logo.png", "clock_motion.png", "color.png", "lfw_subset.npy")

#: pydicom test files used too (uncompressed greyscale, readable without extra codecs, larger than 64 x 64)
DICOM = ("CT_small.dcm",)


def _luma(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114])
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else a * 0


def train_sources() -> dict[str, list[np.ndarray]]:
    """Name -> list of greyscale images in [0, 1] (lfw_subset gives many faces; a DICOM file one image)."""
    import skimage.data
    import skimage.io

    folder = Path(skimage.data.__file__).parent
    out = {}
    for name in TRAIN:
        assert name.split(".")[0] not in HELD_OUT
        if name.endswith(".npy"):
            out[name] = [_luma(f) for f in np.load(folder / name)]
        else:
            out[name] = [_luma(skimage.io.imread(folder / name))]
    try:
        import pydicom
        from pydicom.data import get_testdata_file

        for f in DICOM:
            a = pydicom.dcmread(get_testdata_file(f)).pixel_array
            a = a[0] if a.ndim == 3 else a
            if min(a.shape) >= 32:
                out[f"dicom:{f}"] = [_luma(a)]
    except Exception as e:  # pydicom is optional here: say so and go on with scikit-image alone
        print(f"pydicom test files skipped ({type(e).__name__}: {e})")
    return out


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    import torch

    h, w = img.shape
    side = int(min(h, w, round(size * float(np.exp(rng.uniform(0, np.log(4)))))))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    patch = torch.from_numpy(np.ascontiguousarray(img[top:top + side, left:left + side]))[None, None].float()
    patch = torch.nn.functional.interpolate(patch, size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False)
    return patch[0, 0].clamp(0, 1).numpy()


def main(argv=None) -> int:
    """Write NUM PNG files and sources.json (which source and crop made each file)."""
    from PIL import Image

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--num", type=int, default=500)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=False)
    rng = np.random.default_rng(args.seed)
    sources = train_sources()
    names = sorted(sources)
    record = []
    for i in range(args.num):
        name = names[i % len(names)]
        imgs = sources[name]
        img = imgs[int(rng.integers(len(imgs)))]
        patch = _crop(img, args.size, rng)
        Image.fromarray(np.round(255 * patch).astype(np.uint8), mode="L").save(out / f"img{i:04d}.png")
        record.append({"file": f"img{i:04d}.png", "source": name})
    (out / "sources.json").write_text(json.dumps({"held_out": list(HELD_OUT), "images": record}, indent=1))
    print(f"{args.num} images from {len(names)} sources in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
