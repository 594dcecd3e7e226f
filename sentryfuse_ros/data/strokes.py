"""Pen strokes from a digit image: threshold, thin to a one-pixel skeleton, and walk the skeleton
into ordered strokes the way a writer would draw them (start at the top-most free end, keep going
as straight as possible, lift the pen only when the current line ends).

OpenCV's own thinning lives in opencv-contrib (not in the headless wheel), so the classic
Zhang-Suen thinning is written out below with numpy.
"""

from __future__ import annotations

import cv2
import numpy as np

# Skeletons are extracted at this multiple of the frame resolution, so two-pixel-wide
# strokes thin to a centre line instead of collapsing to nothing.
UPSCALE = 2
_MIN_STROKE_POINTS = 3  # shorter skeleton branches are thinning spurs, not pen strokes

# 8-neighbourhood offsets (row, col), clockwise from north: P2..P9 of Zhang & Suen (1984).
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def digit_strokes(frame: np.ndarray) -> list[np.ndarray]:
    """uint8 frame (bright ink) -> ordered strokes, each (K, 2) float [x, y] in frame pixels (y down)."""
    skeleton = thin(_ink_mask(frame))
    strokes = _trace(skeleton)
    return [stroke[:, ::-1].astype(np.float64) / UPSCALE for stroke in strokes]


def _ink_mask(frame: np.ndarray) -> np.ndarray:
    size = frame.shape[0] * UPSCALE
    large = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
    _, mask = cv2.threshold(large, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Closing fills pinholes that would otherwise thin into small loops.
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a 0/1 mask to a one-pixel-wide 0/1 skeleton."""
    image = np.pad(mask.astype(np.uint8), 1)
    height, width = image.shape
    while True:
        changed = False
        for first_pass in (True, False):
            p = [image[1 + dr : height - 1 + dr, 1 + dc : width - 1 + dc] for dr, dc in _NEIGHBOURS]
            count = sum(n.astype(np.int32) for n in p)
            transitions = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8))
            north, east, south, west = p[0], p[2], p[4], p[6]
            if first_pass:
                keep_shape = (north * east * south == 0) & (east * south * west == 0)
            else:
                keep_shape = (north * east * west == 0) & (north * south * west == 0)
            centre = image[1:-1, 1:-1]
            remove = (centre == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & keep_shape
            if remove.any():
                centre[remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1]


def _trace(skeleton: np.ndarray) -> list[np.ndarray]:
    pixels = {tuple(p) for p in np.argwhere(skeleton)}
    neighbours = {p: _skeleton_neighbours(p, pixels) for p in pixels}
    unvisited = {frozenset((p, q)) for p in pixels for q in neighbours[p]}
    strokes = []
    position = None
    while unvisited:
        start = _next_start(unvisited, position)
        stroke = [start]
        while True:
            options = [q for q in neighbours[stroke[-1]] if frozenset((stroke[-1], q)) in unvisited]
            if not options:
                break
            step = _straightest(stroke, options)
            unvisited.discard(frozenset((stroke[-1], step)))
            stroke.append(step)
        position = stroke[-1]
        if len(stroke) >= _MIN_STROKE_POINTS:
            strokes.append(np.asarray(stroke))
    if not strokes and pixels:  # a dot or a tiny mark: one short stroke through its pixels
        strokes.append(np.asarray(sorted(pixels)))
    return strokes


def _skeleton_neighbours(p, pixels) -> list[tuple[int, int]]:
    r, c = p
    result = []
    for dr, dc in _NEIGHBOURS:
        q = (r + dr, c + dc)
        if q not in pixels:
            continue
        # A diagonal step is redundant when a right-angle path through a shared 4-neighbour
        # exists; keeping it would create tiny triangles that the walk would go round.
        if dr and dc and ((r + dr, c) in pixels or (r, c + dc) in pixels):
            continue
        result.append(q)
    return result


def _next_start(unvisited, position):
    """Where the pen goes down next: a free end (one unvisited edge), nearest to the pen, else any."""
    open_degree = {}
    for edge in unvisited:
        for p in edge:
            open_degree[p] = open_degree.get(p, 0) + 1
    ends = [p for p, degree in open_degree.items() if degree == 1] or list(open_degree)
    if position is None:
        return min(ends, key=lambda p: (p[0], p[1]))  # writers start at the top
    return min(ends, key=lambda p: ((p[0] - position[0]) ** 2 + (p[1] - position[1]) ** 2, p))


def _straightest(stroke, options):
    if len(stroke) < 2:
        # First step: writers mostly start strokes going down or to the right.
        return max(options, key=lambda q: (q[0] - stroke[-1][0]) + 0.5 * (q[1] - stroke[-1][1]))
    back = stroke[max(0, len(stroke) - 4)]
    heading = np.subtract(stroke[-1], back, dtype=float)
    heading /= np.linalg.norm(heading) or 1.0

    def alignment(q):
        step = np.subtract(q, stroke[-1], dtype=float)
        return float(step @ heading) / np.linalg.norm(step), q

    return max(options, key=alignment)
