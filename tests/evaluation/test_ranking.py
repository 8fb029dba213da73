import numpy as np
import pytest
import torch

import eval_reference as ref
from fastposegait.evaluation import GalleryIndex, nearest_in_slices, smallest_k_stable
from fastposegait.evaluation.ranking import encode
from ranking_helpers import (
    cmc_map_minp,
    cmc_map_minp_cross_camera,
    rank_accuracy_and_map,
    rank_block,
    rank_distances,
)

pytestmark = pytest.mark.usefixtures("rank_path")

# Worked example E1 (values from the original's metric functions): 4 probes x 5 gallery
E1 = np.array(
    [
        [0.2, 0.9, 0.1, 0.8, 0.5],
        [0.7, 0.1, 0.6, 0.3, 0.9],
        [0.5, 0.4, 0.3, 0.2, 0.1],
        [0.6, 0.8, 0.7, 0.9, 0.4],
    ]
)
E1_GALLERY = ["a", "b", "c", "b", "c"]
E1_PROBES = ["a", "b", "c", "z"]
E1_PROBE_VIEWS = ["000", "018", "000", "000"]
E1_GALLERY_VIEWS = ["000", "018", "018", "000", "000"]


def test_e1_evaluate_rank():
    cmc, ap, inp = cmc_map_minp(E1, E1_PROBES, E1_GALLERY)
    assert cmc.dtype == np.float32 and len(cmc) == 5  # max_rank 50 lowered to the gallery size
    np.testing.assert_allclose(cmc, [2 / 3, 1, 1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(ap, [0.5, 1.0, 0.833333], atol=1e-6)
    np.testing.assert_allclose(inp, [0.5, 1.0, 0.666667], atol=1e-6)
    assert np.mean(ap) == pytest.approx(0.7778, abs=1e-4)
    assert np.mean(inp) == pytest.approx(0.7222, abs=1e-4)


def test_e1_acc_map_without_views():
    acc, mean_ap = rank_accuracy_and_map(E1, E1_PROBES, E1_GALLERY)
    assert acc == pytest.approx(0.5) and mean_ap == pytest.approx(0.7778, abs=1e-4)


def test_e1_acc_map_with_views():
    acc, mean_ap = rank_accuracy_and_map(E1[:3], E1_PROBES[:3], E1_GALLERY, E1_PROBE_VIEWS[:3], E1_GALLERY_VIEWS)
    assert acc == pytest.approx(1 / 3) and mean_ap == pytest.approx(0.75)
    acc, mean_ap = rank_accuracy_and_map(E1, E1_PROBES, E1_GALLERY, E1_PROBE_VIEWS, E1_GALLERY_VIEWS)
    assert acc == pytest.approx(0.25) and mean_ap == pytest.approx(0.75)


def test_e1_evaluate_many():
    cmc, mean_ap, mean_inp = cmc_map_minp_cross_camera(E1, E1_PROBES, E1_GALLERY, E1_PROBE_VIEWS, E1_GALLERY_VIEWS)
    np.testing.assert_allclose(cmc, [0.5, 1, 1, 1], atol=1e-6)
    assert mean_ap == pytest.approx(0.75) and mean_inp == pytest.approx(0.75)


def test_tensor_input_and_no_valid_probe_errors():
    cmc, _, _ = cmc_map_minp(torch.from_numpy(E1), E1_PROBES, E1_GALLERY)
    np.testing.assert_allclose(cmc, [2 / 3, 1, 1, 1, 1], atol=1e-6)
    with pytest.raises(ValueError, match="no probe has a same-subject gallery entry"):
        cmc_map_minp(E1[3:], ["z"], E1_GALLERY)
    with pytest.raises(ValueError, match="no probe has a same-subject gallery entry from another camera"):
        cmc_map_minp_cross_camera(E1[:1], ["a"], E1_GALLERY, ["000"], E1_GALLERY_VIEWS)
    # a probe whose only gallery entry is its own subject and view: nothing left (upstream: assertion)
    with pytest.raises(ValueError, match="no gallery entry left"):
        rank_accuracy_and_map(E1[:1, :1], ["a"], ["a"], ["000"], ["000"])
    with pytest.raises(ValueError, match="NaN or inf"):
        rank_accuracy_and_map(np.array([[np.nan]]), ["a"], ["a"])
    with pytest.raises(ValueError, match="2 probe and 5 gallery labels"):
        cmc_map_minp(E1, E1_PROBES[:2], E1_GALLERY)


def _random_case(seed, n=40, m=30, num_labels=8, num_views=3, ties=True, dtype=np.float64):
    """Random distances with exact ties (values on a coarse grid), probes without match, views.

    float32 matrices take the sparse/sorted ranking paths, float64 ones the plain stable sort."""
    rng = np.random.default_rng(seed)
    dist = rng.integers(0, 12, size=(n, m)).astype(np.float64) / 4 if ties else rng.random((n, m))
    dist = dist.astype(dtype)
    gallery_labels = [f"s{v}" for v in rng.integers(0, num_labels, m)]
    probe_labels = [f"s{v}" for v in rng.integers(0, num_labels + 3, n)]  # some labels absent from the gallery
    probe_views = [f"{v:03d}" for v in rng.integers(0, num_views, n)]
    gallery_views = [f"{v:03d}" for v in rng.integers(0, num_views, m)]
    return dist, probe_labels, gallery_labels, probe_views, gallery_views


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("chunk_size", [None, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_distances_matches_brute_force(seed, chunk_size, dtype):
    dist, pl, gl, pv, gv = _random_case(seed, dtype=dtype)
    for views in (False, True):
        ranking = rank_distances(dist, pl, gl, pv if views else None, gv if views else None, chunk_size=chunk_size)
        for i in range(len(pl)):
            r = ref.rank_probe(dist[i], pl[i], gl, pv[i] if views else None, gv if views else None)
            assert int(ranking.num_candidates[i]) == r["size"]
            assert int(ranking.num_matches[i]) == len(r["positions"])
            if r["positions"]:
                assert int(ranking.first_match[i]) == r["positions"][0]
                assert int(ranking.last_match[i]) == r["positions"][-1]
                assert float(ranking.average_precision[i]) == pytest.approx(r["ap"], abs=1e-9)
                assert float(ranking.inverse_negative_penalty[i]) == pytest.approx(r["inp"], abs=1e-9)
            else:
                assert int(ranking.first_match[i]) == 0 and not bool(ranking.has_match[i])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_public_functions_match_brute_force(seed, ties, dtype):
    dist, pl, gl, pv, gv = _random_case(seed, ties=ties, dtype=dtype)
    for rank in (1, 3):
        for views in ((None, None), (pv, gv)):
            ours = rank_accuracy_and_map(dist, pl, gl, *views, rank=rank)
            np.testing.assert_allclose(ours, ref.acc_map(dist, pl, gl, *views, rank=rank), atol=1e-6)
    for max_rank in (5, 50):
        cmc, ap, inp = cmc_map_minp(dist, pl, gl, max_rank=max_rank)
        ref_cmc, ref_ap, ref_inp = ref.cmc_ap_inp(dist, pl, gl, max_rank)
        np.testing.assert_allclose(cmc, ref_cmc, atol=1e-6)
        np.testing.assert_allclose(ap, ref_ap, atol=1e-6)
        np.testing.assert_allclose(inp, ref_inp, atol=1e-6)
        cmc, mean_ap, mean_inp = cmc_map_minp_cross_camera(dist, pl, gl, pv, gv, max_rank=max_rank)
        ref_cmc, ref_ap, ref_inp = ref.cmc_ap_inp(dist, pl, gl, max_rank, pv, gv)
        np.testing.assert_allclose(cmc, ref_cmc, atol=1e-6)
        assert mean_ap == pytest.approx(np.mean(ref_ap), abs=1e-6)
        assert mean_inp == pytest.approx(np.mean(ref_inp), abs=1e-6)


def test_single_probe_and_single_gallery_entry():
    acc, mean_ap = rank_accuracy_and_map(np.array([[0.3]]), ["a"], ["a"])
    assert (acc, mean_ap) == (1.0, 1.0)
    cmc, ap, inp = cmc_map_minp(np.array([[0.3, 0.1]]), ["a"], ["a", "b"])
    np.testing.assert_allclose(cmc, [0, 1])
    assert ap == [0.5] and inp == [0.5]


def test_ties_prefer_lower_gallery_index():
    # all distances equal: the stable order is the gallery order
    ranking = rank_distances(np.zeros((2, 4)), ["b", "c"], ["a", "b", "c", "b"])
    assert ranking.first_match.tolist() == [2, 3]
    assert ranking.last_match.tolist() == [4, 3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    dist, pl, gl, pv, gv = _random_case(3)
    cpu = rank_distances(torch.from_numpy(dist), pl, gl, pv, gv)
    cuda = rank_distances(torch.from_numpy(dist).cuda(), pl, gl, pv, gv)
    for name in ("first_match", "last_match", "num_matches", "num_candidates"):
        assert torch.equal(getattr(cpu, name), getattr(cuda, name))
    torch.testing.assert_close(cpu.average_precision, cuda.average_precision)


# ---------------------------------------------------------------- sort-free ranking edge cases


@pytest.mark.parametrize("seed", range(4))
def test_negative_and_signed_zero_distances_rank_like_a_stable_sort(seed):
    """cos distances can be slightly negative; -0.0 and 0.0 are equal and fall back to index order."""
    rng = np.random.default_rng(seed)
    grid = np.array([-1e-7, -0.0, 0.0, 1e-7, 0.25, 0.5, 2.0], dtype=np.float32)
    dist = grid[rng.integers(0, len(grid), size=(30, 25))]
    gl = [f"s{v}" for v in rng.integers(0, 5, 25)]
    pl = [f"s{v}" for v in rng.integers(0, 6, 30)]
    ranking = rank_distances(torch.from_numpy(dist), pl, gl)
    for i in range(30):
        r = ref.rank_probe(dist[i].astype(np.float64), pl[i], gl)
        assert int(ranking.num_matches[i]) == len(r["positions"])
        if r["positions"]:
            assert int(ranking.first_match[i]) == r["positions"][0]
            assert int(ranking.last_match[i]) == r["positions"][-1]
            assert float(ranking.average_precision[i]) == pytest.approx(r["ap"], abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_many_matches_per_subject_and_all_ties(seed):
    """Dense regime (every candidate precedes the last match) with long tie runs, views excluded."""
    rng = np.random.default_rng(seed)
    n, m = 12, 200
    dist = rng.integers(0, 3, size=(n, m)).astype(np.float32)  # three values: huge tie groups
    gl = [f"s{v}" for v in rng.integers(0, 2, m)]  # ~100 matches per probe
    gv = [f"v{v}" for v in rng.integers(0, 4, m)]
    pl = [f"s{v}" for v in rng.integers(0, 2, n)]
    pv = [f"v{v}" for v in rng.integers(0, 4, n)]
    for views in ((None, None), (pv, gv)):
        ranking = rank_distances(dist, pl, gl, *views, chunk_size=5)
        for i in range(n):
            r = ref.rank_probe(dist[i], pl[i], gl, None if views[0] is None else pv[i], views[1])
            assert int(ranking.num_candidates[i]) == r["size"]
            assert int(ranking.first_match[i]) == r["positions"][0]
            assert int(ranking.last_match[i]) == r["positions"][-1]
            assert float(ranking.average_precision[i]) == pytest.approx(r["ap"], abs=1e-12)


def test_rank_distances_leaves_the_matrix_untouched():
    dist, pl, gl, pv, gv = _random_case(7)
    tensor = torch.from_numpy(dist.copy())
    rank_distances(tensor, pl, gl, pv, gv)
    assert torch.equal(tensor, torch.from_numpy(dist))


def test_rank_block_builds_its_own_index():
    dist, pl, gl, pv, gv = _random_case(8)
    codes_p, codes_g = encode(pl, gl)
    vp, vg = encode(pv, gv)
    block = rank_block(torch.from_numpy(dist), torch.from_numpy(codes_p), torch.from_numpy(codes_g),
                       torch.from_numpy(vp), torch.from_numpy(vg))
    whole = rank_distances(dist, pl, gl, pv, gv)
    for name in ("first_match", "last_match", "num_matches", "num_candidates"):
        assert torch.equal(getattr(block, name), getattr(whole, name))


def test_gallery_index_groups_and_validates():
    index = GalleryIndex.build(np.array([2, 0, 2, 1, 2]), 4)
    assert index.members.tolist() == [[1, 5, 5], [3, 5, 5], [0, 2, 4], [5, 5, 5], [5, 5, 5]]
    with pytest.raises(ValueError, match=r"label codes must lie in \[0, 2\)"):
        GalleryIndex.build(np.array([0, 2]), 2)


@pytest.mark.parametrize("seed", range(4))
def test_smallest_k_stable_equals_a_stable_sort(seed):
    rng = np.random.default_rng(seed)
    # coarse grid: ties everywhere, some rows entirely tied (forces the full-sort fallback)
    dist = torch.from_numpy(rng.integers(0, 4 if seed % 2 else 50, size=(40, 120)).astype(np.float32))
    dist[0] = 1.0
    dist[1, :60] = 0.5
    for k in (1, 5, 20, 120, 500):
        expected = torch.sort(dist, dim=1, stable=True).indices[:, : min(k, 120)]
        assert torch.equal(smallest_k_stable(dist, k), expected), k


@pytest.mark.parametrize("seed", range(3))
def test_nearest_in_slices_matches_loop(seed):
    rng = np.random.default_rng(seed)
    dist = torch.from_numpy(rng.integers(0, 5, size=(15, 20)).astype(np.float32))
    bounds = [0, 4, 4, 11, 20]  # second slice empty
    nearest = nearest_in_slices(dist, bounds).numpy()
    for i in range(15):
        for g in range(4):
            lo, hi = bounds[g], bounds[g + 1]
            expected = lo + int(np.argmin(dist[i, lo:hi].numpy())) if hi > lo else 20
            assert nearest[i, g] == expected


def test_float64_distances_keep_their_precision():
    """Differences below float32 resolution still order the gallery (no rounding to float32)."""
    dist = np.array([[1.0 + 2e-12, 1.0 + 1e-12, 1.0, 3.0]])
    ranking = rank_distances(dist, ["a"], ["b", "a", "b", "a"])
    assert ranking.first_match.tolist() == [2] and ranking.last_match.tolist() == [4]
    ranking = rank_distances(dist.astype(np.float32), ["a"], ["b", "a", "b", "a"])  # all three tie in float32
    assert ranking.first_match.tolist() == [2]
    ranking = rank_distances(np.array([[1.0 + 1e-12, 1.0]]), ["a"], ["a", "b"])
    assert ranking.first_match.tolist() == [2]
