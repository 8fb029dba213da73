"""Small test sets for every evaluator kind, and their results as the results JSON holds them."""
from __future__ import annotations

import json

import numpy as np
import torch

from fastposegait.engine.runner import _jsonable
from fastposegait.evaluation import (GREW_submission, evaluate_CCPG, evaluate_Gait3D, evaluate_indoor_dataset,
                                     evaluate_real_scene)
from fastposegait.evaluation.ccpg import CCPG_TYPES


def _data(rng, subjects, types, views, dim=8):
    labels, typs, vies = [], [], []
    for s in subjects:
        for t in types:
            for v in views:
                labels.append(s)
                typs.append(t)
                vies.append(v)
    # subject-dependent features plus noise, so the numbers are neither all 0 nor all 100
    centres = {s: rng.normal(size=dim) for s in subjects}
    feats = np.stack([centres[s] + 0.9 * rng.normal(size=dim) for s in labels]).astype(np.float32)
    return {"embeddings": torch.from_numpy(feats)[:, :, None], "labels": labels, "types": typs, "views": vies}


def as_json(results):
    """What the test phase writes (NaN -> null) read back."""
    return json.loads(json.dumps(_jsonable(results)))


def casia_b(cross_view=False, seed=0):
    rng = np.random.default_rng(seed)
    types = [f"nm-0{i}" for i in range(1, 7)] + ["bg-01", "bg-02", "cl-01", "cl-02"]
    data = _data(rng, ["001", "002", "003", "004"], types, ["000", "090", "180"])
    return as_json(evaluate_indoor_dataset(data, "CASIA-B", metric="euc", cross_view_gallery=cross_view))


def sustech1k(seed=1):
    rng = np.random.default_rng(seed)
    data = _data(rng, ["0001", "0002", "0003", "0004", "0005", "0006"], ["00-nm", "01-nm", "02-bg"], ["000", "090"])
    return as_json(evaluate_indoor_dataset(data, "SUSTech1K", metric="euc"))


def ccpg(seed=2):
    rng = np.random.default_rng(seed)
    data = _data(rng, ["001", "002", "003", "004"], list(CCPG_TYPES), ["01_1", "02_1", "03_2"])
    return as_json(evaluate_CCPG(data, "CCPG", metric="euc"))


def grew(seed=3):
    rng = np.random.default_rng(seed)
    data = _data(rng, [f"{i:05d}" for i in range(12)], ["01", "02"], ["v"])
    return as_json(evaluate_real_scene(data, "GREW", metric="euc"))


def gait3d(tmp_path, seed=4):
    rng = np.random.default_rng(seed)
    data = _data(rng, [f"{i:04d}" for i in range(6)], ["a", "b", "c"], ["x"])
    partition = tmp_path / "gait3d.json"
    probes = [f"{i:04d}-a-x" for i in range(6)]
    partition.write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": [], "PROBE_SET": probes}))
    return as_json(evaluate_Gait3D(data, "Gait3D", metric="euc", dataset_partition=str(partition)))


def grew_submission(tmp_path, seed=5):
    rng = np.random.default_rng(seed)
    data = _data(rng, [f"{i:05d}" for i in range(3)], ["01", "02", "03"], ["vid"])
    return as_json(GREW_submission(data, "GREW", metric="euc", output_dir=str(tmp_path)))
