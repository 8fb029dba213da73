"""``python -m fastposegait.converters <command> ...``: one command line for every dataset.

Conversions (parallel, resumable, atomic, summary at the end)::

    oumvlp     OUMVLP-Pose per-frame JSON      -> <out>/<id>/<type>/<view>/<view>.pkl (+ partition)
    oumvlp17   18-joint pickle tree            -> COCO-17 pickle tree
    grew       GREW train / gallery / probe    -> <id>train/00, <id>/01|02, probe/03 (+ partition)
    gait3d     Gait3D 2D_Poses + official split -> <id>/<camvid>/<seq>/<seq>.pkl (+ partition)
    custom     your COCO-format keypoint JSON  -> the layout (+ partition with a PROBE_SET)
    skeleton-maps  pose pickle tree            -> SkeletonGait map tree <out>/<dataset>_sigma_<s>_<ext>/pkl/...

Checks and partitions::

    validate          check any dataset root (and partition) for what the loader trips on
    casia-b-check     validate a CASIA-B pose root and write its partition (74 train / 50 test)
    oumvlp-partition  OUMVLP's rule (odd train, even test, 10307 test) as JSON
    grew-partition    GREW's partition from a converted tree, or the official rule

Before anything is converted, the paths are checked: ``--output`` must not be ``--input``, lie
inside it or hold it; ``--partition`` and ``--report`` must be files (not folders) that can be
written, outside the input. An existing partition file holding another partition is not
replaced without ``--overwrite``.

Exit status: 0 done, 1 stopped by a malformed file (``--on-error stop``), a conversion that
wrote nothing at all (every sequence without a usable frame) or validation errors, 2 unusable
input or options (one line naming the path and the fix).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from . import casiab, custom, gait3d, grew, oumvlp, skeleton_maps
from .partitions import (check_partition_target, is_remembered, oumvlp_partition, remember_partition, subjects_on_disk,
                         write_partition)
from ..errors import ConversionError, FastPoseGaitError, RawFileError, user_message
from .tasks import (EMPTY, EXISTS, ON_ERROR_CHOICES, WRITTEN, ConversionSummary, Task, check_separate_roots, is_within,
                    real_path, run_tasks, write_json)
from .validate import JOINT_FORMATS, ValidationReport, validate_root

PROG = "python -m fastposegait.converters"
PARTITION_NAME = "partition.json"


def _conversion_options() -> argparse.ArgumentParser:
    """The options every conversion command shares (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--input", "-i", required=True, help="raw dataset folder")
    common.add_argument("--output", "-o", required=True, help="dataset root to write (created if missing)")
    common.add_argument("--workers", "-j", type=int, default=1, help="parallel processes (default 1)")
    common.add_argument("--on-error", choices=ON_ERROR_CHOICES, default="skip",
                        help="a malformed file: skip its frame and go on (default), or stop the run")
    common.add_argument("--overwrite", action="store_true",
                        help="convert again sequences that an earlier run finished (default: skip them), and "
                             "replace an existing partition file that holds another partition (default: refuse)")
    common.add_argument("--fsync", action="store_true",
                        help="flush every written file to disk: slower, and protects finished files against "
                             "a machine crash too (a killed run never leaves partial files either way)")
    common.add_argument("--report", metavar="JSON", help="write a per-sequence report (frames, drops, choices)")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    return common


def _partition_option(parser: argparse.ArgumentParser) -> None:
    """``--partition``, for the conversions that write a partition next to their output."""
    parser.add_argument("--partition", metavar="JSON",
                        help=f"where to write the partition (default: <output>/{PARTITION_NAME})")


def _add_oumvlp(sub, common: argparse.ArgumentParser) -> None:
    """``oumvlp``: raw OUMVLP-Pose JSON, with the person-selection options."""
    p = sub.add_parser("oumvlp", parents=[common], help="OUMVLP-Pose JSON -> pickles",
                       description="OUMVLP-Pose per-frame OpenPose/AlphaPose JSON -> one pickle per sequence, "
                                   "<output>/<id>/<type>/<view>/<view>.pkl, with the walker chosen in crowded frames.")
    p.add_argument("--coco17", action="store_true", help="write COCO-17 instead of the raw 18 joints")
    p.add_argument("--selection", choices=oumvlp.SELECTION_CHOICES, default="auto",
                   help="person choice in crowded frames: auto = --selection-index if given, else --silhouettes "
                        "if given, else tracking; first = the original FastPoseGait script's people[0] (to "
                        "reproduce its pickles)")
    p.add_argument("--selection-index", metavar="DIR",
                   help="OpenGait's pose_selection_idx.pkl tree (<id>/<type>/<view>/pose_selection_idx.pkl)")
    p.add_argument("--silhouettes", metavar="DIR",
                   help="OU-MVLP silhouettes (<id>/<type>/<view>/<frame>.png or Silhouette_<view>-<type>/<id>/)")
    _partition_option(p)


def _add_oumvlp17(sub, common: argparse.ArgumentParser) -> None:
    """``oumvlp17``: an 18-joint pickle tree to COCO-17."""
    sub.add_parser("oumvlp17", parents=[common], help="18-joint pickles -> COCO-17 pickles",
                   description="Map every <id>/<type>/<view>/*.pkl of an 18-joint (OpenPose/AlphaPose) tree "
                               "to COCO-17: new joint i = old joint m[i], "
                               "m = [0,15,14,17,16,5,2,6,3,7,4,11,8,12,9,13,10].")


def _add_grew(sub, common: argparse.ArgumentParser) -> None:
    """``grew``: GREW's text files, one split or all of them."""
    p = sub.add_parser("grew", parents=[common], help="GREW _2d_pose.txt -> pickles",
                       description="GREW per-frame _2d_pose.txt files -> <id>train/00/<seq>, <id>/01|02/<seq>, "
                                   "probe/03/<seq> pickles, and the partition from the folders.")
    p.add_argument("--split", choices=("auto",) + grew.SPLITS, default="auto",
                   help="which split --input is (auto: from its name, or every split under the dataset root)")
    _partition_option(p)


def _add_gait3d(sub, common: argparse.ArgumentParser) -> None:
    """``gait3d``: Gait3D's text files plus its official split."""
    p = sub.add_parser("gait3d", parents=[common], help="Gait3D 2D_Poses -> pickles",
                       description="Gait3D 2D_Poses/<id>/<camvid>/<seq>/human_crop_f<frame>.txt -> "
                                   "<output>/<id>/<camvid>/<seq>/<seq>.pkl (frames in numeric order), and the "
                                   "partition from the official split file.")
    p.add_argument("--split-file", metavar="JSON", required=True,
                   help="Gait3D's official split: JSON with TRAIN_SET, TEST_SET, PROBE_SET (see docs)")
    _partition_option(p)


def _add_custom(sub, common: argparse.ArgumentParser) -> None:
    """``custom``: the user's own COCO-format keypoint JSON, with the options of its placement
    (layout, mapping) and of its partition strategies (split file, mapping column, random)."""
    p = sub.add_parser("custom", parents=[common], help="your own COCO-format keypoint JSON -> pickles",
                       description="Your own pose-estimator output (COCO-format keypoint JSON, one file per video "
                                   "or one per frame) -> <output>/<subject>/<type>/<view>/<view>.pkl, and a partition "
                                   "with a PROBE_SET (evaluate with eval_func: evaluate_Gait3D).")
    p.add_argument("--layout", choices=custom.LAYOUTS, default="video",
                   help="video: one JSON per video; frame: one folder per video, one JSON per frame")
    p.add_argument("--mapping", metavar="CSV|JSON", help="video,subject,type,view[,track][,split] per video")
    p.add_argument("--coco17", action="store_true", help="input is 18-joint OpenPose order: convert to COCO-17")
    p.add_argument("--split-file", metavar="JSON", help="TRAIN_SET / TEST_SET (optional PROBE_SET) subjects")
    p.add_argument("--test-fraction", type=float, default=0.5,
                   help="without a split file or split column: fraction of subjects to test (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random subject split")
    _partition_option(p)


def _add_skeleton_maps(sub, common: argparse.ArgumentParser) -> None:
    """``skeleton-maps``: render a pose tree into SkeletonGait's skeleton-map tree."""
    p = sub.add_parser("skeleton-maps", parents=[common], help="pose pickles -> SkeletonGait skeleton maps",
                       description="Render every <subject>/<type>/<view>/*.pkl pose sequence [T, 17 or 18, 3] into "
                                   "uint8 skeleton maps [T, 2, 64, 64] (limbs, joints), written to "
                                   "<output>/<dataset>_sigma_<sigma>_<ext-name>/pkl/<subject>/<type>/<view>/<file>. "
                                   "18-joint files are converted to COCO-17 first.")
    p.add_argument("--dataset", required=True,
                   help="dataset name for the output folder; GREW also accepts [T, 53] rows, SUSTech1K converts "
                        "only the 03*.pkl pose files")
    p.add_argument("--sigma", type=float, default=8.0, help="Gaussian sigma on the 128 canvas (default 8.0)")
    p.add_argument("--ext-name", default="", help="suffix of the output folder name (default empty)")


def _add_validate(sub) -> None:
    """``validate``: the dataset checker."""
    p = sub.add_parser("validate", help="check a dataset root (and partition) before training",
                       description="Check a dataset root: layout, pickles (safe loading, shape, dtype, NaN/inf, "
                                   "empty and one-frame sequences, joint counts, x/y/confidence channels), "
                                   "folders the loader rejects, partition. Hidden folders at the root (such "
                                   "as the loader's .fastposegait_cache) are skipped.")
    p.add_argument("--input", "-i", required=True, help="dataset root")
    p.add_argument("--partition", metavar="JSON", help="partition to check against the root")
    joints = p.add_mutually_exclusive_group()
    joints.add_argument("--joints", type=int, nargs="+", help="allowed joint counts, e.g. 17")
    joints.add_argument("--joint-format", choices=sorted(JOINT_FORMATS),
                        help="the dataset's keypoint format: coco = 17 joints, openpose or alphapose = 18 "
                             "(default: every pickle must have the most common joint count)")
    p.add_argument("--frame-threshold", type=int, default=0, help="report sequences data_cfg.frame_threshold drops")
    p.add_argument("--workers", "-j", type=int, default=1)
    p.add_argument("--report", metavar="JSON", help="write every issue as JSON")


def _add_casia_b_check(sub) -> None:
    """``casia-b-check``: validate the CASIA-B release and write its rule partition."""
    p = sub.add_parser("casia-b-check", help="validate CASIA-B pose pickles and write the partition",
                       description="Validate a CASIA-B pose root (<id>/<type>/<view>/<view>.pkl, 17 joints) and "
                                   "write its partition: the first 74 subjects train, the rest test.")
    p.add_argument("--input", "-i", required=True, help="CASIA-B pose root (<id>/<type>/<view>/<view>.pkl)")
    p.add_argument("--partition", metavar="JSON", default=None,
                   help=f"where to write the partition (default: <input>/{PARTITION_NAME})")
    p.add_argument("--num-train", type=int, default=74, help="first N subjects train (default 74)")
    _overwrite_partition_option(p)
    p.add_argument("--frame-threshold", type=int, default=0)
    p.add_argument("--workers", "-j", type=int, default=1)
    p.add_argument("--report", metavar="JSON")


def _add_partition_rules(sub) -> None:
    """``oumvlp-partition`` and ``grew-partition``: the official rules, optionally restricted
    to (or derived from) a converted tree."""
    p = sub.add_parser("oumvlp-partition", help="OUMVLP's partition rule as JSON")
    p.add_argument("--output", "-o", required=True, help="partition JSON to write")
    p.add_argument("--input", "-i", help="restrict to the subjects of this dataset root (default: all 10,307)")
    _overwrite_partition_option(p)
    p = sub.add_parser("grew-partition", help="GREW's partition from a converted tree (or the rule)")
    p.add_argument("--output", "-o", required=True, help="partition JSON to write")
    p.add_argument("--input", "-i", help="converted GREW root (default: the official 20,000 / 6,000 + probe rule)")
    _overwrite_partition_option(p)


def _overwrite_partition_option(parser: argparse.ArgumentParser) -> None:
    """``--overwrite`` of the commands that only write a partition."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing partition file that holds another partition (default: refuse; "
                             "the same content is fine)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, in the order ``--help`` lists them."""
    parser = argparse.ArgumentParser(prog=PROG, description="From raw pose annotations to training data: "
                                     "converters, partitions and a dataset checker.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Step-by-step guide: docs/process_dataset.md")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    common = _conversion_options()
    for add in (_add_oumvlp, _add_oumvlp17, _add_grew, _add_gait3d, _add_custom, _add_skeleton_maps):
        add(sub, common)
    for add_check in (_add_validate, _add_casia_b_check, _add_partition_rules):
        add_check(sub)
    return parser


# ----------------------------------------------------------------------------------------------
class NothingWritten(ConversionError):
    """A conversion ran and not one sequence has a pickle (none written, none from an earlier
    run): every sequence was without a usable frame. Exit status 1, like malformed data."""

    exit_code = 1


def _run(args: argparse.Namespace, tasks: List[Task], notes: Sequence[str] = ()) -> ConversionSummary:
    """Run a conversion's tasks with the common options; ``notes`` go to the summary.

    Raises:
        NothingWritten: no sequence has a pickle after the run (the summary is attached).
    """
    summary = run_tasks(tasks, args.command, workers=args.workers, on_error=args.on_error,
                        overwrite=args.overwrite, progress=not args.no_progress, fsync=args.fsync,
                        output_root=args.output)
    summary.notes.extend(notes)
    _require_output(summary)
    return summary


def _require_output(summary: ConversionSummary) -> None:
    """Refuse to end a conversion as done when it left no pickle at all: say so, with the
    counts and the drops that explain it (the summary above lists the files)."""
    if summary.count(WRITTEN) or summary.count(EXISTS):
        return
    read = sum(r.frames_read for r in summary.results)
    drops = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.dropped.items(), key=lambda kv: -kv[1]))
    why = f"{read} frames read" + (f", dropped: {drops}" if drops else "; no frame file was found")
    exc = NothingWritten(
        f"nothing was written: 0 of {len(summary.results)} sequences written, {summary.count(EMPTY)} without any "
        f"usable frame ({why}); fix or replace the input files (the summary above names them) and re-run"
    )
    exc.summary = summary  # type: ignore[attr-defined]
    raise exc


def _partition_path(args: argparse.Namespace) -> Path:
    """``--partition``, else ``partition.json`` in the output root (the loader ignores files there)."""
    return Path(args.partition) if args.partition else Path(args.output) / PARTITION_NAME


def _check_conversion_paths(args: argparse.Namespace) -> None:
    """Before anything is read or written: the output root apart from the input (not the same
    folder, not inside it, not holding it) and not a file; the partition (``--partition`` or
    the default) and ``--report`` writable files outside the input, neither one of the input
    files nor the same file."""
    check_separate_roots(args.input, args.output)
    out = Path(args.output).expanduser()
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise ConversionError(f"--output {args.output!r} exists and is not a folder; give the dataset root to write")
    _check_parent(out, "--output", args.output)
    outputs: Dict[str, Optional[Path | str]] = {"--report": args.report}
    if hasattr(args, "partition"):
        outputs["--partition" if args.partition else f"the partition (default <output>/{PARTITION_NAME})"] = \
            _partition_path(args)
    inputs = {"--split-file": getattr(args, "split_file", None), "--mapping": getattr(args, "mapping", None)}
    _check_output_files(outputs, inputs, input_root=args.input)


def _check_output_files(outputs: Dict[str, Optional[Path | str]], inputs: Optional[Dict[str, Optional[str]]] = None,
                        input_root: Optional[str] = None) -> None:
    """Each output file given (option -> path) must be writable: not a folder nor a FIFO or
    the like, in a folder that exists or can be created, not inside ``input_root``, not one
    of the ``inputs`` files and not the same file as another output.

    Raises:
        ConversionError: one line naming the option, the path and what is wrong.
    """
    seen: Dict[Path, str] = {}
    given_inputs = {real_path(p): opt for opt, p in (inputs or {}).items() if p}
    for option, path in outputs.items():
        if not path:
            continue
        p = Path(path).expanduser()
        if p.is_dir():
            raise ConversionError(f"{option} {str(path)!r} is a folder; give the path of a JSON file to write")
        if (p.exists() or p.is_symlink()) and not p.is_file():
            raise ConversionError(f"{option} {str(path)!r} exists and is not a regular file; remove it or choose "
                                  "another file")
        _check_parent(p.parent, option, path)
        if input_root is not None and is_within(p, input_root):
            raise ConversionError(f"{option} {str(path)!r} is inside the --input folder {input_root!r}: it would be "
                                  "written into the raw tree; write it outside the input")
        real = real_path(p)
        if real in given_inputs:
            raise ConversionError(f"{option} {str(path)!r} is the {given_inputs[real]} file; writing it would "
                                  "replace an input — choose another file")
        if real in seen:
            raise ConversionError(f"{option} and {seen[real]} are the same file {str(path)!r}; give them "
                                  "different files")
        seen[real] = option


def _check_parent(folder: Path, option: str, given: Path | str) -> None:
    """``folder`` exists as a writable folder, or can be created: its nearest existing
    ancestor is a folder this process may write in."""
    existing = real_path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConversionError(f"{option} {str(given)!r} cannot be written: {str(existing)!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConversionError(f"{option} {str(given)!r} cannot be written: no permission to write in "
                              f"{str(existing)!r}")


def _write_partition(args: argparse.Namespace, summary: ConversionSummary, partition: Dict[str, List[str]]) -> Path:
    """Write a conversion's partition, replacing a file that holds another one only with
    ``--overwrite`` or when an earlier conversion into this output wrote it (unchanged since);
    a refusal keeps the summary (the sequences are converted) and says how to write the
    partition alone."""
    path = _partition_path(args)
    try:
        write_partition(path, partition, overwrite=_may_replace_partition(args))
    except ConversionError as exc:
        refused = ConversionError(f"{exc}; the sequences are converted — re-running with --partition <another file> "
                                  "only writes the partition (--overwrite would also convert every sequence again)")
        refused.summary = summary  # type: ignore[attr-defined]
        raise refused from None
    remember_partition(path, args.output)
    return path


def _may_replace_partition(args: argparse.Namespace) -> bool:
    """``--overwrite``, or the partition file is the one an earlier conversion into this output
    wrote (unchanged since): converting GREW's splits one after the other grows it."""
    return args.overwrite or is_remembered(_partition_path(args), args.output)


def _cmd_oumvlp(args: argparse.Namespace) -> ConversionSummary:
    """``oumvlp``: convert, then write the official partition restricted to the converted subjects."""
    opts = oumvlp.OumvlpOptions(args.selection, args.selection_index, args.silhouettes, args.coco17)
    tasks, notes = oumvlp.plan(args.input, args.output, opts)
    summary = _run(args, tasks, notes)
    _write_oumvlp_partition(args, summary)
    return summary


def _write_oumvlp_partition(args: argparse.Namespace, summary: ConversionSummary) -> None:
    """Write OUMVLP's partition; subject folders that are not OUMVLP ids leave it unwritten
    (a note says why) rather than failing a finished conversion."""
    try:
        partition = oumvlp_partition(subjects_on_disk(args.output))
    except ConversionError as exc:
        summary.notes.append(f"partition not written: {exc}")
        return
    path = _write_partition(args, summary, partition)
    summary.notes.append(f"partition (odd ids train, even ids test, 10307 test): {path}")


def _cmd_oumvlp17(args: argparse.Namespace) -> ConversionSummary:
    """``oumvlp17``: map an 18-joint tree to COCO-17 (no partition: the subjects are unchanged)."""
    return _run(args, oumvlp.plan_18_to_17(args.input, args.output))


def _cmd_grew(args: argparse.Namespace) -> ConversionSummary:
    """``grew``: convert, then derive the partition from the converted folders."""
    summary = _run(args, grew.plan(args.input, args.output, args.split, args.overwrite))
    path = _write_partition(args, summary, grew.partition_from_tree(args.output))
    summary.notes.append(f"partition (from the converted folders): {path}")
    return summary


def _cmd_gait3d(args: argparse.Namespace) -> ConversionSummary:
    """``gait3d``: check the split file first (a bad one is refused before any conversion), convert,
    then write the split as the partition with notes on what it names but was not converted."""
    split = gait3d.read_split_file(args.split_file)  # fail before converting anything
    errors = gait3d.split_errors(split)
    if errors:
        raise ConversionError(f"{args.split_file}: " + "; ".join(errors[:5]))
    check_partition_target(_partition_path(args), split, _may_replace_partition(args))  # known now: check it now
    summary = _run(args, gait3d.plan(args.input, args.output))
    path = _write_partition(args, summary, split)
    summary.notes.extend(gait3d.split_notes(split, args.output))
    summary.notes.append(f"partition (from {args.split_file}): {path}")
    return summary


def _cmd_custom(args: argparse.Namespace) -> ConversionSummary:
    """``custom``: convert (the split file and report are not taken for videos), then write the
    partition of the converted videos."""
    exclude = [p for p in (args.split_file, args.report) if p]
    tasks, specs, notes = custom.plan(args.input, args.output, args.layout, args.mapping, args.coco17, exclude)
    summary = _run(args, tasks, notes)
    partition, part_notes = custom.make_partition(specs, args.output, args.split_file, args.test_fraction, args.seed)
    path = _write_partition(args, summary, partition)
    summary.notes.extend(part_notes)
    summary.notes.append(f"partition ({len(partition['TRAIN_SET'])} train / {len(partition['TEST_SET'])} test "
                         f"subjects, {len(partition['PROBE_SET'])} probes): {path}")
    return summary


def _cmd_skeleton_maps(args: argparse.Namespace) -> ConversionSummary:
    """``skeleton-maps``: render the maps (no partition: use the pose dataset's)."""
    tasks = skeleton_maps.plan(args.input, args.output, args.dataset, args.sigma, args.ext_name)
    folder = Path(args.output) / skeleton_maps.map_folder_name(args.dataset, args.sigma, args.ext_name) / "pkl"
    return _run(args, tasks, [f"dataset root for training: {folder} (partition: the pose dataset's)"])


def _finish_validation(report: ValidationReport, report_path: Optional[str]) -> int:
    """Print a validation report, write it as JSON if asked; exit 1 when it has errors."""
    print(report.format())
    if report_path:
        write_json(report_path, {"root": report.root, "ok": report.ok, "hidden_folders_skipped": report.hidden,
                                 "issues": [vars(i) for i in report.issues]})
    return 0 if report.ok else 1


def _cmd_validate(args: argparse.Namespace) -> int:
    """``validate``: check any dataset root (and partition)."""
    _check_output_files({"--report": args.report}, {"--partition": args.partition})
    report = validate_root(args.input, args.partition, args.workers, args.frame_threshold, args.joints,
                           args.joint_format)
    return _finish_validation(report, args.report)


def _cmd_casia_b_check(args: argparse.Namespace) -> int:
    """``casia-b-check``: write the CASIA-B rule partition (default: in the input root), then validate."""
    out = Path(args.partition) if args.partition else Path(args.input) / PARTITION_NAME
    _check_output_files({"--partition": out, "--report": args.report})
    report, written = casiab.check(args.input, out, args.num_train, args.workers, args.frame_threshold,
                                   overwrite=args.overwrite)
    print(f"partition (first {args.num_train} subjects train, the rest test): {written}")
    return _finish_validation(report, args.report)


def _cmd_oumvlp_partition(args: argparse.Namespace) -> int:
    """``oumvlp-partition``: the official rule, for every id or only the subjects of ``--input``."""
    _check_output_files({"--output": args.output})
    subjects = subjects_on_disk(args.input) if args.input else None
    partition = oumvlp_partition(subjects)
    path = write_partition(args.output, partition, overwrite=args.overwrite)
    print(f"{path}: {len(partition['TRAIN_SET'])} train / {len(partition['TEST_SET'])} test subjects")
    return 0


def _cmd_grew_partition(args: argparse.Namespace) -> int:
    """``grew-partition``: from a converted tree, or the official rule."""
    _check_output_files({"--output": args.output})
    partition = grew.partition_from_tree(args.input) if args.input else grew.rule_partition()
    path = write_partition(args.output, partition, overwrite=args.overwrite)
    print(f"{path}: {len(partition['TRAIN_SET'])} train / {len(partition['TEST_SET'])} test entries")
    return 0


_CONVERSIONS: Dict[str, Callable[[argparse.Namespace], ConversionSummary]] = {
    "oumvlp": _cmd_oumvlp,
    "oumvlp17": _cmd_oumvlp17,
    "grew": _cmd_grew,
    "gait3d": _cmd_gait3d,
    "custom": _cmd_custom,
    "skeleton-maps": _cmd_skeleton_maps,
}
_CHECKS: Dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": _cmd_validate,
    "casia-b-check": _cmd_casia_b_check,
    "oumvlp-partition": _cmd_oumvlp_partition,
    "grew-partition": _cmd_grew_partition,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 stopped/invalid data, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if args.command in _CHECKS:
            return _CHECKS[args.command](args)
        _check_conversion_paths(args)
        summary = _CONVERSIONS[args.command](args)
    except RawFileError as exc:
        return _stopped(args, exc)
    except FastPoseGaitError as exc:  # unusable input or options: one line naming the path and the fix
        _print_finished(args, getattr(exc, "summary", None))  # a conversion that ran: its summary first
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # an interruption: 128 + the signal's number
    except BrokenPipeError:  # the reader of the output went away (| head): fastposegait.cli ends quietly
        raise
    except OSError as exc:
        return _os_error(exc)
    return _print_summary(args, summary)


def _print_summary(args: argparse.Namespace, summary: ConversionSummary) -> int:
    """A finished conversion: print its summary and write ``--report`` if asked (exit 0)."""
    _print_finished(args, summary)
    return 0


def _print_finished(args: argparse.Namespace, summary: Optional[ConversionSummary]) -> None:
    """Print the summary of a conversion that ran (if any) and write its ``--report``."""
    if summary is None:
        return
    print(summary.format())
    if args.report:
        summary.write_json(args.report)


def _stopped(args: argparse.Namespace, exc: RawFileError) -> int:
    """A malformed file under ``--on-error stop`` (exit 1): the summary of what was finished
    before it (and its ``--report``), the file's message, and how to resume."""
    partial = getattr(exc, "summary", None)
    if partial is not None:
        print(partial.format())
        if args.report:
            partial.write_json(args.report)
    print(f"error: {exc}", file=sys.stderr)
    print("stopped (--on-error stop); sequences written so far are complete — fix or delete the file and "
          "re-run the same command to resume, or use --on-error skip", file=sys.stderr)
    return 1


def _os_error(exc: OSError) -> int:
    """Disk full, permission denied, ... (exit 2): the path and the reason in one line, no
    traceback, since the cause is the machine, not a bug."""
    where = f"{exc.filename}: " if exc.filename else ""
    print(f"error: {where}{exc.strerror or exc}; sequences written so far are complete — fix the cause "
          "and re-run the same command to resume", file=sys.stderr)
    return 2
