"""The registered SkeletonMap transform: equal to the exact renderer, imputation over the whole
sequence through the collator's hook (also when the transforms run on the device), the device
twin against the worker path, packed batches, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from worked_example import R_WRIST, worked_example_poses

from fastposegait.data.collate import BatchCollator, sequence_preparer
from fastposegait.data.device_transforms import DeviceTransforms, device_generator
from fastposegait.data.frames import FrameSampler
from fastposegait.data.skeleton import OPENPOSE_TO_COCO
from fastposegait.data.skeleton_maps.exact import render_sequence
from fastposegait.data.skeleton_maps.transform import SkeletonMap
from fastposegait.data.transforms import NoOperation, build_transform, build_transforms
from fastposegait.errors import ConfigError, PoseFileError
from fastposegait.registry import TRANSFORMS


class FixedFrames:
    """A frame sampler that always takes the given frames (stacked batches)."""

    mode = "fixed"

    def __init__(self, frames):
        self.frames = np.asarray(frames, dtype=np.int64)

    def __call__(self, length, rng):
        return self.frames


def collate(transforms, sequences, frame_sampler, preparers=None):
    n = len(sequences)
    rngs = [np.random.default_rng(i) for i in range(n)]
    return BatchCollator(frame_sampler, transforms, preparers)([[s] for s in sequences], [0] * n, ["nm-01"] * n,
                                                               ["090"] * n, rngs)


def walk(seed: int, frames: int = 16) -> np.ndarray:
    """A float32 synthetic walk with every joint detected (nothing to impute)."""
    import fastposegait.data.synthetic as syn

    rng = np.random.default_rng(seed)
    subject = syn.sample_subject(rng)
    detector = syn.DetectorParams(miss_prob=0.0, miss_prob_occluded=0.0)
    poses = syn.simulate_walk(subject, syn.Condition(), syn.CASIA_B_RIG.camera(90.0), frames, rng, detector=detector)
    assert (poses[..., :2] != 0).all()  # nothing to impute
    return poses


def test_registered_and_equal_to_the_exact_renderer():
    transform = build_transform({"type": "SkeletonMap"})
    assert isinstance(transform, SkeletonMap) and TRANSFORMS.get("SkeletonMap") is SkeletonMap
    poses = worked_example_poses()
    maps = transform(transform.prepare_sequence(poses))
    assert maps.dtype == np.float32 and maps.shape == (4, 2, 64, 64)
    assert np.array_equal(maps, render_sequence(poses).astype(np.float32))
    assert repr(transform) == "SkeletonMap(sigma=8.0, quantise=True, joint_format='coco')"


def test_openpose_order_is_reindexed():
    coco = worked_example_poses()
    openpose = np.zeros((4, 18, 3))
    openpose[:, OPENPOSE_TO_COCO] = coco
    openpose[:, 1] = (coco[:, 5] + coco[:, 6]) / 2  # the neck, dropped
    transform = SkeletonMap(joint_format="openpose")
    reference = SkeletonMap()
    assert np.array_equal(transform(transform.prepare_sequence(openpose)), reference(reference.prepare_sequence(coco)))


def test_collator_imputes_from_frames_that_are_not_sampled():
    """Frame 2 lost its right wrist; only frame 2 is sampled. The wrist is imputed from frames
    0, 1, 3 (272.167, 210), which moves nothing drawn (confidence 0) but is in the
    collated maps exactly as in the offline maps of the whole sequence."""
    poses = worked_example_poses()
    batch = collate([SkeletonMap()], [poses], FixedFrames([2]))
    expected = render_sequence(poses)[2:3].astype(np.float32)
    assert np.array_equal(batch.inputs[0][0].numpy(), expected)
    # without the hook the frame alone cannot be imputed (its wrist stays at (0, 0), which
    # stretches the extent used for scaling): the maps differ
    alone = render_sequence(poses[2:3]).astype(np.float32)
    assert not np.array_equal(alone, expected)
    no_hook = collate([SkeletonMap()], [poses], FixedFrames([2]), preparers=[None])
    assert np.array_equal(no_hook.inputs[0][0].numpy(), alone)


def test_hook_of_a_chain_is_its_first_member():
    chain = build_transform([{"type": "SkeletonMap"}, {"type": "NoOperation"}])
    assert sequence_preparer(chain) is not None
    assert sequence_preparer(build_transform([{"type": "NoOperation"}])) is None
    with pytest.raises(ConfigError, match="must be the first transform"):
        sequence_preparer(build_transform([{"type": "NoOperation"}, {"type": "SkeletonMap"}]),
                          "trainer_cfg.transform[0]")


def test_device_twin_equals_the_worker_path():
    sequences = [walk(seed) for seed in range(3)]
    sampler = FrameSampler("fixed_ordered", frames_num_fixed=6, frames_skip_num=2)
    on_worker = collate([SkeletonMap()], sequences, sampler)
    # transform_on: device: the workers keep only the hook (what build_loader does)
    raw = collate([NoOperation()], sequences, sampler, preparers=[SkeletonMap().prepare_sequence])
    assert raw.inputs[0].shape == (3, 6, 17, 3)
    on_device = DeviceTransforms([{"type": "SkeletonMap"}], seed=0)(raw, key=0)
    assert on_device.inputs[0].shape == on_worker.inputs[0].shape == (3, 6, 2, 64, 64)
    assert torch.equal(on_device.inputs[0], on_worker.inputs[0])


def test_device_twin_with_imputed_joints_within_one_grey_level():
    """Imputed coordinates are float64; the collator rounds them to float32 before the device."""
    sequences = [worked_example_poses()] * 2
    on_worker = collate([SkeletonMap()], sequences, FixedFrames([0, 1, 2, 3]))
    raw = collate([NoOperation()], sequences, FixedFrames([0, 1, 2, 3]), preparers=[SkeletonMap().prepare_sequence])
    twin = SkeletonMap().batched(raw.inputs[0], device_generator(0, 0, 0, torch.device("cpu")))
    assert (twin - on_worker.inputs[0]).abs().max().item() <= 1


def test_packed_batches_concatenate_along_time():
    sequences = [worked_example_poses(), worked_example_poses()[:3]]
    batch = collate(build_transforms([{"type": "SkeletonMap"}]), sequences, FrameSampler("all_ordered"))
    assert batch.inputs[0].shape == (1, 7, 2, 64, 64)
    assert batch.seq_lengths.tolist() == [[4, 3]]
    assert np.array_equal(batch.inputs[0][0, :4].numpy(), render_sequence(sequences[0]).astype(np.float32))


def test_bad_input_and_arguments():
    transform = SkeletonMap()
    with pytest.raises(PoseFileError, match="got 15 joints"):
        transform(np.zeros((4, 15, 3)))
    with pytest.raises(PoseFileError, match=r"\[T, V, 3\]"):
        transform(np.zeros((4, 17, 2)))
    with pytest.raises(PoseFileError, match="NaN or inf"):
        transform.prepare_sequence(np.full((4, 17, 3), np.nan))
    with pytest.raises(PoseFileError, match=r"\[B, T, V, 3\]"):
        transform.batched(torch.zeros(2, 4, 15, 3))
    for kwargs, message in (({"sigma": 0}, "sigma"), ({"quantise": "yes"}, "quantise"),
                            ({"joint_format": "h36m"}, "joint_format")):
        with pytest.raises(ConfigError, match=message):
            build_transform({"type": "SkeletonMap", **kwargs}, "trainer_cfg.transform")


def test_unquantised_option_keeps_floats():
    poses = worked_example_poses()
    transform = SkeletonMap(quantise=False)
    maps = transform(transform.prepare_sequence(poses))
    exact = render_sequence(poses).astype(np.float32)
    assert not np.array_equal(maps, np.trunc(maps))
    assert np.abs(maps - exact).max() < 3


@pytest.mark.parametrize("transform_on", ["worker", "device"])
def test_loader_runs_the_hook_in_both_modes(tmp_path, transform_on):
    """The loader keeps the chain's whole-sequence hook when the transforms move to the device:
    the workers' raw batch holds the imputed wrist of frame 2 (272.167, 210), not (0, 0)."""
    import json

    from fastposegait.data.dataset import PoseDataset
    from fastposegait.data.io import save_pickle
    from fastposegait.data.loader import build_loader

    root = tmp_path / "poses"
    for subject in ("001", "002"):
        for kind in ("nm-01", "nm-02"):
            save_pickle(root / subject / kind / "090" / "090.pkl", worked_example_poses())
    partition = tmp_path / "partition.json"
    partition.write_text(json.dumps({"TRAIN_SET": ["001", "002"], "TEST_SET": ["001"]}))
    dataset = PoseDataset(root, partition, training=True, frame_threshold=1, data_in_use=[True])
    sampler_cfg = {"type": "TripletSampler", "batch_size": [2, 2], "sample_type": "fixed_ordered",
                   "frames_num_fixed": 4, "frames_skip_num": 0}
    loader = build_loader(dataset, sampler_cfg, [{"type": "SkeletonMap"}], training=True, seed=0,
                          transform_on=transform_on)
    batch = next(iter(loader))
    if transform_on == "device":
        assert batch.inputs[0].shape == (4, 4, 17, 3)
        assert batch.inputs[0][:, 2, R_WRIST, :2].tolist() == [[pytest.approx(272.167, abs=1e-3), 210.0]] * 4
    else:
        expected = torch.from_numpy(render_sequence(worked_example_poses()).astype(np.float32))
        assert batch.inputs[0].shape == (4, 4, 2, 64, 64)
        assert all(torch.equal(maps, expected) for maps in batch.inputs[0])
