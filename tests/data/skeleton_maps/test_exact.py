"""Exact skeleton-map renderer against the worked example (measured with the original generator),
its edge cases, and independent references for each step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from worked_example import worked_example_poses

from fastposegait.data.skeleton_maps.exact import (crop_and_resize, render_frame_canvases, render_sequence,
                                                   resize_area, to_canvas)
from fastposegait.data.skeleton_maps.grey import quantise
from fastposegait.data.skeleton_maps.impute import fill_missing_joints
from fastposegait.errors import ConfigError, PoseFileError

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "inter_area_reference.npz"

CANVAS_FRAME0 = [
    (64.0000, 22.5366), (66.0732, 20.4634), (61.9268, 20.4634), (68.9756, 21.7073), (59.0244, 21.7073),
    (74.3659, 37.0488), (53.6341, 37.0488), (77.2683, 53.6341), (50.7317, 53.6341), (78.5122, 68.1463),
    (49.4878, 68.1463), (70.2195, 64.0000), (57.7805, 64.0000), (71.4634, 84.7317), (56.5366, 84.7317),
    (72.2927, 105.4634), (55.7073, 105.4634),
]

FRAME_STATS = [  # (sum, non-zero pixels, max) per frame for ch0 (limbs), ch1 (joints)
    ((208651, 2134, 236), (179203, 2115, 241)),
    ((211068, 2197, 236), (180535, 2172, 241)),
    ((203263, 2108, 236), (173528, 2087, 241)),
    ((203360, 2122, 236), (174049, 2099, 241)),
]

LIMB_EVERY_4TH = """
0 0 0 0 0 0 2 8 9 7 1 0 0 0 0 0
0 0 0 0 0 3 20 60 75 55 18 2 0 0 0 0
0 0 0 0 0 10 67 164 205 152 57 8 0 0 0 0
0 0 0 0 1 18 83 191 231 179 72 14 1 0 0 0
0 0 0 0 5 50 161 231 184 227 145 41 3 0 0 0
0 0 0 0 8 65 187 217 115 221 171 53 6 0 0 0
0 0 0 0 13 85 203 224 136 224 190 70 9 0 0 0
0 0 0 0 16 96 202 226 157 222 190 79 12 0 0 0
0 0 0 0 20 106 206 223 224 214 195 89 15 0 0 0
0 0 0 0 18 95 178 218 164 216 170 80 13 0 0 0
0 0 0 0 6 33 128 219 156 219 113 27 4 0 0 0
0 0 0 0 2 29 130 211 144 212 115 23 1 0 0 0
0 0 0 0 2 32 135 210 139 214 120 25 1 0 0 0
0 0 0 0 2 34 140 210 134 214 126 27 1 0 0 0
0 0 0 0 1 23 95 143 90 145 85 18 0 0 0 0
0 0 0 0 0 5 23 35 22 36 21 4 0 0 0 0
"""

JOINT_EVERY_4TH = """
0 0 0 0 0 0 2 8 9 7 1 0 0 0 0 0
0 0 0 0 0 3 20 60 75 55 18 2 0 0 0 0
0 0 0 0 0 10 67 164 205 152 57 8 0 0 0 0
0 0 0 0 1 17 78 177 234 173 67 13 1 0 0 0
0 0 0 0 5 50 160 184 111 189 145 41 3 0 0 0
0 0 0 0 6 54 171 198 98 203 155 43 4 0 0 0
0 0 0 0 13 78 171 137 49 147 162 65 9 0 0 0
0 0 0 0 15 90 197 160 112 169 186 75 10 0 0 0
0 0 0 0 19 99 186 223 174 214 177 84 14 0 0 0
0 0 0 0 18 95 178 129 99 132 170 80 13 0 0 0
0 0 0 0 6 33 114 190 131 190 101 27 4 0 0 0
0 0 0 0 1 25 117 195 135 196 104 20 0 0 0 0
0 0 0 0 1 18 74 112 71 113 67 14 0 0 0 0
0 0 0 0 2 34 140 208 131 212 124 27 1 0 0 0
0 0 0 0 1 23 95 143 90 145 85 18 0 0 0 0
0 0 0 0 0 5 23 35 22 36 21 4 0 0 0 0
"""

LIMB_ROW_32 = [0] * 13 + [2, 6, 11, 20, 33, 52, 77, 106, 138, 168, 192, 206, 208, 197, 207, 223, 225, 224, 224,
                          224, 224, 224, 223, 214, 194, 198, 203, 195, 176, 150, 119, 89, 62, 41, 25, 15, 8, 4,
                          1] + [0] * 12
JOINT_ROW_32 = [0] * 13 + [2, 5, 10, 19, 32, 50, 73, 99, 128, 155, 175, 186, 186, 184, 207, 223, 225, 213, 189,
                           174, 200, 218, 223, 214, 193, 178, 183, 177, 161, 138, 111, 84, 59, 39, 24, 14, 7, 3,
                           1] + [0] * 12
JOINT_COLUMN_32 = [9, 18, 31, 50, 75, 106, 140, 176, 205, 225, 235, 241, 234, 213, 183, 147, 111, 102, 107, 105,
                   98, 85, 69, 52, 49, 56, 63, 86, 112, 137, 158, 171, 174, 166, 148, 125, 99, 76, 89, 112, 131,
                   145, 151, 148, 135, 117, 94, 71, 71, 90, 109, 123, 131, 132, 123, 108, 90, 69, 51, 34, 22, 13,
                   7, 3]


def _table(text: str) -> np.ndarray:
    return np.array([[int(v) for v in line.split()] for line in text.strip().splitlines()])


@pytest.fixture(scope="module")
def maps() -> np.ndarray:
    return render_sequence(worked_example_poses())


def test_canvas_coordinates():
    canvas = to_canvas(fill_missing_joints(worked_example_poses()))
    assert np.allclose(canvas[0, :, :2], CANVAS_FRAME0, atol=5e-5)
    assert canvas[2, 10, 0] == pytest.approx(48.3131, abs=5e-5)
    assert canvas[2, 10, 1] == pytest.approx(68.1463, abs=5e-5) and canvas[2, 10, 2] == 0.0
    for t in range(4):  # hips land on (64, 64) and the joints span exactly 85 px
        assert np.allclose((canvas[t, 11, :2] + canvas[t, 12, :2]) / 2, 64.0)
        assert canvas[t, :, 1].max() - canvas[t, :, 1].min() == pytest.approx(85.0)
    assert np.array_equal(canvas[..., 2], worked_example_poses()[..., 2])


def test_canvas_pixels_and_grey_levels():
    canvas = to_canvas(fill_missing_joints(worked_example_poses()))
    limbs, joints = render_frame_canvases(canvas[0])
    assert limbs.dtype == np.float32
    assert joints[64, 64] == pytest.approx(0.657876, abs=1e-6)
    assert limbs[64, 64] == pytest.approx(0.88, abs=1e-7)
    grey = quantise(np.stack([limbs, joints]))
    assert grey[1, 64, 64] == 168 and grey[0, 64, 64] == 225
    assert np.allclose(joints[22, 60:69], [0.877364, 0.897144, 0.918703, 0.940489, 0.947865, 0.940489,
                                           0.918703, 0.906896, 0.886901], atol=1e-6)
    assert grey[1, 22, 60:69].tolist() == [224, 229, 235, 240, 242, 240, 235, 232, 227]
    # the 2x2 block behind output pixel (32, 32)
    assert grey[1, 64:66, 64:66].tolist() == [[168, 182], [167, 179]]
    assert grey[0, 64:66, 64:66].tolist() == [[225, 225], [223, 223]]
    for channel in grey:  # support: every row, columns 25..102
        assert np.flatnonzero(channel.any(axis=1)).tolist() == list(range(128))
        cols = np.flatnonzero(channel.any(axis=0))
        assert (cols[0], cols[-1]) == (25, 102)


def test_worked_example_maps(maps):
    assert maps.shape == (4, 2, 64, 64) and maps.dtype == np.uint8
    assert maps.min() == 0 and maps.max() == 241
    assert maps[0, 1, 32, 32] == 174 and maps[0, 0, 32, 32] == 224
    for t, per_channel in enumerate(FRAME_STATS):
        for c, (total, nonzero, peak) in enumerate(per_channel):
            m = maps[t, c].astype(np.int64)
            assert (m.sum(), int((m > 0).sum()), m.max()) == (total, nonzero, peak), (t, c)
    assert not maps[..., :10].any() and not maps[..., 54:].any()
    assert np.array_equal(maps[0, 0, ::4, ::4], _table(LIMB_EVERY_4TH))
    assert np.array_equal(maps[0, 1, ::4, ::4], _table(JOINT_EVERY_4TH))
    assert maps[0, 0, 32].tolist() == LIMB_ROW_32
    assert maps[0, 1, 32].tolist() == JOINT_ROW_32
    assert maps[0, 1, :, 32].tolist() == JOINT_COLUMN_32
    # after the evaluation transform (columns 10..53, / 255): ch1 sum and peak
    cut = maps[0, :, :, 10:54].astype(np.float64) / 255
    assert cut[1].sum() == pytest.approx(702.7569, abs=1e-4)
    assert np.unravel_index(cut[1].argmax(), cut[1].shape) == (11, 22)


def test_joint_missing_everywhere_shrinks_the_body():
    poses = worked_example_poses()
    poses[:, 3, :2] = 0.0   # l_ear never detected: no imputation at all, (0, 0) enters the scaling
    canvas = to_canvas(fill_missing_joints(poses))
    assert canvas[0, 0, :2] == pytest.approx([64.0, 35.6667], abs=1e-4)
    assert canvas[0, 3, :2] == pytest.approx([-21.0, 7.3333], abs=1e-4)
    maps = render_sequence(poses)
    assert maps.shape == (4, 2, 64, 64) and maps.max() == 240


def test_frame_with_every_joint_missing_stays_and_is_blank():
    poses = worked_example_poses()
    poses[1] = 0.0
    maps = render_sequence(poses)
    assert maps.shape == (4, 2, 64, 64)
    assert not maps[1].any()
    assert maps[0].any() and maps[2].any()


def test_low_confidence_head_zooms_the_crop():
    poses = worked_example_poses()
    poses[:, 0:5, 2] = 0.0
    canvas = to_canvas(fill_missing_joints(poses))
    grey = quantise(render_frame_canvases(canvas[0]))
    for channel in grey:
        rows = np.flatnonzero(channel.any(axis=1))
        assert (rows[0], rows[-1]) == (13, 127)       # h = 115, crop columns 64 -+ 57 = 7..121
    maps = render_sequence(poses)
    assert np.unravel_index(maps[0, 0].argmax(), (64, 64))[0] in (13, 14)
    assert np.unravel_index(maps[0, 1].argmax(), (64, 64))[0] in (13, 14)
    manual = resize_area(grey[1, 13:128, 7:122] / 255)
    assert np.array_equal(maps[0, 1], (manual * 255).astype(np.uint8))


def test_eighteen_joints_are_converted_to_coco17():
    coco = worked_example_poses()
    from fastposegait.data.skeleton import OPENPOSE_TO_COCO
    openpose = np.zeros((4, 18, 3))
    openpose[:, OPENPOSE_TO_COCO] = coco
    openpose[:, 1] = (coco[:, 5] + coco[:, 6]) / 2     # a neck, dropped by the conversion
    assert np.array_equal(render_sequence(openpose), render_sequence(coco))


def test_integer_and_float32_input():
    poses = worked_example_poses()
    assert render_sequence(poses.astype(np.float32)).shape == (4, 2, 64, 64)
    ints = np.round(poses * [1, 1, 100]).astype(np.int64)
    assert render_sequence(ints).max() == 255  # confidence 95 (> 1) saturates the grey scale


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros((4, 17)), PoseFileError, r"\[T, V, 3\]"),
    (np.zeros((0, 17, 3)), PoseFileError, r"T >= 1"),
    (np.zeros((4, 25, 3)), PoseFileError, "25 joints"),
    (np.full((2, 17, 3), np.nan), PoseFileError, "NaN"),
    (np.array([[["a", "b", "c"]] * 17]), PoseFileError, "numeric"),
])
def test_bad_sequences(bad, error, match):
    with pytest.raises(error, match=match):
        render_sequence(bad)


def test_bad_options():
    with pytest.raises(ConfigError, match="joint_format"):
        render_sequence(worked_example_poses(), joint_format="openpose")
    with pytest.raises(ConfigError, match="sigma"):
        render_sequence(worked_example_poses(), sigma=0.0)


def test_all_joints_at_one_height_draws_nothing():
    poses = worked_example_poses()[:1].copy()
    poses[:, :, 1] = 150.0
    assert not render_sequence(poses).any()


# ---------------------------------------------------------------------------------- step D references

def _brute_force_canvases(frame: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """Pixel-by-pixel step D, written independently of the renderer (float64, then float32)."""
    from fastposegait.data.skeleton_maps.exact import LIMBS
    out = np.zeros((2, 128, 128))

    def inside(px, py, lo_x, hi_x, lo_y, hi_y):
        return max(int(lo_x - 3 * sigma), 0) <= px < min(int(hi_x + 3 * sigma) + 1, 128) and \
            max(int(lo_y - 3 * sigma), 0) <= py < min(int(hi_y + 3 * sigma) + 1, 128)

    for py in range(128):
        for px in range(128):
            for j in range(17):
                (x, y, c) = frame[j]
                if c >= 1e-3 and inside(px, py, x, x, y, y):
                    out[1, py, px] = max(out[1, py, px], c * np.exp(-((px - x) ** 2 + (py - y) ** 2) / (2 * sigma ** 2)))
            for a, b in LIMBS:
                (ax, ay, ca), (bx, by, cb) = frame[a], frame[b]
                peak = min(ca, cb)
                if peak < 1e-3:
                    continue
                seg2 = (bx - ax) ** 2 + (by - ay) ** 2
                if seg2 < 1:
                    if inside(px, py, ax, ax, ay, ay):
                        d2 = (px - ax) ** 2 + (py - ay) ** 2
                        out[0, py, px] = max(out[0, py, px], ca * np.exp(-d2 / (2 * sigma ** 2)))
                    continue
                if not inside(px, py, min(ax, bx), max(ax, bx), min(ay, by), max(ay, by)):
                    continue
                t = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / seg2
                t = min(max(t, 0.0), 1.0)
                d2 = (px - ax - t * (bx - ax)) ** 2 + (py - ay - t * (by - ay)) ** 2
                out[0, py, px] = max(out[0, py, px], peak * np.exp(-d2 / (2 * sigma ** 2)))
    return out


def test_step_d_matches_a_pixel_loop():
    rng = np.random.default_rng(3)
    frame = to_canvas(worked_example_poses())[3]
    frame[:, :2] += rng.normal(0, 3, (17, 2))
    frame[4, :2] = frame[2, :2] + 0.3           # a limb shorter than one pixel (drawn as its start joint)
    frame[7, 2] = 0.0005                         # below the drawing threshold
    frame[16, :2] = (150.0, 140.0)               # partly off the canvas
    ours = render_frame_canvases(frame)
    reference = _brute_force_canvases(frame)
    assert np.allclose(ours, reference, rtol=0, atol=2e-7)


# ---------------------------------------------------------------------------------- step F references

def _exact_area_mean(img: np.ndarray, size: int = 64) -> np.ndarray:
    """Area resize with exact rational overlaps (float64), as an independent reference."""
    def weights(n: int) -> np.ndarray:
        w = np.zeros((size, n))
        for d in range(size):
            lo, hi = d * n / size, (d + 1) * n / size
            for s in range(n):
                w[d, s] = max(0.0, min(hi, s + 1) - max(lo, s)) * size / n
        return w
    return weights(img.shape[0]) @ img @ weights(img.shape[1]).T


def test_exact_2x_downscale_is_the_2x2_mean_in_float64_order():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (128, 128)) / 255
    out = resize_area(img)
    expected = (((img[0::2, 0::2] + img[0::2, 1::2]) + img[1::2, 0::2]) + img[1::2, 1::2]) * 0.25
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("shape", [(115, 115), (126, 127), (97, 97), (64, 65)])
def test_general_downscale_is_the_area_mean(shape):
    rng = np.random.default_rng(shape[0])
    img = rng.integers(0, 256, shape) / 255
    assert np.allclose(resize_area(img), _exact_area_mean(img), rtol=0, atol=1e-6)


def test_resize_matches_opencv_bit_for_bit():
    """Reference outputs of cv2.resize(img, (64, 64), INTER_AREA) (OpenCV 5.0.0) stored in tests/fixtures."""
    stored = np.load(FIXTURE)
    for i, (h, w) in enumerate([(115, 115), (126, 127), (40, 41)]):
        rng = np.random.default_rng(100 + i)
        grey = rng.integers(0, 256, (h, w)).astype(np.float64)
        grey[rng.random((h, w)) < 0.3] = 0
        assert np.array_equal(resize_area(grey / 255), stored[f"ref_{h}x{w}"]), (h, w)


def test_upscale_keeps_constants_and_blank_crop():
    assert np.allclose(resize_area(np.full((40, 41), 0.5)), 0.5, rtol=0, atol=1e-7)
    assert not crop_and_resize(np.zeros((128, 128))).any()
    lone = np.zeros((128, 128))
    lone[60:70, 60:70] = 100                   # h = 10: crop rows 60..69, columns 59..69, upscaled
    out = crop_and_resize(lone)
    # output columns 0..4 read source column 0 alone (weight 0 on column 1): it is blank
    assert not out[:, :5].any() and out[:, 5].all()
    assert set(np.unique(out[:, 8:])) <= {99, 100}  # float32 bilinear weights may lose the last bit
