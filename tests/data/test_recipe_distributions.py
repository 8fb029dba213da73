"""Is the training input distribution the original's? Every random part of the training data
path that a shipped config uses (frame sampling, each augmentation, the batch samplers, the
keyed generators of the loader) is compared with an independent reference written here from
the definitions in docs/customize_data_transforms.md and docs/configs.md: exact enumeration of
the distribution where it is small, the closed-form moments otherwise. Deterministic parts
(feature builders, RescaleCenter, Affine, the worked ``fixed_ordered`` example with a skip) are
compared exactly with hand-computed values or a per-element loop.

Statistics and tolerances. Every statistic is an average over N independent draws made with a
fixed seed, so the tests are deterministic; the bound is ``Z = 5`` standard errors of that
average under the reference distribution (a correct implementation fails one such check with
probability about 6e-7, so a whole file of a few thousand cells stays far below 1e-3):

* frequency of an outcome with probability p: ``5 * sqrt(p (1 - p) / N)`` (p = 0 must never
  occur);
* mean of a variable with standard deviation sigma: ``5 * sigma / sqrt(N)``;
* variance: ``5 * sqrt(Var(X^2) / N)`` with the reference's fourth moment (normal:
  ``Var = 2 sigma^4``; uniform on [-r, r]: ``4 r^4 / 45``);
* correlation of two independent variables: ``5 / sqrt(N)``.
"""
from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from types import SimpleNamespace
from typing import Dict, Hashable, Iterable, List, Mapping, Sequence

import numpy as np
import pytest

from fastposegait.data.collate import BatchCollator
from fastposegait.data.frames import FrameSampler
from fastposegait.data.loader import BatchBuilder
from fastposegait.data.sampler import CommonSampler, InferenceSampler, TripletSampler, batch_rng
from fastposegait.data.transforms import build_transform, build_transforms
from fastposegait.errors import ConfigError

Z = 5.0  # standard errors allowed for every statistic below

# Left/right permutations and bone parents written out from the joint-format tables (not
# imported from fastposegait.data.skeleton, so a wrong table there is caught here).
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
OPENPOSE_FLIP = [0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16]
COCO_PARENT = [5, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14]
OPENPOSE_PARENT = [1, 1, 1, 2, 3, 1, 5, 6, 2, 8, 9, 5, 11, 12, 0, 0, 14, 15]


# ----------------------------------------------------------------------------- helpers


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_frequencies(observed: Mapping[Hashable, int], expected: Mapping[Hashable, float], n: int,
                       what: str) -> None:
    """Every outcome's frequency within Z standard errors of its exact probability; an outcome
    the reference gives probability 0 must not occur at all."""
    assert abs(sum(expected.values()) - 1) < 1e-9, f"{what}: reference probabilities do not sum to 1"
    unexpected = set(observed) - set(expected)
    assert not unexpected, f"{what}: outcomes outside the reference's support: {sorted(unexpected)[:5]}"
    for outcome, p in expected.items():
        freq = observed.get(outcome, 0) / n
        bound = Z * math.sqrt(p * (1 - p) / n)
        assert abs(freq - p) <= bound, f"{what}: P({outcome!r}) = {freq:.5f}, reference {p:.5f} +- {bound:.5f}"


def assert_mean(values: np.ndarray, mean: float, std: float, what: str) -> None:
    values = np.asarray(values, dtype=np.float64)
    bound = Z * std / math.sqrt(values.size)
    assert abs(values.mean() - mean) <= bound, f"{what}: mean {values.mean():.5f}, reference {mean} +- {bound:.5f}"


def assert_variance(values: np.ndarray, variance: float, var_of_square: float, what: str) -> None:
    """Variance about the known mean 0 (so no bias correction), against ``variance``;
    ``var_of_square`` = Var(X^2) of the reference distribution."""
    values = np.asarray(values, dtype=np.float64)
    estimate = np.mean(values ** 2)
    bound = Z * math.sqrt(var_of_square / values.size)
    assert abs(estimate - variance) <= bound, f"{what}: variance {estimate:.6f}, reference {variance:.6f} +- {bound:.6f}"


def assert_uncorrelated(a: np.ndarray, b: np.ndarray, what: str) -> None:
    corr = np.corrcoef(np.ravel(a), np.ravel(b))[0, 1]
    bound = Z / math.sqrt(np.size(a))
    assert abs(corr) <= bound, f"{what}: correlation {corr:.4f}, independent reference 0 +- {bound:.4f}"


def normal_variance_check(values: np.ndarray, std: float, what: str) -> None:
    assert_mean(values, 0.0, std, what)
    assert_variance(values, std ** 2, 2 * std ** 4, what)


def uniform_checks(values: np.ndarray, r: float, what: str, bins: int = 8) -> None:
    """``values`` ~ U(-r, r): support, mean, variance r^2/3 and equal-width bin frequencies."""
    values = np.asarray(values, dtype=np.float64)
    assert values.min() >= -r and values.max() <= r, f"{what}: outside [-{r}, {r}]"
    assert_mean(values, 0.0, r / math.sqrt(3), what)
    assert_variance(values, r * r / 3, 4 * r ** 4 / 45, what)
    cells = np.minimum(((values + r) / (2 * r) * bins).astype(int), bins - 1)
    assert_frequencies(Counter(cells.tolist()), {b: 1 / bins for b in range(bins)}, values.size, f"{what} bins")


def coded_pose(frames: int, joints: int = 17, channels: int = 3) -> np.ndarray:
    """A float64 pose in which every value is distinct: value = 1000 t + 10 v + c + 1."""
    t, v, c = np.meshgrid(np.arange(frames), np.arange(joints), np.arange(channels), indexing="ij")
    return (1000.0 * t + 10.0 * v + c + 1).astype(np.float64)


# ----------------------------------------------------------------------------- frame sampling
# Reference: the sampling rule written out from its definition. ordered: m = n + s positions;
# if L < m the index list 0..L-1 is tiled ceil(m / L) times; start uniform in [0, L' - m]; n of
# the m positions chosen without replacement and sorted. unordered: n draws from 0..L-1,
# without replacement when L >= n, in draw order.


def reference_ordered_distribution(length: int, n: int, skip: int) -> Dict[tuple, float]:
    """Exact distribution of the frame tuple, by enumerating every (start, kept subset)."""
    m = n + skip
    positions = list(range(length))
    if length < m:
        positions = positions * math.ceil(m / length)
    starts = range(len(positions) - m + 1)
    subsets = list(itertools.combinations(range(m), n))
    weight = 1.0 / (len(starts) * len(subsets))
    dist: Dict[tuple, float] = Counter()
    for start in starts:
        for kept in subsets:
            dist[tuple(positions[start + k] for k in kept)] += weight
    return dict(dist)


def reference_ordered_draw(length: int, n: int, skip: int, py: random.Random, legacy: np.random.RandomState) -> List[int]:
    """One draw of the rule with the original's two generators: Python ``random`` picks the
    start, numpy's legacy generator the kept positions."""
    m = n + skip
    positions = list(range(length))
    if length < m:
        positions = positions * math.ceil(m / length)
    start = py.randint(0, len(positions) - m)
    kept = sorted(legacy.choice(m, n, replace=False))
    return [positions[start + k] for k in kept]


class OriginalStreams:
    """Feeds :class:`FrameSampler` the draws of the original's generators (``random`` for the
    window start, numpy's legacy global generator for the kept positions), so its output can
    be compared with the worked example computed with ``random.seed(0)``, ``np.random.seed(0)``."""

    def __init__(self, seed: int) -> None:
        self.py = random.Random(seed)
        self.legacy = np.random.RandomState(seed)

    def integers(self, low: int, high: int) -> int:
        return self.py.randint(low, high - 1)

    def choice(self, a: int, size: int, replace: bool = True) -> np.ndarray:
        return self.legacy.choice(a, size, replace=replace)


# The worked example: n = 30, s = 2; window 6..37 with window positions 12 and 15 (frames 18
# and 21) dropped; a 20-frame sequence is tiled to 40 and the same window is taken.
WORKED_L40 = [*range(6, 18), 19, 20, *range(22, 38)]
WORKED_L20 = [*range(6, 18), 19, 0, *range(2, 18)]


def test_worked_fixed_ordered_skip_example_reference_and_ours():
    # the reference, with the original's generators seeded 0, reproduces the worked example ...
    for length, expected in ((40, WORKED_L40), (20, WORKED_L20)):
        assert reference_ordered_draw(length, 30, 2, random.Random(0), np.random.RandomState(0)) == expected
    # ... and ours, fed the same draws, returns exactly those frames
    sampler = FrameSampler("fixed_ordered", frames_num_fixed=30, frames_skip_num=2)
    assert sampler(40, OriginalStreams(0)).tolist() == WORKED_L40
    assert sampler(20, OriginalStreams(0)).tolist() == WORKED_L20


@pytest.mark.parametrize("length, n, skip", [
    (12, 5, 0),   # contiguous window, start uniform in 0..7
    (3, 5, 0),    # tiled: [0,1,2,0,1] or [1,2,0,1,2]
    (10, 4, 2),   # window of 6, 2 positions dropped
    (4, 4, 2),    # tiled with a skip
    (40, 30, 2),  # the Gait3D recipe's sizes (a skip of 2)
])
def test_fixed_ordered_distribution_matches_enumeration(length, n, skip):
    sampler = FrameSampler("fixed_ordered", frames_num_fixed=n, frames_skip_num=skip)
    draws = 20000
    g = rng(100 + length)
    observed = Counter(tuple(sampler(length, g).tolist()) for _ in range(draws))
    expected = reference_ordered_distribution(length, n, skip)
    if len(expected) > 200:  # (40, 30, 2): 4,464 cells; compare the per-frame inclusion and the first frame
        include = Counter()
        first = Counter()
        for frames, count in observed.items():
            include.update({f: count for f in set(frames)})
            first[frames[0]] += count
        ref_include: Dict[int, float] = Counter()
        ref_first: Dict[int, float] = Counter()
        for frames, p in expected.items():
            for f in set(frames):
                ref_include[f] += p
            ref_first[frames[0]] += p
        for f in range(length):
            p = ref_include.get(f, 0.0)
            freq = include.get(f, 0) / draws
            assert abs(freq - p) <= Z * math.sqrt(p * (1 - p) / draws) + 1e-12, (f, freq, p)
        assert_frequencies(first, ref_first, draws, "first frame")
    else:
        assert_frequencies(observed, expected, draws, f"fixed_ordered L={length} n={n} s={skip}")


@pytest.mark.parametrize("length, n", [(5, 3), (3, 5)])
def test_fixed_unordered_every_ordered_tuple_equally_likely(length, n):
    """Without replacement (L >= n): the L!/(L-n)! ordered tuples; with replacement: L^n."""
    sampler = FrameSampler("fixed_unordered", frames_num_fixed=n)
    if length >= n:
        support = list(itertools.permutations(range(length), n))
    else:
        support = list(itertools.product(range(length), repeat=n))
    draws = 30000
    g = rng(7)
    observed = Counter(tuple(sampler(length, g).tolist()) for _ in range(draws))
    assert_frequencies(observed, {s: 1 / len(support) for s in support}, draws, f"fixed_unordered L={length} n={n}")


def test_unfixed_length_and_window_joint_distribution():
    """n uniform in [min, max]; given n, a contiguous window with start uniform in [0, L - n]."""
    sampler = FrameSampler("unfixed_ordered", frames_num_min=3, frames_num_max=6, frames_skip_num=0)
    length, draws = 9, 30000
    g = rng(11)
    observed = Counter()
    for _ in range(draws):
        frames = sampler(length, g)
        assert (np.diff(frames) == 1).all()
        observed[(len(frames), int(frames[0]))] += 1
    expected = {(n, a): 0.25 / (length - n + 1) for n in range(3, 7) for a in range(length - n + 1)}
    assert_frequencies(observed, expected, draws, "(n, start)")


def test_unfixed_length_is_drawn_independently_for_every_sequence():
    """Two sequences of one batch: P(same n) = 1/4 for n uniform in 3..6, and each n uniform."""
    collator = BatchCollator(FrameSampler("unfixed_unordered", frames_num_min=3, frames_num_max=6),
                             build_transforms([{"type": "NoOperation"}]))
    seqs = [[np.zeros((20, 17, 3))], [np.zeros((20, 17, 3))]]
    pairs = Counter()
    draws = 6000
    for key in range(draws):
        batch = collator(seqs, [0, 1], ["nm-01"] * 2, ["000"] * 2, [batch_rng(3, 0, key, k) for k in range(2)])
        pairs[tuple(batch.seq_lengths[0].tolist())] += 1
    assert_frequencies(pairs, {(a, b): 1 / 16 for a in range(3, 7) for b in range(3, 7)}, draws, "(n1, n2)")


def test_all_sampling_and_limit_are_exact():
    for sample_type in ("all_ordered", "all_unordered"):  # all_unordered shuffles nothing
        assert FrameSampler(sample_type)(9, rng(0)).tolist() == list(range(9))
        assert FrameSampler(sample_type, frames_all_limit=4)(9, rng(0)).tolist() == [0, 1, 2, 3]
    # the limit has no effect on fixed sampling
    limited = FrameSampler("fixed_ordered", frames_num_fixed=6, frames_skip_num=0, frames_all_limit=2)
    assert len(limited(9, rng(0))) == 6


# ----------------------------------------------------------------------------- augmentations


def test_flip_sequence_probability_and_operation():
    for p in (0.5, 0.1):
        flip = build_transform({"type": "FlipSequence", "probability": p})
        seq = coded_pose(5)
        g = rng(21)
        draws = 20000
        flipped = 0
        for _ in range(draws):
            out = flip(seq, g)
            if np.array_equal(out, seq[::-1]):
                flipped += 1
            else:
                assert np.array_equal(out, seq)
        assert_frequencies({True: flipped, False: draws - flipped}, {True: p, False: 1 - p}, draws, f"flip p={p}")


def test_mirror_poses_probability_and_operation():
    mirror = build_transform({"type": "MirrorPoses", "probability": 0.5})
    seq = coded_pose(3)
    mirrored = seq.copy()
    mirrored[..., 0] = 2 * seq[..., 0].mean(axis=1, keepdims=True) - seq[..., 0]
    g = rng(22)
    draws = 20000
    hits = 0
    for _ in range(draws):
        out = mirror(seq, g)
        if np.array_equal(out, seq):
            continue
        np.testing.assert_allclose(out, mirrored, rtol=0, atol=1e-9)
        hits += 1
    assert_frequencies({1: hits, 0: draws - hits}, {1: 0.5, 0: 0.5}, draws, "mirror")


@pytest.mark.parametrize("joint_format, perm", [("coco", COCO_FLIP), ("alphapose", OPENPOSE_FLIP)])
def test_inverse_poses_pre_per_frame_swaps(joint_format, perm):
    """Each frame swapped independently with p = 0.1, by the format's left/right permutation:
    per-frame rate, pairwise rate p^2, and the number of swapped frames ~ Binomial(T, p)."""
    p, frames = 0.1, 8
    joints = len(perm)
    inverse = build_transform({"type": "InversePosesPre", "probability": p, "joint_format": joint_format})
    seq = coded_pose(frames, joints)
    swapped_seq = seq[:, perm]
    g = rng(23)
    draws = 8000
    swaps = np.zeros((draws, frames), dtype=bool)
    for i in range(draws):
        out = inverse(seq, g)
        same = np.all(out == seq, axis=(1, 2))
        swapped = np.all(out == swapped_seq, axis=(1, 2))
        assert np.all(same | swapped), "a frame is neither unchanged nor the permuted frame"
        swaps[i] = swapped
    total = draws * frames
    assert_frequencies({1: int(swaps.sum()), 0: total - int(swaps.sum())}, {1: p, 0: 1 - p}, total, "swap rate")
    both = int(np.sum(swaps[:, 0] & swaps[:, 1]))
    assert_frequencies({1: both, 0: draws - both}, {1: p * p, 0: 1 - p * p}, draws, "frames 0 and 1 both swapped")
    binomial = {k: math.comb(frames, k) * p ** k * (1 - p) ** (frames - k) for k in range(frames + 1)}
    assert_frequencies(Counter(swaps.sum(axis=1).tolist()), binomial, draws, "swapped frames per sequence")


def test_joint_noise_one_offset_per_joint_and_axis_for_all_frames():
    std = 0.25
    noise = build_transform({"type": "JointNoise", "std": std})
    seq = coded_pose(6)
    g = rng(24)
    draws = 6000
    offsets = np.empty((draws, 17, 2))
    for i in range(draws):
        out = noise(seq, g)
        delta = out - seq
        assert np.all(delta[..., 2] == 0), "confidence changed"
        np.testing.assert_allclose(delta[:, :, :2], np.broadcast_to(delta[:1, :, :2], delta[:, :, :2].shape),
                                   rtol=0, atol=1e-9, err_msg="offsets differ between frames")
        offsets[i] = delta[0, :, :2]
    for v in range(17):
        for c in range(2):
            normal_variance_check(offsets[:, v, c], std, f"JointNoise joint {v} channel {c}")
    flat = offsets.reshape(draws, -1)
    corr = np.corrcoef(flat, rowvar=False)[np.triu_indices(flat.shape[1], 1)]
    assert np.abs(corr).max() <= Z / math.sqrt(draws), "JointNoise offsets of different joints/axes correlate"


def test_point_noise_independent_on_every_value_including_confidence():
    std = 0.05
    noise = build_transform({"type": "PointNoise", "std": std})
    seq = rng(24).normal(0, 5, size=(4, 17, 3)).astype(np.float32)
    g = rng(25)
    draws = 4000
    deltas = np.empty((draws, 4, 17, 3))
    for i in range(draws):
        out = noise(seq, g)
        assert out.dtype == np.float32
        deltas[i] = out.astype(np.float64) - seq
    # (float32 storage rounds each value by at most 5e-7 here: negligible against std 0.05)
    for c in range(3):
        normal_variance_check(deltas[..., c].ravel(), std, f"PointNoise channel {c}")
    assert_uncorrelated(deltas[:, 0], deltas[:, 1], "PointNoise frames 0 and 1")
    assert_uncorrelated(deltas[:, :, 0, 0], deltas[:, :, 1, 0], "PointNoise joints 0 and 1")


def test_random_move_uniform_shifts_x_then_y_for_the_whole_sequence():
    move = build_transform({"type": "RandomMove", "random_r": [4, 1]})
    seq = coded_pose(5)
    g = rng(26)
    draws = 20000
    shifts = np.empty((draws, 2))
    for i in range(draws):
        delta = move(seq, g) - seq
        assert np.all(delta[..., 2] == 0)
        assert np.ptp(delta[..., 0]) < 1e-9 and np.ptp(delta[..., 1]) < 1e-9, "shift differs within the sequence"
        shifts[i] = delta[0, 0, :2]
    uniform_checks(shifts[:, 0], 4.0, "RandomMove x")
    uniform_checks(shifts[:, 1], 1.0, "RandomMove y")
    assert_uncorrelated(shifts[:, 0], shifts[:, 1], "RandomMove x and y")
    # x is the first draw of the generator, y the second
    again = rng(26)
    assert shifts[0, 0] == pytest.approx(again.uniform(-4, 4)) and shifts[0, 1] == pytest.approx(again.uniform(-1, 1))


def test_random_select_sequence_start_never_the_last_window():
    select = build_transform({"type": "RandomSelectSequence", "sequence_length": 60})
    seq = coded_pose(100, joints=2, channels=1)
    g = rng(27)
    draws = 20000
    starts = Counter(int(select(seq, g)[0, 0, 0] // 1000) for _ in range(draws))
    assert_frequencies(starts, {a: 1 / 40 for a in range(40)}, draws, "start (0..39, never 40)")


def test_two_view_views_are_independent_draws_from_the_unmodified_input():
    """GaitGraph1's TwoView: flips of the two views independent (P(both) = 1/4), view 2 swaps
    each frame with p = 0.1 (the original's in-place chain gives 2p(1-p) = 0.18), noise of
    the two views uncorrelated."""
    two = build_transform({"type": "TwoView", "trf_cfg": [
        {"type": "InversePosesPre", "probability": 0.1},
        {"type": "FlipSequence", "probability": 0.5},
        {"type": "SkeletonInput"},
    ]})
    frames = 6
    seq = coded_pose(frames)
    draws = 6000
    g = rng(28)
    flips = np.zeros((draws, 2), dtype=bool)
    swaps = np.zeros((draws, 2, frames), dtype=bool)
    for i in range(draws):
        out = two(seq, g)
        assert out.shape == (3, 2 * frames, 17, 1)
        for view in range(2):
            pose = np.transpose(out[:, view * frames:(view + 1) * frames, :, 0], (1, 2, 0))
            flips[i, view] = pose[0, 0, 0] >= 1000 * (frames - 1)  # frame index read from the code
            if flips[i, view]:
                pose = pose[::-1]
            swaps[i, view] = pose[:, 1, 0] == seq[:, 2, 0]  # joint 1 holds joint 2's value
    pairs = Counter(map(tuple, flips.tolist()))
    assert_frequencies(pairs, {(a, b): 0.25 for a in (False, True) for b in (False, True)}, draws, "flip of views 1, 2")
    for view in range(2):
        n = int(swaps[:, view].sum())
        assert_frequencies({1: n, 0: swaps[:, view].size - n}, {1: 0.1, 0: 0.9}, swaps[:, view].size, f"view {view + 1} swaps")
    both = int(np.sum(swaps[:, 0] & swaps[:, 1]))
    assert_frequencies({1: both, 0: swaps[:, 0].size - both}, {1: 0.01, 0: 0.99}, swaps[:, 0].size, "same frame swapped in both views")

    noisy = build_transform({"type": "TwoView", "trf_cfg": [{"type": "JointNoise", "std": 0.2}, {"type": "SkeletonInput"}]})
    g = rng(29)
    base = coded_pose(2)
    both_views = np.array([noisy(base, g)[0, [0, 2], :, 0] for _ in range(draws)]) - base[0, :, 0]
    normal_variance_check(both_views[:, 1], 0.2, "view 2 JointNoise")
    assert_uncorrelated(both_views[:, 0], both_views[:, 1], "JointNoise of views 1 and 2")


def test_gaitgraph2_chain_first_and_second_moments():
    """The whole GaitGraph2 training chain on a constant pose: per frame the x value is
    x0 + joint noise (0.25) + point noise (0.05) + shift U(-4, 4); flips and swaps only
    permute equal values, so x has mean x0 and variance 0.25^2 + 0.05^2 + 16/3, and the
    confidence has variance 0.05^2 (point noise only) around 1."""
    chain = build_transform([
        {"type": "NormalizeEmpty"}, {"type": "FlipSequence", "probability": 0.5},
        {"type": "InversePosesPre", "probability": 0.1}, {"type": "JointNoise", "std": 0.25},
        {"type": "PointNoise", "std": 0.05}, {"type": "RandomMove", "random_r": [4, 1]},
    ])
    seq = np.zeros((3, 17, 3))
    seq[..., 0], seq[..., 1], seq[..., 2] = 10.0, 20.0, 1.0
    g = rng(30)
    draws = 6000
    outs = np.array([chain(seq, g) for _ in range(draws)])
    x = outs[:, 0, 0, 0] - 10.0
    y = outs[:, 0, 0, 1] - 20.0
    conf = outs[:, 0, 0, 2] - 1.0
    var_x = 0.25 ** 2 + 0.05 ** 2 + 16 / 3
    var_y = 0.25 ** 2 + 0.05 ** 2 + 1 / 3
    assert_mean(x, 0.0, math.sqrt(var_x), "chain x")
    assert_mean(y, 0.0, math.sqrt(var_y), "chain y")
    # fourth moment of a sum of independent normal N and uniform U: E[(N+U)^4] = 3s^4 + 6 s^2 r^2/3 + r^4/5
    for values, r, what in ((x, 4.0, "x"), (y, 1.0, "y")):
        s2 = 0.25 ** 2 + 0.05 ** 2
        fourth = 3 * s2 ** 2 + 6 * s2 * r * r / 3 + r ** 4 / 5
        var = s2 + r * r / 3
        assert_variance(values, var, fourth - var ** 2, f"chain {what}")
    normal_variance_check(conf, 0.05, "chain confidence")
    # joint noise is shared by the frames of a sequence, point noise and the shift are not split:
    # x(frame 0) - x(frame 1) of one joint has only the point noise, variance 2 * 0.05^2
    diff = outs[:, 0, 3, 0] - outs[:, 1, 3, 0]
    normal_variance_check(diff, math.sqrt(2) * 0.05, "frame difference")


# ----------------------------------------------------------------------------- deterministic parts


def test_normalize_empty_worked_example():
    frame = np.array([[[0, 0, 0], [2, 4, 1], [0, 5, .5], [4, 8, 1]]], dtype=np.float64)
    out = build_transform({"type": "NormalizeEmpty"})(frame)
    np.testing.assert_allclose(out[0], [[1.5, 4.25, 0], [2, 4, 1], [1.875, 5.3125, 0], [4, 8, 1]], atol=1e-12)


def test_rescale_center_hand_example():
    """Joints at (1, 2) except left/right shoulder (2, 0), (4, 0) and left ankle (3, 10): height
    10, factor 225 / 10 = 22.5, neck (scaled) = (67.5, 0)."""
    seq = np.zeros((1, 17, 3))
    seq[0, :, :] = (1.0, 2.0, 0.7)
    seq[0, 5, :2], seq[0, 6, :2], seq[0, 15, :2] = (2, 0), (4, 0), (3, 10)
    out = build_transform({"type": "RescaleCenter", "center": "neck", "scale": 225})(seq)
    np.testing.assert_allclose(out[0, 0], (-45.0, 45.0, 0.7), atol=1e-12)
    np.testing.assert_allclose(out[0, 5], (-22.5, 0.0, 0.7), atol=1e-12)
    np.testing.assert_allclose(out[0, 15], (0.0, 225.0, 0.7), atol=1e-12)
    hip = build_transform({"type": "RescaleCenter", "center": "hip", "scale": 225})(seq)
    np.testing.assert_allclose(hip[0, 15], (67.5 - 22.5, 225.0 - 45.0, 0.7), atol=1e-12)


def test_affine_worked_example_intended_and_legacy():
    seq = np.zeros((1, 17, 3))
    seq[0, 5, :2], seq[0, 6, :2] = (0, 0), (2, 0)
    seq[0, 11, :2], seq[0, 12, :2] = (2, 4), (4, 4)
    seq[0, 0, :2] = (1, -2)
    for legacy, hip, nose in ((False, (1, 4.4721), (1.8944, -1.7889)), (True, (1, 3.5777), (1.8944, -1.3889))):
        out = build_transform({"type": "Affine", "legacy": legacy})(seq)
        np.testing.assert_allclose(out[0, [11, 12], :2].mean(axis=0), hip, atol=1e-4)
        np.testing.assert_allclose(out[0, 0, :2], nose, atol=1e-4)


def reference_features(seq: np.ndarray, parents: Sequence[int], centre: int) -> Dict[str, np.ndarray]:
    """GaitTR's and GaitGraph's input channels, one joint and frame at a time."""
    frames, joints, _ = seq.shape
    gaittr = np.zeros((frames, joints, 10))
    graph = np.zeros((frames, joints, 3, 5))
    for t in range(frames):
        for v in range(joints):
            x, y, c = seq[t, v, :3]
            rx, ry = x - seq[t, centre, 0], y - seq[t, centre, 1]
            if t + 2 < frames:
                v1 = seq[t + 1, v, :2] - seq[t, v, :2]
                v2 = seq[t + 2, v, :2] - seq[t, v, :2]
            else:
                v1 = v2 = np.zeros(2)
            bx, by = seq[t, v, :2] - seq[t, parents[v], :2]
            gaittr[t, v] = (x, y, rx, ry, v1[0], v1[1], v2[0], v2[1], bx, by)
            graph[t, v, 0] = (x, y, c, rx, ry)
            graph[t, v, 1] = (v1[0], v1[1], 0, c, v2[1])
            graph[t, v, 2] = (bx, by, 0, c, math.acos(by / (math.sqrt(bx * bx + by * by) + 1e-4)))
    return {"GaitTR_MultiInput": gaittr, "GaitGraph_MultiInput": graph}


@pytest.mark.parametrize("joint_format, parents, centre", [("coco", COCO_PARENT, 0), ("alphapose", OPENPOSE_PARENT, 1)])
def test_feature_builders_match_per_element_reference(joint_format, parents, centre):
    seq = rng(31).normal(0, 30, size=(5, len(parents), 3))
    seq[..., 2] = rng(32).uniform(0, 1, size=seq.shape[:2])
    reference = reference_features(seq, parents, centre)
    for name, expected in reference.items():
        out = build_transform({"type": name, "joint_format": joint_format})(seq)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9, err_msg=name)
    skeleton = build_transform({"type": "SkeletonInput"})(seq)
    assert np.array_equal(skeleton[..., 0], np.transpose(seq, (2, 0, 1)))


def test_hod_angle_worked_examples():
    """Inner angle at j between a and b, and the edge angle at j between a and (x_j, y_a),
    as pi - arccos(law of cosines): examples pi/2, 0 (inner); 3pi/4, pi, pi (edge)."""
    hod = build_transform({"type": "HOD_MultiInput", "joint_format": "coco"})
    # slot 7 = (7, 5, 9): inner angle at the left elbow; slot 9 = (9, 7): edge angle at the wrist
    for elbow, shoulder, wrist, expected in (((0, 0), (1, 0), (0, 1), math.pi / 2), ((0, 0), (1, 0), (-1, 0), 0.0)):
        seq = np.full((1, 17, 3), 50.0)
        seq[0, 7, :2], seq[0, 5, :2], seq[0, 9, :2] = elbow, shoulder, wrist
        assert hod(seq)[0, 7, 4] == pytest.approx(expected, abs=1e-7)
    for elbow, expected in (((1, 1), 3 * math.pi / 4), ((0, 1), math.pi), ((1, 0), math.pi)):
        seq = np.full((1, 17, 3), 50.0)
        seq[0, 9, :2], seq[0, 7, :2] = (0, 0), elbow
        assert hod(seq)[0, 9, 4] == pytest.approx(expected, abs=1e-7)


# ----------------------------------------------------------------------------- batch samplers


class Split:
    """A dataset-like split: subject i holds ``counts[i]`` sequences (indices grouped by subject)."""

    def __init__(self, counts: Sequence[int]) -> None:
        self.labels = np.concatenate([np.full(c, i) for i, c in enumerate(counts)])
        self.indices_by_label = [np.flatnonzero(self.labels == i) for i in range(len(counts))]

    def __len__(self) -> int:
        return len(self.labels)


def global_batches(sampler, count: int) -> np.ndarray:
    return np.array([sampler.global_batch(key) for key in range(count)])


def test_triplet_sampler_composition_and_uniformity():
    """P = 3 distinct subjects of S = 6 (each unordered set of 3 with probability 1/20), in a
    uniformly random order; K = 2 distinct sequences of a subject's 4 (each pair 1/6)."""
    split = Split([4] * 6)
    batches = global_batches(TripletSampler(split, [3, 2], seed=1), 12000)
    labels = split.labels[batches].reshape(-1, 3, 2)
    assert np.all(labels[:, :, 0] == labels[:, :, 1]), "a subject's K sequences are not contiguous"
    subjects = labels[:, :, 0]
    n = len(batches)
    assert_frequencies(Counter(tuple(sorted(s)) for s in subjects.tolist()),
                       {c: 1 / 20 for c in itertools.combinations(range(6), 3)}, n, "subject set")
    assert_frequencies(Counter(subjects[:, 0].tolist()), {s: 1 / 6 for s in range(6)}, n, "first block's subject")
    pairs = Counter(tuple(sorted(pair)) for pair in (batches.reshape(-1, 2) % 4).tolist())
    assert_frequencies(pairs, {c: 1 / 6 for c in itertools.combinations(range(4), 2)}, sum(pairs.values()),
                       "sequence pair within a subject")


def test_triplet_sampler_draws_with_replacement_when_too_few():
    """A subject with 2 sequences and K = 4: four independent uniform draws (the count of its
    first sequence is Binomial(4, 1/2)); S = 3 subjects and P = 5: five uniform draws."""
    split = Split([2, 2, 2])
    batches = global_batches(TripletSampler(split, [5, 4], seed=2), 4000)
    blocks = batches.reshape(-1, 4)
    firsts = Counter(np.sum(blocks % 2 == 0, axis=1).tolist())
    assert_frequencies(firsts, {k: math.comb(4, k) / 16 for k in range(5)}, len(blocks), "first sequence count")
    subjects = split.labels[batches].reshape(-1, 5, 4)[:, :, 0]
    assert_frequencies(Counter(subjects.ravel().tolist()), {s: 1 / 3 for s in range(3)}, subjects.size, "subject")
    same = int(np.sum(subjects[:, 0] == subjects[:, 1]))
    assert_frequencies({1: same, 0: len(subjects) - same}, {1: 1 / 3, 0: 2 / 3}, len(subjects), "blocks 1, 2 same subject")


def test_triplet_batch_shuffle_is_a_uniform_permutation_of_the_batch():
    """With ``batch_shuffle`` the P*K entries of the same draw are permuted uniformly: every
    entry lands on every position with probability 1/(P*K)."""
    split = Split([5] * 8)
    plain = TripletSampler(split, [2, 3], seed=4)
    shuffled = TripletSampler(split, [2, 3], batch_shuffle=True, seed=4)
    draws = 8000
    landing = np.empty((draws, 6), dtype=np.int64)  # landing[d, i]: where slot i went
    for key in range(draws):
        before, after = plain.global_batch(key), shuffled.global_batch(key)
        assert sorted(before) == sorted(after)
        landing[key] = [int(np.flatnonzero(after == index)[0]) for index in before]
    for slot in range(6):
        assert_frequencies(Counter(landing[:, slot].tolist()), {j: 1 / 6 for j in range(6)}, draws, f"slot {slot}")
    pairs = Counter(zip(landing[:, 0].tolist(), landing[:, 5].tolist()))  # two slots of different subjects
    assert_frequencies(pairs, {(i, j): 1 / 30 for i in range(6) for j in range(6) if i != j}, draws, "slots 0 and 5")


def test_common_sampler_distinct_uniform_inclusion():
    split = Split([1] * 10)
    batches = global_batches(CommonSampler(split, 4, seed=5), 10000)
    assert all(len(set(b)) == 4 for b in batches.tolist())
    n = len(batches)
    for index in range(10):
        hits = int(np.sum(batches == index))
        assert_frequencies({1: hits, 0: n - hits}, {1: 0.4, 0: 0.6}, n, f"sequence {index} in a batch")
    small = global_batches(CommonSampler(Split([1] * 3), 4, seed=6), 3000)
    assert_frequencies(Counter(small.ravel().tolist()), {i: 1 / 3 for i in range(3)}, small.size, "with replacement")


@pytest.mark.parametrize("make", [
    lambda split, **kw: TripletSampler(split, [4, 3], batch_shuffle=True, **kw),
    lambda split, **kw: CommonSampler(split, 6, **kw),
])
def test_two_ranks_take_strided_halves_of_the_global_batch(make):
    split = Split([4] * 9)
    single = make(split, seed=8)
    ranks = [make(split, seed=8, rank=r, world_size=2) for r in range(2)]
    streams = [iter(single), *(iter(r) for r in ranks)]
    for _ in range(50):
        whole, first, second = (next(s) for s in streams)
        assert first.indices == whole.indices[0::2] and second.indices == whole.indices[1::2]
        assert first.sample_keys == [0, 2, 4, 6, 8, 10][: len(first.indices)]
        assert second.sample_keys == [1, 3, 5, 7, 9, 11][: len(second.indices)]
        assert first.key == second.key == whole.key


def test_odd_global_batch_on_two_ranks_is_a_config_error():
    with pytest.raises(ConfigError, match="not divisible by the world size 2"):
        TripletSampler(Split([4] * 9), [3, 3], world_size=2)


def test_inference_sampler_worked_example():
    split = Split([1] * 10)
    assert [r.indices for r in InferenceSampler(split, 4, rank=0, world_size=2)] == [[0, 1], [4, 5], [8, 9]]
    assert [r.indices for r in InferenceSampler(split, 4, rank=1, world_size=2)] == [[2, 3], [6, 7], [0, 1]]
    assert [r.indices for r in InferenceSampler(split, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]


# ----------------------------------------------------------------------------- the keyed generators


class PoseSplit(Split):
    """A split the loader's BatchBuilder can read: sequence i is ``coded_pose`` + 10^6 i."""

    def __init__(self, counts: Sequence[int], frames: int = 6) -> None:
        super().__init__(counts)
        self.records = [SimpleNamespace(type="nm-01", view="000") for _ in self.labels]
        self.frames = frames

    def load(self, index: int) -> List[np.ndarray]:
        return [coded_pose(self.frames) + 1e6 * index]


def flip_builder(split: PoseSplit, seed: int) -> BatchBuilder:
    collator = BatchCollator(FrameSampler("fixed_ordered", frames_num_fixed=split.frames, frames_skip_num=0),
                             build_transforms([{"type": "FlipSequence", "probability": 0.5}]))
    return BatchBuilder(split, collator, seed, phase=0)


def test_loader_draws_are_independent_across_samples_and_batches():
    """Each sequence's augmentation has its own generator: the flips of two positions of one
    batch, and of one position in consecutive batches, are independent fair coins."""
    split = PoseSplit([1] * 8)
    builder = flip_builder(split, seed=9)
    sampler = CommonSampler(split, 8, seed=9)
    draws = 2000
    flips = np.zeros((draws, 8), dtype=bool)
    stream = iter(sampler)
    for key in range(draws):
        batch = builder[next(stream)]
        x = batch.inputs[0][:, :, 0, 0].numpy() % 1e6  # [b, T] frame codes
        flips[key] = x[:, 0] > x[:, -1]
    n = flips.size
    assert_frequencies({1: int(flips.sum()), 0: n - int(flips.sum())}, {1: 0.5, 0: 0.5}, n, "flip")
    for a, b, what in ((flips[:, 0], flips[:, 1], "positions 0, 1"), (flips[:-1, 3], flips[1:, 3], "batches k, k+1")):
        pairs = Counter(zip(a.tolist(), b.tolist()))
        assert_frequencies(pairs, {(u, v): 0.25 for u in (False, True) for v in (False, True)}, len(a), what)


def test_sample_generators_are_not_the_sampler_generator():
    """The generator that draws a batch and those that augment sequences (training: keyed by
    batch and position; test: batch 0 and the sequence index) are different streams, also
    where the keys differ only by trailing zeros (batch 0 and position 0 of training, the
    test's sequence 0), which numpy's SeedSequence maps to the same state."""
    split = type("LargeSplit", (), {"__len__": lambda self: 10 ** 6})()
    for seed in (0, 3):
        sampler = CommonSampler(split, 4, seed=seed)
        batches = [sampler.global_batch(key).tolist() for key in range(4)]
        for phase, key, position in itertools.product((0, 1), range(4), range(4)):
            # the batch the sampler would draw from this sequence's generator
            from_sample_stream = sampler.draw(batch_rng(seed, phase, key, position)).tolist()
            assert from_sample_stream not in batches, (seed, phase, key, position)


def test_augmentations_do_not_depend_on_the_world_size():
    """Rank r of 2 gets positions r, r+2, ... of the single-process batch with the very same
    frames and augmentations (generators keyed by the global position)."""
    split = PoseSplit([3] * 6)
    builder = flip_builder(split, seed=10)
    single = iter(TripletSampler(split, [2, 3], batch_shuffle=True, seed=10))
    ranks = [iter(TripletSampler(split, [2, 3], batch_shuffle=True, seed=10, rank=r, world_size=2)) for r in range(2)]
    for _ in range(20):
        whole = builder[next(single)].inputs[0].numpy()
        for r, stream in enumerate(ranks):
            np.testing.assert_array_equal(builder[next(stream)].inputs[0].numpy(), whole[r::2])
