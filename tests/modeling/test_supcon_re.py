"""SupConLoss_Re against a per-anchor reference written with explicit Python loops."""
import math

import pytest
import torch
import torch.nn.functional as F

from fastposegait.modeling.losses import LossAggregator
from fastposegait.modeling.losses.supcon import SupConLossRe
from fastposegait.registry import LOSSES


def reference_supcon(features, labels, temperature, base_temperature=0.07):
    """Khosla et al.'s loss, one anchor at a time, straight from the definition."""
    n, views, _ = features.shape
    rows = [(features[i, v].double(), int(labels[i])) for v in range(views) for i in range(n)]
    total, anchors = 0.0, 0
    for a, (fa, la) in enumerate(rows):
        sims = [float(fa @ fb) / temperature for fb, _ in rows]
        denominator = sum(math.exp(s) for b, s in enumerate(sims) if b != a)
        positives = [b for b, (_, lb) in enumerate(rows) if b != a and lb == la]
        if not positives:
            continue
        mean_log_prob = sum(sims[p] - math.log(denominator) for p in positives) / len(positives)
        total += -(temperature / base_temperature) * mean_log_prob
        anchors += 1
    return total / anchors if anchors else 0.0


@pytest.mark.parametrize("views,temperature,labels", [
    (2, 0.5, [0, 0, 1, 2, 1, 3]),
    (2, 0.1, [0, 1, 2, 3, 4, 5]),   # every positive is the anchor's other view
    (3, 1.0, [2, 2, 2, 0, 0]),
    (1, 0.3, [0, 0, 1, 1, 1, 2]),   # label 2 has no positive: left out of the mean
])
def test_matches_brute_force_reference(views, temperature, labels):
    torch.manual_seed(len(labels) + views)
    features = F.normalize(torch.randn(len(labels), views, 8), dim=-1)
    labels = torch.tensor(labels)
    loss, info = SupConLossRe(temperature=temperature)(features, labels)
    expected = reference_supcon(features, labels, temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert info["loss"].item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_small_temperature_is_stable():
    """GaitGraph1 uses t = 0.01: logits up to 100 must not overflow (row max is subtracted)."""
    torch.manual_seed(1)
    features = F.normalize(torch.randn(6, 2, 16), dim=-1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    loss, _ = SupConLossRe(temperature=0.01)(features, labels)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(reference_supcon(features, labels, 0.01), rel=1e-5)


def test_hand_computed_two_samples():
    """Two samples, two views, all four rows orthogonal except view pairs identical:
    each anchor's only positive is its copy (sim 1/t), negatives have sim 0."""
    t = 0.5
    e0, e1 = torch.eye(2)
    features = torch.stack([torch.stack([e0, e0]), torch.stack([e1, e1])])
    # per anchor: -log(e^{2} / (e^{2} + 2 e^{0})), scaled by t / 0.07
    expected = -(t / 0.07) * (2 - math.log(math.exp(2) + 2))
    loss, _ = SupConLossRe(temperature=t)(features, torch.tensor([3, 7]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_no_positive_pair_gives_zero_with_gradient():
    features = F.normalize(torch.randn(4, 1, 8), dim=-1).requires_grad_()
    loss, _ = SupConLossRe()(features, torch.tensor([0, 1, 2, 3]))
    assert loss.item() == 0.0
    loss.backward()
    assert features.grad is not None and torch.equal(features.grad, torch.zeros_like(features))


def test_gradient_flows_and_matches_finite_differences():
    torch.manual_seed(2)
    features = F.normalize(torch.randn(4, 2, 5, dtype=torch.float64), dim=-1).requires_grad_()
    labels = torch.tensor([0, 1, 0, 1])
    loss_fn = SupConLossRe(temperature=0.2)
    loss, _ = loss_fn(features, labels)
    loss.backward()
    grad = features.grad
    assert grad.abs().sum() > 0
    eps = 1e-4
    for index in [(0, 0, 0), (1, 1, 3), (3, 0, 4)]:
        plus, minus = features.detach().clone(), features.detach().clone()
        plus[index] += eps
        minus[index] -= eps
        numeric = (reference_supcon(plus, labels, 0.2) - reference_supcon(minus, labels, 0.2)) / (2 * eps)
        assert grad[index].item() == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_registered_and_driven_by_the_aggregator():
    assert LOSSES.get("SupConLoss_Re") is SupConLossRe
    agg = LossAggregator([{"type": "SupConLoss_Re", "log_prefix": "SupConLoss", "temperature": 0.01,
                           "loss_term_weight": 1.0}])
    features = F.normalize(torch.randn(4, 2, 8), dim=-1)
    labels = torch.tensor([0, 0, 1, 1])
    total, info = agg({"SupConLoss": {"features": features, "labels": labels}})
    assert set(info) == {"scalar/SupConLoss/loss"}
    assert total.item() == pytest.approx(reference_supcon(features, labels, 0.01), rel=1e-5)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"features \[N, views, D\]"):
        SupConLossRe()(torch.randn(4, 8), torch.arange(4))
    with pytest.raises(ValueError, match="3 labels for 4 samples"):
        SupConLossRe()(torch.randn(4, 2, 8), torch.arange(3))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SupConLossRe(temperature=0)
