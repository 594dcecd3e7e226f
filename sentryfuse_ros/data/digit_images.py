"""The handwritten digit images, as 28x28 uint8 frames with bright ink on black (MNIST framing:
the digit inside the central 20x20 box)."""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np

from sentryfuse_ros.data.sources import SourceError, extracted_root
from sentryfuse_ros.data.spec import INPUT_SPEC

FRAME_SIZE = INPUT_SPEC.image_size
_DIGIT_BOX = 20  # MNIST puts each digit in a 20x20 box centred in the 28x28 frame


def load_mnist_digits(sources_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's digits.png: 5000 MNIST digits -> (frames (5000, 28, 28) uint8, labels (5000,))."""
    path = extracted_root(sources_dir, "opencv-doc") / "usr/share/doc/opencv-doc/examples/data/digits.png"
    sheet = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if sheet is None or sheet.shape != (1000, 2000):
        raise SourceError(f"{path} is missing or not the 1000x2000 digit sheet; delete the sources folder and rerun")
    # A 50 x 100 grid of 20x20 cells (whole MNIST frames scaled down); rows 5k..5k+4 hold digit k.
    cells = sheet.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3).reshape(5000, 20, 20)
    frames = np.stack([cv2.resize(cell, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_LINEAR) for cell in cells])
    return frames, np.repeat(np.arange(10), 500)


def load_sklearn_digits(sources_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's load_digits data (UCI, 8x8, ink counts 0..16) -> 28x28 frames, labels."""
    path = extracted_root(sources_dir, "python3-sklearn") / "usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    if table.shape != (1797, 65):
        raise SourceError(f"{path} does not hold the 1797x65 digits table; delete the sources folder and rerun")
    pixels = (table[:, :64] * (255.0 / 16.0)).round().astype(np.uint8).reshape(-1, 8, 8)
    margin = (FRAME_SIZE - _DIGIT_BOX) // 2
    frames = np.stack(
        [
            cv2.copyMakeBorder(
                cv2.resize(image, (_DIGIT_BOX, _DIGIT_BOX), interpolation=cv2.INTER_LINEAR),
                margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0,
            )
            for image in pixels
        ]
    )
    return frames, table[:, 64].astype(np.int64)
