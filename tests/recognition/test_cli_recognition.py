"""fastposegait embed / enroll / identify, in process, on a tiny synthetic dataset and a tiny
GaitGraph2 trained for 4 iterations: files, tables and JSON checked against the Python API and
a brute-force ranking; every bad input is one line."""
import json
import pickle

import numpy as np
import pytest
import torch

from cli_helpers import DEMO_CFG, TINY, schedule_overrides, synthetic_data_overrides
from fastposegait.config import load_config
from fastposegait.distributed import DistEnv
from fastposegait.engine.runner import Runner
from fastposegait.main import main
from fastposegait.recognition.embedding_file import load_embeddings
from fastposegait.recognition.gallery import Gallery
from fastposegait.recognition.inputs import read_sequences
from fastposegait.recognition.recognizer import GaitRecognizer

RUN = "output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder holding the tiny dataset (data/, partition.json) and a trained run (output/)."""
    base = tmp_path_factory.mktemp("cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        over = synthetic_data_overrides(base) + schedule_overrides(4, 4) + TINY["GaitGraph2"]["overrides"]
        trainer = Runner(load_config(DEMO_CFG, over), "train", DistEnv(), torch.device("cpu"))
        trainer.train()
        trainer.close()
    return base


@pytest.fixture
def here(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    return workdir


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err):
    """The one ``error:`` line, which must end stderr (log lines may precede it)."""
    lines = err.splitlines()
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], err
    return lines[-1]


def api_embeddings(*paths, **options):
    """The Python API's embeddings of the sequences of ``paths``, embedded in one call (as the
    command does: sequence i gets the test phase's key i)."""
    rec = GaitRecognizer.from_run(RUN, device="cpu")
    items = [i for path in paths for i in read_sequences(path, **options)]
    return rec.embed([i.arrays for i in items]), items


def brute_identity_distances(probe, embeddings, identities):
    """identity -> cosine distance (the demo's metric, float64) of its nearest entry."""
    def unit(x):
        return x / np.linalg.norm(x, axis=0, keepdims=True)

    d = np.array([1 - np.mean((unit(probe.astype(np.float64)) * unit(e.astype(np.float64))).sum(0))
                  for e in embeddings])
    return {i: min(d[j] for j in range(len(d)) if identities[j] == i) for i in dict.fromkeys(identities)}


def check_ranking(candidates, brute, k, tol=1e-6):
    """The answer lists min(k, identities) identities, each with its brute-force distance, in
    non-decreasing order, and no identity left out is nearer than the last one listed (the
    barely trained model puts identities within float32 rounding of each other, so the order
    is checked up to ``tol``)."""
    assert len(candidates) == min(k, len(brute))
    got = [c["distance"] for c in candidates]
    np.testing.assert_allclose(got, [brute[c["identity"]] for c in candidates], rtol=0, atol=tol)
    assert all(a <= b + tol for a, b in zip(got, got[1:]))
    left_out = [d for i, d in brute.items() if i not in {c["identity"] for c in candidates}]
    assert all(d >= got[-1] - tol for d in left_out)


def test_help_of_each_command(capsys):
    for name, words in (("embed", "--output"), ("enroll", "--from-embeddings"), ("identify", "--calibrate")):
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert f"fastposegait {name}" in out and words in out and "--run" in out and "--device" in out


def test_embed_enroll_identify(here, capsys, tmp_path):
    # embed the test split: the file holds what the API gives for the same sequences, in order
    code, out, _ = run(capsys, "embed", "data", "--partition", "partition.json", "--run", RUN, "-o", tmp_path / "e.npz",
                       "--no-progress")
    assert code == 0 and "40 embeddings" in out
    embeddings, entries, info = load_embeddings(tmp_path / "e.npz")
    expected, items = api_embeddings("data", partition="partition.json")
    np.testing.assert_array_equal(embeddings, expected)
    assert [e["name"] for e in entries] == [i.name for i in items]
    assert {e["subject"] for e in entries} == {"005", "006"}
    assert info["model"] == "GaitGraph2" and info["iteration"] == 4 and len(info["weights_sha256"]) == 64

    # enroll the nm sequences as the gallery (from the embeddings file: no model needed)
    gallery_path = tmp_path / "g.npz"
    code, out, _ = run(capsys, "enroll", "--from-embeddings", tmp_path / "e.npz", "--gallery", gallery_path)
    assert code == 0 and "created" in out and "40 entries of 2 identities" in out
    gallery = Gallery.load(gallery_path)
    assert gallery.identities == [e["subject"] for e in entries]
    assert gallery.metadata[0] == {"name": entries[0]["name"], "type": entries[0]["type"],
                                   "view": entries[0]["view"], "source": entries[0]["source"]}

    # identify two type folders; the JSON ranks as a brute-force loop over the gallery does
    answers = tmp_path / "a.json"
    code, out, _ = run(capsys, "identify", "data/005/bg-01", "data/006/cl-02", "--run", RUN, "--gallery",
                       gallery_path, "-k", "2", "--json", answers, "--no-progress")
    assert code == 0
    doc = json.loads(answers.read_text())
    probes, probe_items = api_embeddings("data/005/bg-01", "data/006/cl-02")
    assert [p["name"] for p in doc["probes"]] == [i.name for i in probe_items]
    correct = 0
    for probe, answer in zip(probes, doc["probes"]):
        check_ranking(answer["candidates"], brute_identity_distances(probe, gallery.embeddings, gallery.identities), 2)
        assert answer["decision"] == answer["candidates"][0]["identity"]
        entry = answer["candidates"][0]["entry"]
        assert gallery.identities[entry] == answer["decision"]
        assert answer["candidates"][0]["metadata"] == gallery.metadata[entry]
        correct += answer["decision"] == answer["subject"]
    assert doc["summary"]["rank1_correct"] == correct and doc["summary"]["probes_with_enrolled_subject"] == 4
    assert f"rank-1: {correct}/4" in out
    lines = out.splitlines()
    assert lines[0].split() == ["probe", "subject", "decision", "#1", "#2"]
    assert lines[2].split()[:3] == ["005/bg-01/000", "005", doc["probes"][0]["decision"]]


def test_enroll_sequences_and_extend_checks_the_model(here, capsys, tmp_path):
    gallery_path = tmp_path / "g.npz"
    code, out, _ = run(capsys, "enroll", "data/005", "--run", RUN, "--gallery", gallery_path, "--no-progress")
    assert code == 0 and "+20 entries, 1 new identities" in out
    walk = tmp_path / "walk.pkl"
    with open(walk, "wb") as f:
        pickle.dump(read_sequences("data/006/nm-01/000")[0].arrays[0], f)
    # a pickle outside the dataset layout has no subject: --identity names it
    code, _, err = run(capsys, "enroll", walk, "--run", RUN, "--gallery", gallery_path)
    assert code == 1 and "walk.pkl has no subject" in error_line(err) and "--identity" in err
    code, out, _ = run(capsys, "enroll", walk, "--identity", "visitor", "--run", RUN, "--gallery", gallery_path)
    assert code == 0 and "extended" in out and "now 21 entries of 2 identities" in out
    gallery = Gallery.load(gallery_path)
    assert gallery.identities[-1] == "visitor" and gallery.metadata[-1]["name"] == "walk"
    expected, _ = api_embeddings(walk)
    np.testing.assert_array_equal(gallery.embeddings[-1:], expected)
    # the untrained model (other weights) may not extend it
    code, _, err = run(capsys, "enroll", walk, "--identity", "x", "--run", RUN, "--iter", "0", "--gallery",
                       gallery_path)
    assert code == 1 and error_line(err).startswith("error: the model of") and "iteration: gallery 4 vs 0" in err
    assert len(Gallery.load(gallery_path)) == 21  # unchanged


def test_identify_open_set_threshold_and_far(here, capsys, tmp_path):
    gallery_path = tmp_path / "g.npz"
    assert run(capsys, "enroll", "data/005/nm-01", "data/005/nm-02", "data/001/nm-01", "--run", RUN, "--gallery",
               gallery_path, "--no-progress")[0] == 0
    gallery = Gallery.load(gallery_path)
    probes, _ = api_embeddings("data/006/bg-01")
    best = [r.best.distance for r in gallery.search(probes, k=1)]
    threshold = float(np.median(best))
    answers = tmp_path / "a.json"
    code, out, _ = run(capsys, "identify", "data/006/bg-01", "--run", RUN, "--gallery", gallery_path,
                       "--threshold", threshold, "--json", answers)
    assert code == 0
    doc = json.loads(answers.read_text())
    assert [p["decision"] == "unknown" for p in doc["probes"]] == [d >= threshold for d in best]
    assert doc["threshold"] == threshold
    # --far: the threshold the Gallery API picks on the same labelled sequences
    calibrate, items = api_embeddings("data/006")
    choice = gallery.threshold_for_far(calibrate, [i.subject for i in items], 0.1)
    code, out, _ = run(capsys, "identify", "data/006/bg-01", "--run", RUN, "--gallery", gallery_path,
                       "--far", "0.1", "--calibrate", "data/006", "--json", answers, "--no-progress")
    assert code == 0
    doc = json.loads(answers.read_text())
    assert doc["calibration"]["threshold"] == pytest.approx(choice.threshold, abs=0)
    assert doc["calibration"]["num_impostor_attempts"] == 20 and doc["calibration"]["far"] <= 0.1
    assert f"threshold {choice.threshold:.6g}" in out


@pytest.mark.parametrize("argv, message", [
    (["identify", "x", "--gallery", "g.npz", "--run", RUN, "--far", "0.1"], "--far needs labelled sequences"),
    (["identify", "--gallery", "g.npz"], "no probes"),
    (["identify", "x", "--gallery", "g.npz"], "need a model"),
    (["enroll", "--gallery", "g.npz"], "nothing to enroll"),
    (["embed", "data", "-o", "e.npz", "--run", RUN, "--checkpoint", "c.pt"], "--checkpoint goes with --cfgs"),
    (["embed", "nowhere", "-o", "e.npz", "--run", RUN], "nowhere does not exist"),
    (["embed", "data", "-o", "e.npz", "--run", "output/none"], "output/none: does not exist"),
    (["identify", "data/005/nm-01", "--gallery", "missing.npz", "--run", RUN], "missing.npz does not exist"),
])
def test_bad_arguments_are_one_line(here, capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 1 and message in error_line(err)


def test_bad_sequences_are_one_line(here, capsys, tmp_path):
    nan = tmp_path / "nan.pkl"
    walk = read_sequences("data/006/nm-01/000")[0].arrays[0].copy()
    walk[3, 2, 0] = np.nan
    with open(nan, "wb") as f:
        pickle.dump(walk, f)
    code, _, err = run(capsys, "embed", nan, "--run", RUN, "-o", tmp_path / "e.npz")
    assert code == 1 and "nan.pkl" in error_line(err) and "non-finite" in err
    wrong = tmp_path / "joints.pkl"
    with open(wrong, "wb") as f:
        pickle.dump(np.ones((10, 18, 3), np.float32), f)
    code, _, err = run(capsys, "embed", wrong, "--run", RUN, "-o", tmp_path / "e.npz")
    assert code == 1 and "joints.pkl" in error_line(err) and "18" in err
    not_a_gallery = tmp_path / "g.npz"
    not_a_gallery.write_bytes(pickle.dumps([1, 2]))
    code, _, err = run(capsys, "identify", wrong, "--run", RUN, "--gallery", not_a_gallery)
    assert code == 1 and "not a NumPy .npz archive" in error_line(err)
    assert not (tmp_path / "e.npz").exists()


def test_keypoint_json_probe(here, capsys, tmp_path):
    walk = read_sequences("data/005/nm-02/090")[0].arrays[0].astype(np.float64)
    anns = [{"image_id": i, "keypoints": frame.ravel().tolist(), "score": 0.9, "track_id": 1}
            for i, frame in enumerate(walk)]
    source = tmp_path / "cam.json"
    source.write_text(json.dumps(anns))
    gallery_path = tmp_path / "g.npz"
    assert run(capsys, "enroll", "data/005/nm-01", "data/006/nm-01", "--run", RUN, "--gallery", gallery_path,
               "--no-progress")[0] == 0
    code, out, _ = run(capsys, "identify", source, "--run", RUN, "--gallery", gallery_path, "-k", "1", "--json",
                       tmp_path / "a.json")
    assert code == 0 and out.splitlines()[2].startswith("cam ")
    answer = json.loads((tmp_path / "a.json").read_text())["probes"][0]
    expected, _ = api_embeddings("data/005/nm-02/090")  # the same poses as a pickle: the same answer
    gallery = Gallery.load(gallery_path)
    assert answer["candidates"][0]["identity"] == gallery.search(expected, k=1)[0].best.identity


def test_types_and_views_select_sequences_and_embeddings(here, capsys, tmp_path):
    assert run(capsys, "embed", "data", "--partition", "partition.json", "--run", RUN, "-o", tmp_path / "e.npz",
               "--no-progress")[0] == 0
    embeddings, entries, _ = load_embeddings(tmp_path / "e.npz")
    gallery_path = tmp_path / "g.npz"
    code, out, _ = run(capsys, "enroll", "--from-embeddings", tmp_path / "e.npz", "--types", "nm-0[1-2]",
                       "--gallery", gallery_path)
    assert code == 0 and "+8 entries" in out  # 2 subjects x 2 types x 2 views
    gallery = Gallery.load(gallery_path)
    keep = [i for i, e in enumerate(entries) if e["type"] in ("nm-01", "nm-02")]
    np.testing.assert_array_equal(gallery.embeddings, embeddings[keep])
    answers = tmp_path / "a.json"
    code, out, _ = run(capsys, "identify", "--from-embeddings", tmp_path / "e.npz", "--types", "bg-*", "cl-01",
                       "--views", "090", "--gallery", gallery_path, "--json", answers)
    assert code == 0
    names = [p["name"] for p in json.loads(answers.read_text())["probes"]]
    assert names == [e["name"] for e in entries if e["view"] == "090" and e["type"] in ("bg-01", "bg-02", "cl-01")]
    # the same selection from the dataset folder: the same sequences
    code, out, _ = run(capsys, "embed", "data", "--partition", "partition.json", "--types", "bg-*", "cl-01",
                       "--views", "090", "--run", RUN, "-o", tmp_path / "f.npz", "--no-progress")
    assert code == 0 and [e["name"] for e in load_embeddings(tmp_path / "f.npz")[1]] == names
    code, _, err = run(capsys, "enroll", "--from-embeddings", tmp_path / "e.npz", "--types", "xx-*", "--gallery",
                       gallery_path)
    assert code == 1 and "no sequence has a type matching --types xx-*" in error_line(err)
