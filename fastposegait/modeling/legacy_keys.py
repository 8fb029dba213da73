"""State-dict key names this project used before its models took upstream's names.

Checkpoints written by earlier versions of FastPoseGait name the tensors of GaitGraph1,
GaitGraph2, GaitTR and GPGait differently from upstream FastPoseGait (whose names the models
use now, so checkpoints move both ways). :func:`translate_legacy_key` maps an old name to
today's; the mapping is one-to-one and keeps every shape. The checkpoint loader
(``fastposegait.engine.checkpoint``) uses it to load such files, and reorders their optimizer
state, because the parameter order changed too (GaitTR's spatial BatchNorm and GPGait's
branches and paths are registered in upstream's order now).

Old name -> today's (upstream's) name:

=====================================================  =============================================
``backbone.input_branches.<i>.``                       ``ResGCN.head.<i>.`` (GaitGraph1/2)
``backbone.main_stream.<i>.``                          ``ResGCN.backbone.<i>.``
``backbone.fcn.``                                      ``ResGCN.fcn.``
``backbone.<i>.rs.``                                   ``backbone.<i>.residual_s.`` (GaitTR)
``.st.attention.qkv.`` / ``.st.attention.proj.``       ``.st.attention_conv.qkv_conv.`` / ``.attn_out.``
``bnnecks.``                                           ``BNNecks.`` (GPGait)
``<branch>.paths.<path>.blocks.<i>.``                  ``<branch>.<path>.<i>.``
``.gcn.`` / ``.residual.`` of a PAGCN block            ``.asg.`` / ``.residual_s.``
=====================================================  =============================================

Today's GaitGraph models also save a copy of the graph adjacency per input branch
(``ResGCN.head.<i>.A``), which old files lack; it is a constant, taken from the model.
"""
from __future__ import annotations

import re
from typing import Callable, List, Mapping, Tuple, TypeVar

__all__ = ["translate_legacy_key", "translate_legacy_keys", "is_legacy_state", "to_legacy_key"]

V = TypeVar("V")

_GPGAIT_BRANCH = r"(pose|bone|angle)"
_PAGCN_BLOCK = rf"^({_GPGAIT_BRANCH}\.(layer_share\.\d+|[a-z0-9_]+\.\d+))\."

# applied in order; each rule is (pattern, replacement) on the whole key
_RULES: Tuple[Tuple[re.Pattern, str], ...] = tuple((re.compile(p), r) for p, r in (
    # GaitGraph1 / GaitGraph2 (ResGCN)
    (r"^backbone\.input_branches\.(\d+)\.", r"ResGCN.head.\1."),
    (r"^backbone\.main_stream\.(\d+)\.", r"ResGCN.backbone.\1."),
    (r"^backbone\.fcn\.", r"ResGCN.fcn."),
    # GaitTR
    (r"^(backbone\.\d+)\.rs\.", r"\1.residual_s."),
    (r"^(backbone\.\d+\.st)\.attention\.qkv\.", r"\1.attention_conv.qkv_conv."),
    (r"^(backbone\.\d+\.st)\.attention\.proj\.", r"\1.attention_conv.attn_out."),
    # GPGait
    (r"^bnnecks\.", r"BNNecks."),
    (rf"^{_GPGAIT_BRANCH}\.paths\.([a-z0-9_]+)\.blocks\.(\d+)\.", r"\1.\2.\3."),
    (_PAGCN_BLOCK + r"gcn\.", r"\1.asg."),
    (_PAGCN_BLOCK + r"residual\.", r"\1.residual_s."),
))

# the inverse, today's name -> old name (tests write old-named files with it); the adjacency
# copies ``ResGCN.head.<i>.A`` have no old name
_INVERSE_RULES: Tuple[Tuple[re.Pattern, str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"^ResGCN\.head\.(\d+)\.", r"backbone.input_branches.\1."),
    (r"^ResGCN\.backbone\.(\d+)\.", r"backbone.main_stream.\1."),
    (r"^ResGCN\.fcn\.", r"backbone.fcn."),
    (r"^(backbone\.\d+)\.residual_s\.", r"\1.rs."),
    (r"^(backbone\.\d+\.st)\.attention_conv\.qkv_conv\.", r"\1.attention.qkv."),
    (r"^(backbone\.\d+\.st)\.attention_conv\.attn_out\.", r"\1.attention.proj."),
    (r"^BNNecks\.", r"bnnecks."),
    (_PAGCN_BLOCK + r"asg\.", r"\1.gcn."),
    (_PAGCN_BLOCK + r"residual_s\.", r"\1.residual."),
    (rf"^{_GPGAIT_BRANCH}\.(backbone|part_2|part_2_2|part_3_1)\.(\d+)\.", r"\1.paths.\2.blocks.\3."),
))

# keys only the old names have (a state dict holding one of them is an old one)
_LEGACY_MARKS = re.compile(
    r"^backbone\.(input_branches|main_stream|fcn)\.|^backbone\.\d+\.(rs\.|st\.attention\.)|^bnnecks\."
    rf"|^{_GPGAIT_BRANCH}\.(paths\.|layer_share\.\d+\.gcn\.)"
)


def translate_legacy_key(key: str) -> str:
    """Today's name of a tensor an old checkpoint calls ``key`` (``key`` itself if unchanged).

    Meant for keys of a state dict :func:`is_legacy_state` recognises: today's names of other
    models may look like old ones (GPGait++'s ``pose.layer_share.0.residual`` is current)."""
    for pattern, replacement in _RULES:
        key = pattern.sub(replacement, key)
    return key


def to_legacy_key(key: str) -> str:
    """The name an old checkpoint gave today's tensor ``key`` (inverse of :func:`translate_legacy_key`)."""
    for pattern, replacement in _INVERSE_RULES:
        key = pattern.sub(replacement, key)
    return key


def is_legacy_state(keys: Mapping[str, object] | List[str]) -> bool:
    """Whether a state dict (or its keys) uses the old names."""
    return any(_LEGACY_MARKS.search(k) for k in keys)


def translate_legacy_keys(state: Mapping[str, V],
                          rename: Callable[[str], str] = translate_legacy_key) -> "dict[str, V]":
    """``state`` with every key renamed by ``rename`` (to today's name), in the same order."""
    renamed = {rename(k): v for k, v in state.items()}
    if len(renamed) != len(state):  # never happens for this project's old files: the mapping is one-to-one
        raise ValueError("two keys of the state dict map to the same new name")
    return renamed
