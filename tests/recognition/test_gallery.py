"""Gallery: search against a brute-force loop (both metrics, several parts, ties, k beyond the
identities, blocks that split identities), the open-set decision, save/load, hostile files, and
threshold_for_far against an exhaustive search over thresholds."""
import io
import math
import pickle
import zipfile

import numpy as np
import pytest

from fastposegait.errors import GalleryError, MissingFileError
from fastposegait.recognition import gallery as gallery_module
from fastposegait.recognition.gallery import UNKNOWN, Gallery


def brute_distance(a, b, metric):
    """Float64 reference of the evaluators' distance between two [C, P] embeddings."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    if metric == "euc":
        return float(np.mean(np.sqrt(((a - b) ** 2).sum(0))))
    an = a / np.maximum(np.linalg.norm(a, axis=0), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=0), 1e-12)
    return float(1 - np.mean((an * bn).sum(0)))


def brute_search(probe, embeddings, identities, metric, k):
    """Walk the entries in stable (distance, index) order; keep each identity's first entry."""
    d = np.array([brute_distance(probe, e, metric) for e in embeddings])
    out = []
    for j in np.argsort(d, kind="stable"):
        if identities[j] not in [o[0] for o in out]:
            out.append((identities[j], int(j), d[j]))
    return out[:k]


def random_gallery(rng, n=60, c=5, p=3, ids=9, metric="euc"):
    emb = rng.normal(size=(n, c, p)).astype(np.float32)
    identities = [f"id{int(i)}" for i in rng.integers(0, ids, n)]
    g = Gallery(metric=metric)
    g.enroll(emb, identities, [{"n": i} for i in range(n)])
    return g, emb, identities


@pytest.mark.parametrize("metric", ["euc", "cos"])
@pytest.mark.parametrize("p", [1, 3])
@pytest.mark.parametrize("blocks", [False, True])
def test_search_matches_brute_force(metric, p, blocks, monkeypatch):
    if blocks:  # tiny blocks: identities split across blocks, several probe chunks
        monkeypatch.setattr(gallery_module, "PAIRS_PER_BLOCK", 13)
        monkeypatch.setattr(gallery_module, "MAX_PROBES_PER_CHUNK", 2)
    rng = np.random.default_rng(p + (metric == "cos") * 10)
    g, emb, identities = random_gallery(rng, p=p, metric=metric)
    probes = rng.normal(size=(7, 5, p)).astype(np.float32)
    k = 20  # more than the 9 identities: all of them come back
    results = g.search(probes, k=k)
    assert len(results) == 7
    for probe, result in zip(probes, results):
        expected = brute_search(probe, emb, identities, metric, k)
        assert len(result.candidates) == len(set(identities)) == len(expected)
        assert [c.identity for c in result.candidates] == [e[0] for e in expected]
        assert [c.entry for c in result.candidates] == [e[1] for e in expected]
        np.testing.assert_allclose([c.distance for c in result.candidates], [e[2] for e in expected],
                                   rtol=1e-5, atol=1e-5)
        assert [c.metadata for c in result.candidates] == [{"n": e[1]} for e in expected]
        assert result.decision == expected[0][0]


def test_search_top3_of_many_identities_matches_brute_force():
    rng = np.random.default_rng(5)
    g, emb, identities = random_gallery(rng, n=200, ids=150, metric="cos")
    probes = rng.normal(size=(4, 5, 3)).astype(np.float32)
    for probe, result in zip(probes, g.search(probes, k=3)):
        expected = brute_search(probe, emb, identities, "cos", 3)
        assert [(c.identity, c.entry) for c in result.candidates] == [e[:2] for e in expected]


def test_ties_go_to_the_lower_entry_euc():
    # hand example: probe at the origin; distances are exact (sqrt of integers)
    g = Gallery(metric="euc")
    g.enroll(np.array([[[3.0], [4.0]], [[0.0], [5.0]], [[1.0], [0.0]], [[0.0], [-5.0]], [[4.0], [3.0]]]),
             ["b", "a", "c", "a", "d"])
    result = g.search(np.zeros((1, 2, 1)), k=4)[0]
    assert [(c.identity, c.entry, c.distance) for c in result.candidates] == [
        ("c", 2, 1.0), ("b", 0, 5.0), ("a", 1, 5.0), ("d", 4, 5.0)]
    # the same walk from a brute-force loop
    expected = brute_search(np.zeros((2, 1)), g.embeddings, g.identities, "euc", 4)
    assert [(c.identity, c.entry) for c in result.candidates] == [e[:2] for e in expected]


def test_ties_go_to_the_lower_entry_cos():
    one_hot = np.eye(3, dtype=np.float32)[:, :, None]  # [3, C=3, P=1]
    g = Gallery(metric="cos")
    g.enroll(np.concatenate([one_hot[1:2], one_hot[0:1] * 2, one_hot[0:1], one_hot[2:3]]), ["x", "y", "z", "w"])
    result = g.search(one_hot[0], k=4)[0]  # y and z at 0 (y first: lower entry), x and w at 1
    assert [(c.identity, c.entry, c.distance) for c in result.candidates] == [
        ("y", 1, 0.0), ("z", 2, 0.0), ("x", 0, 1.0), ("w", 3, 1.0)]


def test_open_set_decision_threshold_is_strict():
    g = Gallery(metric="euc")
    g.enroll(np.array([[[1.0]], [[4.0]]]), ["near", "far"])
    probe = np.zeros((1, 1, 1))
    assert g.search(probe, k=1, threshold=1.0)[0].decision == UNKNOWN  # distance == threshold: rejected
    assert g.search(probe, k=1, threshold=1.0000001)[0].decision == "near"
    assert g.search(probe, k=1)[0].decision == "near"
    assert g.search(probe, k=1, threshold=0.5)[0].to_dict() == {
        "decision": UNKNOWN, "threshold": 0.5,
        "candidates": [{"identity": "near", "distance": 1.0, "entry": 0, "metadata": {}}]}


def test_enroll_checks(tmp_path):
    g = Gallery(info={"model": "M", "metric": "cos", "embedding_shape": [4, 2]})
    with pytest.raises(GalleryError, match=r"\[C, P\] = \[4, 1\].*holds \[4, 2\]"):
        g.enroll(np.zeros((2, 4, 1)), ["a", "b"])
    with pytest.raises(GalleryError, match="2 given for 3 embeddings"):
        g.enroll(np.ones((3, 4, 2)), ["a", "b"])
    with pytest.raises(GalleryError, match="open-set answer"):
        g.enroll(np.ones((1, 4, 2)), [UNKNOWN])
    with pytest.raises(GalleryError, match="NaN"):
        g.enroll(np.full((1, 4, 2), np.nan), "a")
    with pytest.raises(GalleryError, match="JSON-able"):
        g.enroll(np.ones((1, 4, 2)), "a", {"when": object()})
    with pytest.raises(GalleryError, match="empty"):
        g.search(np.ones((1, 4, 2)))
    assert len(g) == 0  # nothing half-enrolled
    assert list(g.enroll(np.ones((4, 2)), "a")) == [0]  # one [C, P] embedding
    with pytest.raises(GalleryError, match="metric"):
        Gallery(info={"model": "M"})
    with pytest.raises(GalleryError, match="at least 1"):
        g.search(np.ones((1, 4, 2)), k=0)


def test_check_compatible_names_the_difference():
    g = Gallery(info={"model": "GaitGraph2", "metric": "cos", "embedding_shape": [8, 1], "iteration": 400,
                      "checkpoint": "output/a/checkpoints/GG2-400.pt", "dataset_name": "D"})
    g.check_compatible({"model": "GaitGraph2", "metric": "cos", "embedding_shape": [8, 1], "iteration": 400,
                        "checkpoint": "/elsewhere/GG2-400.pt", "dataset_name": "D"})  # same file name: fine
    with pytest.raises(GalleryError, match="iteration: gallery 400 vs 200"):
        g.check_compatible({"model": "GaitGraph2", "metric": "cos", "embedding_shape": [8, 1], "iteration": 200})
    with pytest.raises(GalleryError, match="model: gallery 'GaitGraph2' vs 'GPGait'"):
        g.check_compatible({"model": "GPGait", "metric": "cos"})
    # weights fingerprints, when both have one, decide over the checkpoint's name
    g.info["weights_sha256"] = "abc"
    g.check_compatible({"model": "GaitGraph2", "metric": "cos", "iteration": 1, "weights_sha256": "abc"})
    with pytest.raises(GalleryError, match="weights_sha256"):
        g.check_compatible({"model": "GaitGraph2", "metric": "cos", "weights_sha256": "abd"})


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    g, emb, identities = random_gallery(rng, metric="cos")
    g.info.update({"model": "GPGait", "checkpoint": "x.pt", "iteration": 3})
    path = tmp_path / "g.npz"
    g.save(path)
    h = Gallery.load(path)
    assert np.array_equal(h.embeddings, emb) and h.embeddings.dtype == np.float32
    assert h.identities == identities and h.metadata == g.metadata and h.info == g.info
    assert h.metric == "cos" and h.embedding_shape == (5, 3)
    probes = rng.normal(size=(3, 5, 3)).astype(np.float32)
    assert [r.to_dict() for r in h.search(probes, 4)] == [r.to_dict() for r in g.search(probes, 4)]
    # the file is the documented one: two uncompressed members, JSON document
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["document.npy", "embeddings.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    with np.load(path, allow_pickle=False) as f:
        import json
        doc = json.loads(f["document"].tobytes())
    assert doc["format"] == "fastposegait-gallery" and doc["version"] == 1 and doc["identities"] == identities
    # extending a loaded gallery keeps searching right
    h.enroll(emb[:1] * 3, "new")
    assert h.search(emb[:1] * 3, k=1)[0].decision in ("new", identities[0])


class Boom:
    """Unpickling this creates a marker file: a load that runs code would leave it behind."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _savez(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _doc(**extra):
    import json
    doc = {"format": "fastposegait-gallery", "version": 1, "info": {"metric": "euc"},
           "identities": ["a"], "metadata": [{}]}
    doc.update(extra)
    return np.frombuffer(json.dumps(doc).encode(), np.uint8)


def hostile_files(tmp_path, marker):
    Boom.marker = marker
    good = np.ones((1, 2, 1), np.float32)
    files = {}
    files["pickle renamed"] = tmp_path / "pickle.npz"
    files["pickle renamed"].write_bytes(pickle.dumps({"embeddings": Boom()}))
    files["object array"] = tmp_path / "object.npz"
    _savez(files["object array"], embeddings=np.array([Boom()], dtype=object), document=_doc())
    files["object document"] = tmp_path / "objdoc.npz"
    _savez(files["object document"], embeddings=good, document=np.array([Boom()], dtype=object))
    files["2-D embeddings"] = tmp_path / "flat.npz"
    _savez(files["2-D embeddings"], embeddings=np.ones((1, 2), np.float32), document=_doc())
    files["float64"] = tmp_path / "f64.npz"
    _savez(files["float64"], embeddings=good.astype(np.float64), document=_doc())
    files["identities length"] = tmp_path / "ids.npz"
    _savez(files["identities length"], embeddings=good, document=_doc(identities=["a", "b"]))
    files["NaN"] = tmp_path / "nan.npz"
    _savez(files["NaN"], embeddings=np.full((1, 2, 1), np.nan, np.float32), document=_doc())
    files["extra member"] = tmp_path / "extra.npz"
    _savez(files["extra member"], embeddings=good, document=_doc(), other=good)
    files["compressed"] = tmp_path / "zip.npz"
    with open(files["compressed"], "wb") as f:
        np.savez_compressed(f, embeddings=good, document=_doc())
    files["newer version"] = tmp_path / "v9.npz"
    _savez(files["newer version"], embeddings=good, document=_doc(version=9))
    files["embeddings file"] = tmp_path / "emb.npz"
    _savez(files["embeddings file"], embeddings=good, document=_doc(format="fastposegait-embeddings"))
    files["not JSON"] = tmp_path / "notjson.npz"
    _savez(files["not JSON"], embeddings=good, document=np.frombuffer(b"{not json", np.uint8))
    files["bad metric"] = tmp_path / "metric.npz"
    _savez(files["bad metric"], embeddings=good, document=_doc(info={"metric": "l1"}))
    whole = tmp_path / "whole.npz"
    _savez(whole, embeddings=np.ones((50, 8, 2), np.float32), document=_doc(identities=["a"] * 50,
                                                                           metadata=[{}] * 50))
    data = whole.read_bytes()
    files["truncated"] = tmp_path / "truncated.npz"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"] = tmp_path / "empty.npz"
    files["empty"].write_bytes(b"")
    # a member whose header declares a far bigger array than it holds
    files["lying header"] = tmp_path / "lying.npz"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 6, 128, 1)})
    with zipfile.ZipFile(files["lying header"], "w") as z:
        z.writestr("embeddings.npy", buf.getvalue() + b"\0" * 64)
        z.writestr("document.npy", _npy_bytes(_doc()))
    return files


def _npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_good_file_of_the_hostile_set_loads(tmp_path):
    path = tmp_path / "ok.npz"
    _savez(path, embeddings=np.ones((1, 2, 1), np.float32), document=_doc())
    assert Gallery.load(path).identities == ["a"]


@pytest.mark.parametrize("case", ["pickle renamed", "object array", "object document", "2-D embeddings", "float64",
                                  "identities length", "NaN", "extra member", "compressed", "newer version",
                                  "embeddings file", "not JSON", "bad metric", "truncated", "empty", "lying header"])
def test_hostile_files_are_refused_in_one_line_without_running_code(tmp_path, case):
    marker = tmp_path / "code-ran"
    path = hostile_files(tmp_path, marker)[case]
    with pytest.raises(GalleryError) as info:
        Gallery.load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert not marker.exists()


def test_missing_gallery_file(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        Gallery.load(tmp_path / "nope.npz")


# ---------------------------------------------------------------------------------- thresholds
def line_gallery():
    """Embeddings on a line (C = P = 1, euc): distance = |x - y|, easy to compute by hand."""
    g = Gallery(metric="euc")
    g.enroll(np.array([0.0, 10.0, 1.0])[:, None, None], ["A", "B", "A"])
    return g


def brute_threshold(genuine, impostor, target):
    """The largest threshold t (among the scores and +inf) with #(impostor < t) / n <= target."""
    n = len(impostor)
    best = None
    for t in sorted(set(impostor.tolist()) | {math.inf, 0.0}):
        if np.count_nonzero(impostor < t) / n <= target:
            best = t
    return best


def test_threshold_for_far_hand_example():
    g = line_gallery()
    # probe positions and labels; impostor = nearest entry of another identity
    probes = np.array([0.5, 9.0, 4.0, 6.0, 20.0])[:, None, None]
    labels = ["A", "B", "A", "C", "B"]
    # impostor scores: A@0.5 -> B 9.5; B@9 -> A(1) 8; A@4 -> B 6; C@6 -> nearest of all, B 4; B@20 -> A(1) 19
    # genuine scores: 0.5, 1, 3, -, 10
    choice = g.threshold_for_far(probes, labels, 0.2)  # n = 5: one false accept allowed -> t = s_2 = 6
    assert choice.threshold == 6.0
    assert (choice.num_impostor_attempts, choice.num_false_accepts, choice.far) == (5, 1, 0.2)
    assert (choice.num_genuine, choice.num_true_accepts) == (4, 3)  # 0.5, 1, 3 < 6; 10 is not
    assert choice.true_accept_rate == 0.75
    assert choice.num_rank1 == 3 and choice.rank1_rate == 0.75
    assert g.threshold_for_far(probes, labels, 0.0).threshold == 4.0  # below the smallest impostor score
    assert g.threshold_for_far(probes, labels, 1.0).threshold == math.inf
    assert g.threshold_for_far(probes, labels, 1.0).to_dict()["threshold"] is None


def test_threshold_ties_are_rejected_together():
    g = Gallery(metric="euc")
    g.enroll(np.array([0.0, 10.0])[:, None, None], ["A", "B"])
    probes = np.array([5.0, 5.0, 5.0, 1.0])[:, None, None]  # three impostor scores tie at 5
    choice = g.threshold_for_far(probes, ["A", "A", "B", "A"], 0.5)  # allows 2 of 4, but the tie is 3
    assert choice.threshold == 5.0 and choice.num_false_accepts == 0 and choice.far == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_threshold_for_far_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    positions = rng.integers(0, 30, 12).astype(np.float64)  # integers: many tied distances
    ids = [f"s{int(i)}" for i in rng.integers(0, 4, 12)]
    g = Gallery(metric="euc")
    g.enroll(positions[:, None, None], ids)
    probes = rng.integers(0, 30, 25).astype(np.float64)
    labels = [f"s{int(i)}" for i in rng.integers(0, 5, 25)]  # s4 is never enrolled
    genuine, impostor, rank1_ok = [], [], []
    for x, label in zip(probes, labels):
        d = np.abs(positions - x)
        own = [d[j] for j in range(12) if ids[j] == label]
        other = [d[j] for j in range(12) if ids[j] != label]
        impostor.append(min(other))
        if own:
            genuine.append(min(own))
            by_id = {i: min(d[j] for j in range(12) if ids[j] == i) for i in dict.fromkeys(ids)}
            best = min(by_id, key=lambda i: (by_id[i], min(j for j in range(12) if ids[j] == i and d[j] == by_id[i])))
            rank1_ok.append((best == label, by_id[best]))
    impostor, genuine = np.array(impostor), np.array(genuine)
    for target in (0.0, 0.04, 0.1, 0.3, 0.5, 0.99, 1.0):
        choice = g.threshold_for_far(probes[:, None, None], labels, target)
        t = brute_threshold(genuine, impostor, target)
        assert choice.threshold == t
        assert choice.num_false_accepts == np.count_nonzero(impostor < t)
        assert choice.far <= target
        assert choice.num_true_accepts == np.count_nonzero(genuine < t)
        assert choice.num_rank1 == sum(ok and d < t for ok, d in rank1_ok)


def test_threshold_for_far_input_errors():
    g = line_gallery()
    with pytest.raises(GalleryError, match="between 0 and 1"):
        g.threshold_for_far(np.zeros((1, 1, 1)), ["A"], 1.5)
    with pytest.raises(GalleryError, match="1 probe identities for 2"):
        g.threshold_for_far(np.zeros((2, 1, 1)), ["A"], 0.1)
    solo = Gallery(metric="euc")
    solo.enroll(np.zeros((1, 1, 1)), "A")
    with pytest.raises(GalleryError, match="no impostor attempt"):
        solo.threshold_for_far(np.zeros((2, 1, 1)), ["A", "A"], 0.1)
