"""Cut a face out of the original photo: rotated so the eyes are level, or with room
around it for dlib's own chip extractors."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from facedb.pipeline.types import Box, Detection


def aligned_chip(bgr: NDArray[np.uint8], detection: Detection) -> NDArray[np.uint8]:
    """Return the eye-aligned face crop (BGR uint8) cut from the full-resolution photo.

    deepface's own routine does the geometry: it takes a margin around the box, rotates
    that sub-image about the eyes and projects the box into it. Without both eyes the
    plain crop is returned.
    """
    from deepface.models.Detector import FacialAreaRegion
    from deepface.modules.detection import extract_face

    box = detection.box
    both_eyes = detection.left_eye is not None and detection.right_eye is not None
    eyes = {"left_eye": detection.left_eye, "right_eye": detection.right_eye}
    region = FacialAreaRegion(**box.as_dict(), **eyes, confidence=detection.confidence)
    face = extract_face(
        facial_area=region,
        img=bgr,
        align=both_eyes,
        expand_percentage=0,
        width_border=0,
        height_border=0,
        # "opencv" stops deepface from building its Haar-cascade eye finder when eyes are
        # missing: opencv 5 wheels no longer ship the cascades.
        detector_backend="opencv",
    )
    chip = np.ascontiguousarray(face.img)
    if chip.size == 0:  # a degenerate rotation; fall back to the plain crop
        chip = np.ascontiguousarray(bgr[box.y : box.y + box.h, box.x : box.x + box.w])
    return chip


def context_crop(bgr: NDArray[np.uint8], box: Box) -> tuple[NDArray[np.uint8], Box]:
    """Return an RGB crop around the face (a face-size margin each side) and the box in it.

    dlib's chip extractors (age and gender, its descriptor) need context around the box,
    not the whole (possibly 12 MP) photo.
    """
    height, width = bgr.shape[:2]
    x0, y0 = max(0, box.x - box.w), max(0, box.y - box.h)
    x1, y1 = min(width, box.x + 2 * box.w), min(height, box.y + 2 * box.h)
    region = np.ascontiguousarray(bgr[y0:y1, x0:x1, ::-1])
    return region, Box(box.x - x0, box.y - y0, box.w, box.h)
