"""RD++: projections, projection loss, Sinkhorn divergence, simplex noise, optimiser groups, published preset."""

import geomloss
import numpy as np
import pytest
import torch

import baselines.rdpp  # noqa: F401  (registers the presets)
from baselines.common.engine import make_optimizer
from baselines.common.model import build_model
from baselines.common.presets import get_preset
from baselines.rdpp.losses import epsilon_schedule, projection_loss, sinkhorn_divergence
from baselines.rdpp.model import ProjectionLayer
from baselines.rdpp.noise import GRADIENTS3, NoisePatches, fractal_noise, permutation, simplex3


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model(get_preset("rdpp-tiny").replace(image_size=128))


def test_published_preset_is_the_official_model():
    preset = get_preset("rdpp")
    # ADer configs/benchmark/rd++/rd++_256_100e.py as trainer/rdpp_trainer.py runs it
    assert (preset.backbone, preset.out_indices, preset.weights, preset.image_size, preset.resize) == (
        "wide_resnet50_2", (1, 2, 3), "hub", 256, "cv2")
    assert (preset.batch_size, preset.lr, preset.betas, preset.weight_decay, preset.grad_clip) == (
        16, 0.001, (0.5, 0.999), 0.0, 5.0)
    assert (preset.epochs, preset.lr_gamma, preset.step_every, preset.drop_last, preset.seed) == (
        100, 1.0, 2, True, 42)
    torch.manual_seed(0)
    model = build_model(preset, weights="none")
    # counted from ADer's model/rdpp.py with random weights after its freezing of net_t
    assert model.param_counts() == {"total": 96_096_512, "trainable": 71_233_984}
    assert sum(p.numel() for p in model.projection.parameters()) == 15_486_912
    opt, sched = make_optimizer(preset, model)
    # proj_opt at lr, distill_opt (bottleneck + decoder) at 5 lr; the teacher in neither
    assert [g["lr"] for g in opt.param_groups] == [0.001, 0.005]
    ids = [[id(p) for p in g["params"]] for g in opt.param_groups]
    assert set(ids[0]) == {id(p) for p in model.projection.parameters()}
    assert set(ids[0]).isdisjoint(ids[1])
    assert set(ids[0]) | set(ids[1]) == {id(p) for p in model.trainable_parameters()}
    for _ in range(100):  # epochs (no parameter has a gradient: the steps move nothing)
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.001, 0.005]  # constant, as trained


def test_projection_layer_widths_and_norms():
    layer = ProjectionLayer(16)
    convs = [m for m in layer.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.bias is not None) for c in convs] == [
        (16, 8, (3, 3), True), (8, 4, (3, 3), True), (4, 8, (3, 3), True), (8, 16, (3, 3), True)]
    norms = [m for m in layer.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 4 and not any(n.affine or n.track_running_stats for n in norms)
    acts = [m for m in layer.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.01 for a in acts)


def test_training_forward_adds_the_projection_loss(tiny):
    tiny.train()
    x = torch.randn(3, 3, 128, 128)
    kw = tiny.training_inputs(x, [4, 0, 7], epoch=2)
    assert sorted(kw) == ["perm", "x_noise"] and sorted(kw["perm"].tolist()) == [0, 1, 2]
    feats, recs, proj_loss = tiny(x, **kw)
    assert proj_loss.ndim == 0 and torch.isfinite(proj_loss)
    assert [tuple(r.shape) for r in recs] == [tuple(f.shape) for f in feats]
    loss = tiny.loss(feats, recs, proj_loss)
    tiny.zero_grad(set_to_none=True)
    loss.backward()
    assert all(p.grad is None for p in tiny.encoder.parameters())
    assert all(p.grad is not None for p in tiny.trainable_parameters())
    assert loss.item() == pytest.approx(tiny.loss(feats, recs).item() + 0.2 * proj_loss.item(), rel=1e-6)
    # evaluation: no noise, no projection loss; the map compares the teacher with the student
    tiny.eval()
    with torch.no_grad():
        out = tiny(x)
    assert len(out) == 2
    # the inputs are a function of (seed, epoch, images) only
    again = tiny.training_inputs(x, [4, 0, 7], epoch=2)
    assert torch.equal(again["x_noise"], kw["x_noise"]) and torch.equal(again["perm"], kw["perm"])
    assert not torch.equal(tiny.training_inputs(x, [4, 0, 7], epoch=3)["x_noise"], kw["x_noise"])


def test_projection_loss_terms_match_their_definitions():
    rng = np.random.default_rng(0)
    shapes = ((6, 4, 4), (10, 2, 2))
    noise = [rng.standard_normal((3, *s)) for s in shapes]
    pn = [rng.standard_normal((3, *s)) for s in shapes]
    pc = [rng.standard_normal((3, *s)) for s in shapes]
    t = lambda arrs: [torch.from_numpy(a) for a in arrs]  # noqa: E731
    rec = sum(np.mean(1 - (q * p).sum(1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(p, axis=1)))
              for q, p in zip(pn, pc))
    con = 0.0
    for n, p in zip(noise, pc):
        n, p = n.reshape(3, -1), p.reshape(3, -1)
        cos = (n * p).sum(1) / (np.linalg.norm(n, axis=1) * np.linalg.norm(p, axis=1))
        con += np.mean(np.maximum(0.0, cos - 0.5))
    without = projection_loss(t(noise), t(pn), t(pc), ssot=False)
    assert float(without) == pytest.approx((0.01 * rec + 0.1 * con) / 1.11, abs=1e-12)
    # SSOT compares the batch with a permutation of itself: the same measure, divergence 0
    with_ssot = projection_loss(t(noise), t(pn), t(pc), perm=torch.tensor([2, 0, 1]))
    assert float(with_ssot) == pytest.approx(float(without), abs=1e-12)


GEOMLOSS_AS_ADER = dict(loss="sinkhorn", p=2, blur=0.05, reach=None, diameter=10000000, scaling=0.95, truncate=10,
                        cost=None, kernel=None, cluster_scale=None, debias=True, potentials=False, verbose=False,
                        backend="auto")


@pytest.mark.parametrize("scale", [1.0, 0.1, 1e-3])
def test_sinkhorn_divergence_equals_geomloss(scale):
    # ADer's Revisit_RDLoss uses geomloss.SamplesLoss with these arguments
    ref_loss = geomloss.SamplesLoss(**GEOMLOSS_AS_ADER)
    gen = torch.Generator().manual_seed(0)
    xs = [(torch.rand(6, d, generator=gen, dtype=torch.float64) * scale).requires_grad_() for d in (3, 20, 50)]
    ys = [(torch.rand(6, d, generator=gen, dtype=torch.float64) * scale).requires_grad_() for d in (3, 20, 50)]
    ref = torch.stack([ref_loss(x, y) for x, y in zip(xs, ys)])
    ours = sinkhorn_divergence(xs, ys)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-15)
    g_ref = torch.autograd.grad(ref.sum(), xs + ys)
    g_ours = torch.autograd.grad(ours.sum(), xs + ys)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-15)


def test_sinkhorn_divergence_closed_forms():
    # one point each: the only transport plan, S = |x - y|² / 2
    x, y = torch.tensor([[0.3, -1.0]], dtype=torch.float64), torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    assert float(sinkhorn_divergence([x], [y])[0]) == pytest.approx(0.5 * (0.7 ** 2 + 1.5 ** 2), rel=1e-12)
    # a cloud and its permutation are the same measure: S = 0 and no gradient, whatever the points
    pts = torch.softmax(torch.randn(8, 64, dtype=torch.float64), -1).requires_grad_()
    s = sinkhorn_divergence([pts], [pts[torch.tensor([3, 1, 0, 2, 7, 6, 5, 4])]])[0]
    (g,) = torch.autograd.grad(s, pts)
    assert abs(s.item()) < 1e-15 and g.abs().max().item() < 1e-15
    eps = epsilon_schedule(2, 1e7, 0.05, 0.95)
    assert eps[0] == 1e14 and eps[-1] == pytest.approx(0.0025) and len(eps) == 375


# OpenSimplex reference values, computed with ADer's data/noise.py (Simplex_CLASS, _init(42), _noise3)
PERM42_HEAD = [48, 76, 40, 154, 62, 22, 64, 58, 18, 34]
NOISE3_42 = [((5.5, 5.5, 5.5), -0.2923366707119742), ((17.125, -8.0625, 2.0), -0.10458145414106487),
             ((0.4, 1.9, 0.03), -0.09035012285302756), ((2.0, 0.0, 1.0), 0.19417475728155326)]
# where OpenSimplex's vertex choice skips a lattice point of tiny weight (see baselines.rdpp.noise)
NOISE3_42_SKIPPED = [((0.1, 0.2, 0.3), 0.07670617879611646), ((-3.7, 12.25, 0.5), -0.11398278314579609)]


def test_simplex_noise_equals_opensimplex():
    perm, grad = permutation(42)
    assert sorted(perm.tolist()) == list(range(256)) and perm[:10].tolist() == PERM42_HEAD
    assert grad.tolist() == (perm % 24).tolist() and GRADIENTS3.shape == (24, 3)
    for points, tol in ((NOISE3_42, 1e-12), (NOISE3_42_SKIPPED, 1e-5)):
        for (x, y, z), value in points:
            assert float(simplex3(np.array(x), np.array(y), np.array(z), perm, grad)) == pytest.approx(value, abs=tol)


def test_simplex_noise_sums_every_lattice_point_in_range():
    # an independent brute force over a wider block of the stretched lattice (−3..4 per axis)
    perm, grad = permutation(7)
    rng = np.random.default_rng(0)
    for x, y, z in rng.uniform(-9, 9, (40, 3)):
        s = (x + y + z) * (-1 / 6)
        b = np.floor([x + s, y + s, z + s]).astype(int)
        ref = 0.0
        for o in np.ndindex(8, 8, 8):
            lx, ly, lz = b + np.array(o) - 3
            sq = (lx + ly + lz) / 3
            d = np.array([x - lx - sq, y - ly - sq, z - lz - sq])
            attn = 2 - d @ d
            if attn > 0:
                ref += attn ** 4 * GRADIENTS3[grad[(perm[(perm[lx & 255] + ly) & 255] + lz) & 255]] @ d
        assert float(simplex3(np.array(x), np.array(y), np.array(z), perm, grad)) == pytest.approx(ref / 103, abs=1e-12)


def test_fractal_noise_is_a_sum_of_octaves():
    field = fractal_noise((3, 5, 4), seed=3, octaves=2, persistence=0.5, frequency=8.0)
    perm, grad = permutation(3)
    c, y, x = 2, 4, 1
    ref = simplex3(np.array(x / 8), np.array(y / 8), np.array(c / 8), perm, grad) + 0.5 * simplex3(
        np.array(x / 4), np.array(y / 4), np.array(c / 4), perm, grad)
    assert field[c, y, x] == pytest.approx(float(ref), abs=1e-15)


def test_noise_patches_follow_ader_rule():
    std = (0.229, 0.224, 0.225)
    noise = NoisePatches(256, std, seed=42)
    assert noise.field.shape == (3, 31, 31)  # sides in [10, 256 // 8) = [10, 31]
    rects = [noise.rectangle(i, e) for i in range(200) for e in range(3)]
    assert all(10 <= h < 32 and 10 <= w < 32 and 1 <= t < 256 - h and 1 <= left < 256 - w
               for t, left, h, w in rects)
    assert len(set(rects)) > 500  # fresh per image and epoch
    x = torch.randn(2, 3, 256, 256)
    out = noise.apply(x, [5, 9], epoch=1)
    raw = fractal_noise((3, 31, 31), 42)
    for b, i in enumerate([5, 9]):
        t, left, h, w = noise.rectangle(i, 1)
        added = (out[b] - x[b]).double() * torch.tensor(std, dtype=torch.float64)[:, None, None]
        expected = torch.zeros(3, 256, 256, dtype=torch.float64)
        expected[:, t:t + h, left:left + w] = 0.2 * torch.from_numpy(raw[:, :h, :w])
        torch.testing.assert_close(added, expected, rtol=0, atol=1e-6)  # in image units ([0, 1])
