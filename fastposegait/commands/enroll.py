"""``fastposegait enroll``: build or extend a gallery of identities.

Examples::

    # every test sequence of a dataset, identities from the subject folders
    fastposegait enroll data/synthetic-casia-b --partition data/synthetic-casia-b.json \\
        --run output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo --gallery gallery.npz
    # one person's walks under a name of your choice
    fastposegait enroll walks/alice/ --identity alice --run <run> --gallery gallery.npz
    # embeddings written earlier by fastposegait embed (no model needed)
    fastposegait enroll --from-embeddings test_embeddings.npz --gallery gallery.npz

An existing gallery is extended, after checking that the same model made it (model, metric,
embedding shape and a fingerprint of the weights; one error line otherwise). Each entry keeps
the sequence's name, type, view and source file as metadata.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError, GalleryError
from ._common import (INPUTS_HELP, add_input_options, add_model_options, embed_inputs, entries_of, load_recognizer,
                      model_info, read_inputs, say, selected, setup_cli_logging)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastposegait enroll",
        description="Add pose sequences (embedded with a trained model) or an embeddings file to a gallery, "
                    "creating it if needed.")
    parser.add_argument("inputs", nargs="*", help=INPUTS_HELP)
    parser.add_argument("--gallery", required=True, help="the gallery file (.npz) to create or extend")
    parser.add_argument("--identity", help="the identity of every sequence given (default: each sequence's subject "
                                           "folder in the dataset layout)")
    parser.add_argument("--from-embeddings", nargs="+", default=[], metavar="FILE",
                        help="embeddings files written by fastposegait embed, enrolled as they are")
    add_model_options(parser, required=False)
    add_input_options(parser)
    return parser


def identities_for(entries: Sequence[Dict[str, Any]], identity: Optional[str], where: str) -> List[str]:
    """``identity`` for every entry, else each entry's subject (one error naming the first
    entry without one)."""
    if identity is not None:
        return [identity] * len(entries)
    missing = next((e for e in entries if not e.get("subject")), None)
    if missing is not None:
        raise GalleryError(f"{where}: {missing.get('source') or missing['name']} has no subject (it is not in a "
                           "<subject>/<type>/<view> dataset layout); give its identity with --identity NAME")
    return [e["subject"] for e in entries]


def metadata_for(entries: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{k: e.get(k) for k in ("name", "type", "view", "source") if e.get(k) is not None} for e in entries]


def main(argv: List[str]) -> Optional[int]:
    args = build_parser().parse_args(argv)
    if not args.inputs and not args.from_embeddings:
        raise ConfigError("nothing to enroll: give pose sequences (with --run or --cfgs) or --from-embeddings FILE")
    if args.inputs and not (args.run or args.cfgs):
        raise ConfigError("pose sequences need a model to embed them: give --run <run folder> or --cfgs <config>")
    setup_cli_logging()
    from ..recognition.embedding_file import load_embeddings
    from ..recognition.gallery import Gallery

    path = Path(args.gallery)
    existed = path.exists()
    gallery = Gallery.load(path) if existed else None
    before = (len(gallery), len(gallery.identity_names)) if gallery is not None else (0, 0)
    batches = []  # (embeddings, entries, info, where)
    if args.inputs:
        items = read_inputs(args.inputs, args)  # bad inputs fail before the model is loaded
        rec = load_recognizer(args)
        info = model_info(rec)
        if gallery is not None:  # before embedding anything
            gallery.check_compatible(info, f"the model of {args.run or args.cfgs}")
        batches.append((embed_inputs(rec, items, args), entries_of(items), info, "inputs"))
    for name in args.from_embeddings:
        embeddings, entries, info = load_embeddings(name)
        keep = selected(entries, args, name)
        batches.append((embeddings[keep], [entries[i] for i in keep], info, name))
    for embeddings, entries, info, where in batches:
        if gallery is None:
            gallery = Gallery(info=info)
        else:
            gallery.check_compatible(info, where)
        gallery.enroll(np.asarray(embeddings), identities_for(entries, args.identity, where), metadata_for(entries))
    assert gallery is not None
    gallery.save(path)
    added = len(gallery) - before[0]
    verb = "extended" if existed else "created"
    say(f"{verb} {path}: +{added} entries, {len(gallery.identity_names) - before[1]} new identities; now "
        f"{len(gallery)} entries of {len(gallery.identity_names)} identities ({gallery.info.get('model')}, "
        f"metric {gallery.metric})")
    return 0
