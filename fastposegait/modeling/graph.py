"""Adjacency tensors of a skeleton graph (ST-GCN "distance" partition).

A[k] holds the column-normalised connections between joints exactly k hops apart
(k = 0..max_hop), so A has shape ``[max_hop + 1, V, V]``. Built once per model and stored as
a buffer; the original rebuilds it and moves it to CUDA inside forward
(docs/upstream_differences.md, "Graph and part masks built once"). See docs/models.md#adjacency-a.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.skeleton import get_joint_format


def hop_distance(num_joints: int, edges, max_hop: int) -> np.ndarray:
    """Shortest hop count between joints (``inf`` beyond ``max_hop``)."""
    adj = np.eye(num_joints)
    for i, j in edges:
        adj[i, j] = adj[j, i] = 1
    dist = np.full((num_joints, num_joints), np.inf)
    reach = [np.linalg.matrix_power(adj, d) > 0 for d in range(max_hop + 1)]
    for d in range(max_hop, -1, -1):
        dist[reach[d]] = d
    return dist


def spatial_adjacency(joint_format: str, max_hop: int = 2) -> torch.Tensor:
    """The ``[max_hop + 1, V, V]`` float32 adjacency of ``joint_format``."""
    fmt = get_joint_format(joint_format)
    dist = hop_distance(fmt.num_joints, fmt.edges, max_hop)
    binary = (dist <= max_hop).astype(np.float64)
    degree = binary.sum(axis=0)
    norm = binary / np.where(degree > 0, degree, 1.0)[None, :]  # B . D^-1 (column sums)
    A = np.stack([np.where(dist == hop, norm, 0.0) for hop in range(max_hop + 1)])
    return torch.from_numpy(A.astype(np.float32))
