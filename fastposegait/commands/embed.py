"""``fastposegait embed``: pose sequences in, an embeddings file out.

Examples::

    fastposegait embed data/synthetic-casia-b --partition data/synthetic-casia-b.json \\
        --run output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo -o test_embeddings.npz
    fastposegait embed my_walk.json --cfgs configs/demo/gaitgraph2_demo.yaml --iter 400 -o walk.npz

The file is the safe ``.npz`` of galleries (no pickle): float32 ``[N, C, P]`` embeddings, each
sequence's name (and subject/type/view when the dataset layout gives them) and the model's
info. ``fastposegait enroll --from-embeddings`` turns it into a gallery;
``fastposegait.recognition.embedding_file.load_embeddings`` reads it in Python.
"""
from __future__ import annotations

import argparse
from typing import List, Optional

from ._common import (INPUTS_HELP, add_input_options, add_model_options, embed_inputs, entries_of, load_recognizer,
                      model_info, read_inputs, say, setup_cli_logging)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastposegait embed",
        description="Embed pose sequences with a trained model (the test phase's sampling, transforms and TTA) "
                    "and write them to a .npz embeddings file.")
    parser.add_argument("inputs", nargs="+", help=INPUTS_HELP)
    parser.add_argument("-o", "--output", required=True, help="the embeddings file to write (.npz)")
    add_model_options(parser)
    add_input_options(parser)
    return parser


def main(argv: List[str]) -> Optional[int]:
    args = build_parser().parse_args(argv)
    setup_cli_logging()
    from ..recognition.embedding_file import save_embeddings

    items = read_inputs(args.inputs, args)  # bad inputs fail before the model is loaded
    rec = load_recognizer(args)
    embeddings = embed_inputs(rec, items, args)
    save_embeddings(args.output, embeddings, entries_of(items), model_info(rec))
    c, p = embeddings.shape[1:]
    say(f"wrote {args.output}: {len(items)} embeddings [C={c}, P={p}] ({rec.info['model']}, metric {rec.metric})")
    return 0
