"""Joint formats: the limb groups agree with the joint names, and the tables built from them
(GPGait's body partitions, RescaleCenter's joint pairs) equal their published definitions."""
import pytest

from fastposegait.data.skeleton import COCO, COCO_NO_HEAD, OPENPOSE, get_joint_format

LIMB_JOINTS = {"arm": ("shoulder", "elbow", "wrist"), "leg": ("hip", "knee", "ankle")}


@pytest.mark.parametrize("fmt", [COCO, COCO_NO_HEAD, OPENPOSE], ids=lambda f: f.name)
def test_limb_groups_name_the_joints_they_hold(fmt):
    for side in ("left", "right"):
        for limb, joints in LIMB_JOINTS.items():
            names = [fmt.joint_names[j] for j in fmt.group(f"{side}_{limb}")]
            assert names == [f"{side}_{j}" for j in joints]
    if fmt is not COCO_NO_HEAD:
        head = {fmt.joint_names[j] for j in fmt.group("head")}
        assert head == {"nose", "left_eye", "right_eye", "left_ear", "right_ear"}
    with pytest.raises(KeyError, match="has no joint group 'tail'"):
        fmt.group("tail")


def test_index_and_lookup():
    assert COCO.index("right_hip") == 12 and OPENPOSE.index("neck") == 1
    assert get_joint_format("alphapose") is OPENPOSE
    with pytest.raises(ValueError, match="unknown joint_format 'h36m'"):
        get_joint_format("h36m")


@pytest.mark.parametrize("name, hint", [
    ("COCO", "; did you mean 'coco'?"), ("OpenPose", "; did you mean 'openpose'?"),
    ("coco_no_head", "; did you mean 'coco-no-head'?"), ("bogus", ""), (17, ""),
])
def test_unknown_joint_format_is_a_config_error_naming_the_valid_ones(name, hint):
    # before: a plain ValueError (a traceback from the command line) without a suggestion
    from fastposegait.errors import ConfigError
    from fastposegait.modeling.graph import spatial_adjacency

    with pytest.raises(ConfigError) as info:  # a model_cfg.joint_format reaches it this way
        spatial_adjacency(name)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (f"unknown joint_format {name!r}; valid formats: alphapose, coco, coco-no-head, "
                               f"openpose{hint}")


def test_gpgait_partitions_equal_the_published_definition():
    from fastposegait.modeling.layers.pagcn import PARTITIONS

    la, ra, ll, rl, head = (5, 7, 9), (6, 8, 10), (11, 13, 15), (12, 14, 16), (0, 1, 2, 3, 4)
    assert PARTITIONS["coco"] == (
        (tuple(range(17)),), (la, ra, ll, rl, head), (la + ra + head, ll + rl), (la + ra, ll + rl + head),
        (la + ra, ll + rl, head), (la + rl, ra + ll, head))
    la, ra, ll, rl = (0, 2, 4), (1, 3, 5), (6, 8, 10), (7, 9, 11)
    assert PARTITIONS["coco-no-head"] == ((tuple(range(12)),), (la, ra, ll, rl), (la + ra, ll + rl), (la + rl, ra + ll))


def test_rescale_centres_are_the_coco_joint_pairs():
    from fastposegait.data.transforms import RESCALE_CENTERS

    assert RESCALE_CENTERS == {"neck": (5, 6), "head": (1, 2), "hip": (11, 12)}
