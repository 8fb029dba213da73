"""CrossEntropyLoss and TripletLoss against brute-force references written as explicit loops
(docs/models.md), their logged statistics, edge cases and gradients."""
import math

import pytest
import torch

from fastposegait.modeling.losses import LossAggregator
from fastposegait.modeling.losses.softmax import CrossEntropyLoss
from fastposegait.modeling.losses.triplet import TripletLoss
from fastposegait.registry import LOSSES

# ------------------------------------------------------------------------------------------
# CrossEntropyLoss
# ------------------------------------------------------------------------------------------


def ce_reference(logits, labels, scale, label_smooth, eps):
    """Per part: mean over samples of -log softmax(scale * logits)[label], smoothed if asked."""
    n, k, p = logits.shape
    out = []
    for part in range(p):
        total = 0.0
        for i in range(n):
            z = [scale * float(logits[i, c, part]) for c in range(k)]
            log_norm = math.log(sum(math.exp(v) for v in z))
            nll = log_norm - z[int(labels[i])]
            if label_smooth:
                uniform = sum(log_norm - v for v in z) / k
                nll = (1 - eps) * nll + eps * uniform
            total += nll
        out.append(total / n)
    return torch.tensor(out, dtype=torch.float64)


def random_logits(n=6, k=5, p=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.rand(n, k, p, generator=g) * 2 - 1  # cosine logits in [-1, 1]
    labels = torch.randint(0, k, (n,), generator=g)
    return logits, labels


@pytest.mark.parametrize("label_smooth,eps", [(False, 0.1), (True, 0.1), (True, 0.3)])
@pytest.mark.parametrize("scale", [1.0, 16.0])
def test_cross_entropy_matches_brute_force(label_smooth, eps, scale):
    logits, labels = random_logits()
    loss_fn = CrossEntropyLoss(scale=scale, label_smooth=label_smooth, eps=eps)
    loss, info = loss_fn(logits, labels)
    assert loss.shape == (3,)  # per part; the aggregator averages
    expected = ce_reference(logits, labels, scale, label_smooth, eps)
    assert torch.allclose(loss.double(), expected, atol=1e-5)
    assert set(info) == {"loss"} and torch.equal(info["loss"], loss.detach())


def test_cross_entropy_defaults_follow_the_spec():
    loss_fn = LOSSES.get("CrossEntropyLoss")()
    assert (loss_fn.scale, loss_fn.label_smooth, loss_fn.eps, loss_fn.log_accuracy) == (16.0, True, 0.1, False)
    assert loss_fn.loss_term_weight == 1.0


def test_cross_entropy_accuracy_by_counting():
    logits, labels = random_logits(n=8, k=4, p=5, seed=3)
    _, info = CrossEntropyLoss(log_accuracy=True)(logits, labels)
    hits = sum(int(torch.argmax(logits[i, :, p]) == labels[i]) for i in range(8) for p in range(5))
    assert info["accuracy"].item() == pytest.approx(hits / 40)
    # a confident, correct classifier is 100% accurate and has a small loss
    perfect = torch.full((3, 4, 2), -1.0)
    for i, label in enumerate([2, 0, 3]):
        perfect[i, label] = 1.0
    loss, info = CrossEntropyLoss(scale=16, label_smooth=False, log_accuracy=True)(perfect, torch.tensor([2, 0, 3]))
    assert info["accuracy"].item() == 1.0
    assert torch.allclose(loss, torch.full((2,), math.log(1 + 3 * math.exp(-32))), atol=1e-7)


def test_cross_entropy_gradient_is_scale_times_softmax_minus_target():
    logits, labels = random_logits(n=4, k=5, p=2, seed=5)
    logits.requires_grad_(True)
    scale, eps = 16.0, 0.1
    loss, _ = CrossEntropyLoss(scale=scale, label_smooth=True, eps=eps)(logits, labels)
    loss.sum().backward()
    prob = torch.softmax(scale * logits.detach(), dim=1)
    target = torch.full_like(prob, eps / 5)
    for i, label in enumerate(labels):
        target[i, label] += 1 - eps
    assert torch.allclose(logits.grad, scale * (prob - target) / 4, atol=1e-5)


def test_cross_entropy_bad_labels_are_a_clear_error():
    logits, _ = random_logits(n=2, k=3, p=1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\) \(model_cfg.num_class"):
        CrossEntropyLoss()(logits, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"expects logits \[N, K, P\] and labels \[N\]"):
        CrossEntropyLoss()(logits[..., 0], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="eps must be in"):
        CrossEntropyLoss(eps=2)


# ------------------------------------------------------------------------------------------
# TripletLoss
# ------------------------------------------------------------------------------------------


def dist(a, b):
    return math.sqrt(max(sum(float(x) * float(x) for x in a) + sum(float(y) * float(y) for y in b)
                         - 2 * sum(float(x) * float(y) for x, y in zip(a, b)), 0.0))


def triplet_all_reference(emb, labels, margin):
    """Per part: every (anchor, positive incl. itself, negative) term relu(d_ap - d_an + m)."""
    n, _, p = emb.shape
    loss, hard, num, mean_dist = [], [], [], []
    for part in range(p):
        x = emb[:, :, part]
        d = [[dist(x[i], x[j]) for j in range(n)] for i in range(n)]
        terms = []
        for a in range(n):
            for pos in range(n):
                if labels[pos] != labels[a]:
                    continue
                for neg in range(n):
                    if labels[neg] == labels[a]:
                        continue
                    terms.append(max(d[a][pos] - d[a][neg] + margin, 0.0))
        nonzero = [t for t in terms if t > 0]
        loss.append(sum(nonzero) / len(nonzero) if nonzero else 0.0)
        hard.append(max(terms, default=0.0))
        num.append(float(len(nonzero)))
        mean_dist.append(sum(map(sum, d)) / (n * n))
    return [torch.tensor(v, dtype=torch.float64) for v in (loss, hard, num, mean_dist)]


def triplet_hard_reference(emb, labels, margin):
    """Per part and anchor: hardest positive (incl. itself) against hardest negative."""
    n, _, p = emb.shape
    out = []
    for part in range(p):
        x = emb[:, :, part]
        terms = []
        for a in range(n):
            pos = max(dist(x[a], x[j]) for j in range(n) if labels[j] == labels[a])
            negs = [dist(x[a], x[j]) for j in range(n) if labels[j] != labels[a]]
            terms.append(max(pos - min(negs) + margin, 0.0) if negs else 0.0)
        nonzero = [t for t in terms if t > 0]
        out.append(sum(nonzero) / len(nonzero) if nonzero else 0.0)
    return torch.tensor(out, dtype=torch.float64)


def random_embeddings(n=8, c=4, p=3, seed=0, classes=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, p, generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.2, 1.5])
def test_batch_all_matches_brute_force(seed, margin):
    emb, labels = random_embeddings(seed=seed)
    loss, info = TripletLoss(margin=margin)(emb, labels)
    ref_loss, ref_hard, ref_num, ref_mean = triplet_all_reference(emb, labels.tolist(), margin)
    assert loss.shape == (3,)
    assert torch.allclose(loss.double(), ref_loss, atol=1e-5)
    assert set(info) == {"loss", "hard_loss", "loss_num", "mean_dist"}
    assert torch.allclose(info["loss"].double(), ref_loss, atol=1e-5)
    assert torch.allclose(info["hard_loss"].double(), ref_hard, atol=1e-5)
    assert torch.equal(info["loss_num"].double(), ref_num)
    assert torch.allclose(info["mean_dist"].double(), ref_mean, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.2, 1.5])
def test_batch_hard_matches_brute_force(seed, margin):
    emb, labels = random_embeddings(seed=seed)
    loss, info = TripletLoss(margin=margin, is_hard_loss=True)(emb, labels)
    ref = triplet_hard_reference(emb, labels.tolist(), margin)
    assert torch.allclose(loss.double(), ref, atol=1e-5)
    assert set(info) == {"hard_loss"} and torch.allclose(info["hard_loss"].double(), ref, atol=1e-5)


@pytest.mark.parametrize("hard", [False, True])
def test_no_valid_triplets_gives_zero_not_nan(hard):
    emb, _ = random_embeddings(n=5)
    labels = torch.zeros(5, dtype=torch.long)  # one subject: no negative anywhere
    emb.requires_grad_(True)
    loss, info = TripletLoss(margin=0.3, is_hard_loss=hard)(emb, labels)
    assert torch.equal(loss, torch.zeros(3))
    if not hard:
        assert torch.equal(info["loss_num"], torch.zeros(3))
        assert torch.equal(info["hard_loss"], torch.zeros(3))
    loss.sum().backward()
    assert torch.isfinite(emb.grad).all() and (emb.grad == 0).all()


@pytest.mark.parametrize("hard", [False, True])
def test_satisfied_margins_give_zero(hard):
    # two far-apart clusters: every negative is farther than every positive + margin
    emb = torch.tensor([[0.0], [0.1], [10.0], [10.1]]).view(4, 1, 1)
    loss, _ = TripletLoss(margin=0.3, is_hard_loss=hard)(emb, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == 0.0


def test_batch_all_by_hand():
    # 1-D points 0, 1 (subject a) and 1.5 (subject b), margin 1; d(0,1)=1, d(0,1.5)=1.5, d(1,1.5)=.5
    # anchor 0:   (pos itself) 0-1.5+1 -> 0;   (pos 1) 1-1.5+1 = .5
    # anchor 1:   (pos 0) 1-.5+1 = 1.5;        (pos itself) 0-.5+1 = .5
    # anchor 1.5: (pos itself) vs 0: 0-1.5+1 -> 0;  vs 1: 0-.5+1 = .5
    emb = torch.tensor([0.0, 1.0, 1.5]).view(3, 1, 1)
    loss, info = TripletLoss(margin=1.0)(emb, torch.tensor([0, 0, 1]))
    assert info["loss_num"].item() == 4
    assert loss.item() == pytest.approx((0.5 + 1.5 + 0.5 + 0.5) / 4)
    assert info["hard_loss"].item() == pytest.approx(1.5)
    assert info["mean_dist"].item() == pytest.approx(2 * (1 + 1.5 + 0.5) / 9)
    # batch-hard: anchor 0: 1-1.5+1 = .5; anchor 1: 1-.5+1 = 1.5; anchor 1.5: 0-.5+1 = .5
    hard, _ = TripletLoss(margin=1.0, is_hard_loss=True)(emb, torch.tensor([0, 0, 1]))
    assert hard.item() == pytest.approx((0.5 + 1.5 + 0.5) / 3)


def triplet_torch_reference(emb, labels, margin, hard):
    """The same loops in torch, differentiable, for the gradient check."""
    n, _, p = emb.shape
    parts = []
    for part in range(p):
        x = emb[:, :, part]
        d = torch.cdist(x, x)
        terms = []
        for a in range(n):
            same = [j for j in range(n) if labels[j] == labels[a]]
            diff = [j for j in range(n) if labels[j] != labels[a]]
            if hard:
                terms.append(torch.relu(d[a, same].max() - d[a, diff].min() + margin))
            else:
                terms += [torch.relu(d[a, i] - d[a, j] + margin) for i in same for j in diff]
        stacked = torch.stack(terms)
        parts.append(stacked.sum() / (stacked > 0).sum())
    return torch.stack(parts)


@pytest.mark.parametrize("hard", [False, True])
def test_gradients_match_the_reference(hard):
    emb, labels = random_embeddings(n=6, c=5, p=2, seed=7, classes=2)
    emb = emb.double()
    a = emb.clone().requires_grad_(True)
    b = emb.clone().requires_grad_(True)
    TripletLoss(margin=0.5, is_hard_loss=hard)(a, labels)[0].sum().backward()
    triplet_torch_reference(b, labels.tolist(), 0.5, hard).sum().backward()
    assert a.grad.abs().sum() > 0
    assert torch.allclose(a.grad.double(), b.grad, atol=1e-5)


# ------------------------------------------------------------------------------------------
# Both through the aggregator (GPGait's loss_cfg)
# ------------------------------------------------------------------------------------------


def test_aggregator_sums_weighted_means_and_logs_by_prefix():
    emb, labels = random_embeddings(n=6, c=4, p=3, seed=2, classes=3)
    logits, _ = random_logits(n=6, k=3, p=3, seed=2)
    agg = LossAggregator([
        {"type": "TripletLoss", "log_prefix": "triplet", "margin": 0.3, "is_hard_loss": True, "loss_term_weight": 2.0},
        {"type": "CrossEntropyLoss", "log_prefix": "softmax", "scale": 16, "label_smooth": False, "log_accuracy": True},
    ])
    total, info = agg({"triplet": {"embeddings": emb, "labels": labels},
                       "softmax": {"logits": logits, "labels": labels}})
    expected = 2.0 * triplet_hard_reference(emb, labels.tolist(), 0.3).mean() + \
        ce_reference(logits, labels, 16, False, 0.1).mean()
    assert total.item() == pytest.approx(expected.item(), abs=1e-5)
    assert set(info) == {"scalar/triplet/hard_loss", "scalar/softmax/loss", "scalar/softmax/accuracy"}
