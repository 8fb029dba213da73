"""Grey-level quantisation of skeleton-map canvases (the original's 8-bit grey lookup)."""
from __future__ import annotations

import numpy as np

from fastposegait.data.skeleton_maps.grey import GREY_LUT, quantise

LOWERED = [33, 37, 41, 45, 49, 53, 57, 61, 66, 74, 82, 90, 98, 106, 114, 122,
           132, 148, 164, 180, 196, 212, 228, 244]


def test_lut_lowers_exactly_the_24_listed_levels():
    assert GREY_LUT.shape == (256,)
    for i in range(256):
        assert GREY_LUT[i] == (i - 1 if i in LOWERED else i), i
    assert int((GREY_LUT != np.arange(256)).sum()) == 24


def test_worked_example_values():
    # r_hip blob at canvas (64, 64): 0.657876 -> floor(168.42) = 168; hip-hip limb peak 0.88 -> 225
    got = quantise(np.array([0.657876, 0.88], dtype=np.float32))
    assert got.dtype == np.float64
    assert got.tolist() == [168.0, 225.0]
    # nose row of the joint channel (columns 60..68)
    row = np.array([0.877364, 0.897144, 0.918703, 0.940489, 0.947865, 0.940489, 0.918703,
                    0.906896, 0.886901], dtype=np.float32)
    assert quantise(row).tolist() == [224, 229, 235, 240, 242, 240, 235, 232, 227]


def test_ends_of_the_scale_and_lowered_levels():
    values = np.array([0.0, 1 / 256 - 1e-7, 1 / 256, 1.0, 1.5, 255.99 / 256, 33 / 256, 34 / 256 - 1e-6],
                      dtype=np.float64)
    assert quantise(values).tolist() == [0, 0, 1, 255, 255, 255, 32, 32]
    assert quantise(np.zeros((2, 3), np.float32)).shape == (2, 3)
