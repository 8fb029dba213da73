"""Transforms of map sequences (skeleton maps or silhouettes): cutting, flips, perspective, rotation."""
