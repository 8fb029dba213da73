"""``fastposegait identify``: rank a gallery's identities for probe sequences.

Examples::

    fastposegait identify walk.json --run <run> --gallery gallery.npz -k 5
    # open set: "unknown" when the nearest identity is at distance >= 0.35
    fastposegait identify probes/ --run <run> --gallery gallery.npz --threshold 0.35 --json answers.json
    # open set with the threshold that gives a 1% false-accept rate on labelled sequences
    fastposegait identify probes/ --run <run> --gallery gallery.npz --far 0.01 --calibrate labelled_walks/

Prints a table (probe, decision, the k nearest identities with the distance of each one's
nearest entry) and, with ``--json``, writes every answer with the gallery's info and the
calibration. When the probes' subjects are known (dataset layout), the rank-1 rate over the
probes whose subject is enrolled is printed too.
"""
from __future__ import annotations

import argparse
import json
import math
from typing import Any, Dict, List, Optional

import numpy as np

from ..errors import ConfigError, GalleryError, OutputDirError
from ._common import (INPUTS_HELP, add_input_options, add_model_options, embed_inputs, entries_of, format_table,
                      load_recognizer, model_info, read_inputs, say, selected, setup_cli_logging)

#: the table shows at most this many rows (the JSON has them all)
MAX_TABLE_ROWS = 200


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastposegait identify",
        description="Rank the identities of a gallery for probe pose sequences (or an embeddings file): a table "
                    "on stdout and, with --json, a JSON file.")
    parser.add_argument("inputs", nargs="*", help=INPUTS_HELP)
    parser.add_argument("--gallery", required=True, help="the gallery file (.npz) made by fastposegait enroll")
    parser.add_argument("-k", "--top-k", type=int, default=5, help="identities listed per probe (default 5)")
    open_set = parser.add_mutually_exclusive_group()
    open_set.add_argument("--threshold", type=float,
                          help="open set: answer 'unknown' when the nearest identity's distance is >= this")
    open_set.add_argument("--far", type=float,
                          help="open set: choose the threshold whose false-accept rate on --calibrate is at most "
                               "this (e.g. 0.01)")
    parser.add_argument("--calibrate", nargs="+", default=[], metavar="INPUT",
                        help="with --far: labelled sequences (dataset layout: the subject folder is the identity) "
                             "whose false-accept rate sets the threshold")
    parser.add_argument("--from-embeddings", metavar="FILE", help="probe embeddings written by fastposegait embed")
    parser.add_argument("--json", metavar="FILE", help="write every answer to this JSON file")
    add_model_options(parser, required=False)
    add_input_options(parser)
    return parser


def _check_args(args: argparse.Namespace) -> None:
    if not args.inputs and not args.from_embeddings:
        raise ConfigError("no probes: give pose sequences (with --run or --cfgs) or --from-embeddings FILE")
    needs_model = bool(args.inputs or args.calibrate)
    if needs_model and not (args.run or args.cfgs):
        raise ConfigError("pose sequences need a model to embed them: give --run <run folder> or --cfgs <config>")
    if args.top_k < 1:
        raise ConfigError(f"-k must be at least 1, got {args.top_k}")
    if args.far is not None and not args.calibrate:
        raise ConfigError("--far needs labelled sequences to measure it on: add --calibrate <inputs>")
    if args.calibrate and args.far is None:
        raise ConfigError("--calibrate goes with --far <rate>")
    if args.far is not None and not 0 <= args.far <= 1:
        raise ConfigError(f"--far must be between 0 and 1, got {args.far}")
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise ConfigError(f"--threshold must be a finite number, got {args.threshold}")


def main(argv: List[str]) -> Optional[int]:
    args = build_parser().parse_args(argv)
    _check_args(args)
    setup_cli_logging()
    from ..recognition.embedding_file import load_embeddings
    from ..recognition.gallery import Gallery

    gallery = Gallery.load(args.gallery)
    # bad inputs fail before the model is loaded
    items = read_inputs(args.inputs, args) if args.inputs else []
    labelled = read_inputs(args.calibrate, args) if args.calibrate else []
    labels = labels_or_error(entries_of(labelled), "--calibrate") if labelled else []
    rec = None
    probes, entries = [], []
    if args.inputs or args.calibrate:
        rec = load_recognizer(args)
        gallery.check_compatible(model_info(rec), f"the model of {args.run or args.cfgs}")
    if items:
        probes.append(embed_inputs(rec, items, args))
        entries += entries_of(items)
    if args.from_embeddings:
        embeddings, file_entries, info = load_embeddings(args.from_embeddings)
        gallery.check_compatible(info, args.from_embeddings)
        keep = selected(file_entries, args, args.from_embeddings)
        probes.append(embeddings[keep])
        entries += [file_entries[i] for i in keep]
    probe_array = np.concatenate(probes)
    calibration = None
    threshold = args.threshold
    if args.far is not None:
        calibration = gallery.threshold_for_far(embed_inputs(rec, labelled, args), labels, args.far)
        threshold = calibration.threshold
        say(f"calibration on {len(labelled)} labelled sequences: threshold {threshold:.6g} gives FAR "
            f"{calibration.far:.4f} ({calibration.num_false_accepts}/{calibration.num_impostor_attempts} impostor "
            f"attempts; target {args.far}), true accepts {calibration.true_accept_rate:.2%}, open-set rank-1 "
            f"{calibration.rank1_rate:.2%} of {calibration.num_genuine} enrolled probes")
    results = gallery.search(probe_array, k=args.top_k, threshold=threshold)
    say(_table(entries, results))
    summary = _summary(entries, results, gallery)
    if summary["probes_with_enrolled_subject"]:
        say(f"rank-1: {summary['rank1_correct']}/{summary['probes_with_enrolled_subject']} probes whose subject is "
            f"enrolled ({summary['rank1_rate']:.2%})" + (
                f"; accepted and correct: {summary['accepted_correct']}" if threshold is not None else ""))
    if args.json:
        _write_json(args, gallery, entries, results, threshold, calibration, summary)
        say(f"wrote {args.json}")
    return 0


def _table(entries: List[Dict[str, Any]], results: list) -> str:
    with_subject = any(e.get("subject") for e in entries)
    k = max((len(r.candidates) for r in results), default=0)
    header = ["probe"] + (["subject"] if with_subject else []) + ["decision"] + [f"#{i + 1}" for i in range(k)]
    rows = []
    for e, r in list(zip(entries, results))[:MAX_TABLE_ROWS]:
        cells = [e["name"]] + ([e.get("subject") or "-"] if with_subject else []) + [r.decision]
        cells += [f"{c.identity} {c.distance:.4g}" for c in r.candidates]
        rows.append(cells + [""] * (len(header) - len(cells)))
    text = format_table(header, rows)
    if len(results) > MAX_TABLE_ROWS:
        text += f"\n... {len(results) - MAX_TABLE_ROWS} more probes (all in --json)"
    return text


def _summary(entries: List[Dict[str, Any]], results: list, gallery: Any) -> Dict[str, Any]:
    enrolled = set(gallery.identity_names)
    known = [(e, r) for e, r in zip(entries, results) if e.get("subject") in enrolled]
    correct = sum(1 for e, r in known if r.best.identity == e["subject"])
    accepted = sum(1 for e, r in known if r.decision == e["subject"])
    return {"probes": len(results), "probes_with_enrolled_subject": len(known), "rank1_correct": correct,
            "rank1_rate": correct / len(known) if known else None, "accepted_correct": accepted,
            "unknown": sum(1 for r in results if r.decision == "unknown")}


def _write_json(args: argparse.Namespace, gallery: Any, entries: List[Dict[str, Any]], results: list,
                threshold: Optional[float], calibration: Any, summary: Dict[str, Any]) -> None:
    from ..data.io import atomic_write

    document = {
        "gallery": str(args.gallery), "gallery_info": gallery.info, "k": args.top_k,
        "threshold": threshold if threshold is None or math.isfinite(threshold) else None,
        "calibration": calibration.to_dict() if calibration is not None else None,
        "summary": summary,
        "probes": [dict(e, **r.to_dict()) for e, r in zip(entries, results)],
    }
    text = json.dumps(document, indent=1) + "\n"
    try:
        atomic_write(args.json, lambda f: f.write(text.encode("utf-8")))
    except OSError as exc:
        raise OutputDirError(f"{args.json}: cannot write ({exc.strerror or exc}); choose a writable path") from None


def labels_or_error(entries: List[Dict[str, Any]], where: str) -> List[str]:
    missing = next((e for e in entries if not e.get("subject")), None)
    if missing is not None:
        raise GalleryError(f"{where}: {missing.get('source') or missing['name']} has no subject; calibration needs "
                           "labelled sequences in the <subject>/<type>/<view> layout (or <subject>/<video>.json)")
    return [e["subject"] for e in entries]
