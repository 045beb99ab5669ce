"""RD's network (and what RD++ shares with it): shapes, the published preset's counts and defaults, loss, map, training."""

import numpy as np
import pytest
import torch
from scipy import ndimage

import baselines.rd  # noqa: F401  (registers the presets)
import baselines.rdpp  # noqa: F401
from baselines.common.encoder import create_encoder
from baselines.common.engine import make_optimizer
from baselines.common.model import build_model
from baselines.common.presets import get_preset
from baselines.rd.model import Bottleneck, ReverseDistillation, flat_cosine_loss


def tiny_model(name: str, size: int = 64):
    torch.manual_seed(0)
    return build_model(get_preset(name).replace(image_size=size))


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("rd-tiny")


@pytest.mark.parametrize("name", ["rd-tiny", "rdpp-tiny"])
def test_tiny_levels_embedding_and_map(name):
    model = tiny_model(name)
    model.eval()
    with torch.no_grad():
        feats, recs = model(torch.randn(3, 3, 64, 64))
        # one-class embedding: 2 × the deepest level's channels at half its size
        embedding = model.bottleneck(model.student_inputs(feats))
        amap = model.anomaly_map(feats, recs, (64, 64))
    # student = teacher's shapes: EfficientNet-Lite0 levels 2-4, 40/112/320 channels at 1/8, 1/16, 1/32
    assert [tuple(t.shape) for t in feats] == [(3, 40, 8, 8), (3, 112, 4, 4), (3, 320, 2, 2)]
    assert [t.shape for t in recs] == [t.shape for t in feats]
    assert tuple(embedding.shape) == (3, 640, 1, 1)
    assert amap.shape == (3, 64, 64) and torch.isfinite(amap).all() and float(amap.min()) >= 0


def test_published_preset_is_the_official_model():
    preset = get_preset("rd")
    # ADer configs/benchmark/rd/rd_256_100e.py as its trainer runs it
    assert (preset.backbone, preset.out_indices, preset.weights, preset.image_size) == (
        "wide_resnet50_2", (1, 2, 3), "hub", 256)
    assert (preset.batch_size, preset.lr, preset.betas, preset.weight_decay, preset.grad_clip) == (
        16, 0.005, (0.5, 0.999), 0.0, 5.0)
    assert (preset.epochs, preset.lr_milestone, preset.lr_gamma, preset.seed) == (100, 80, 0.1, 42)
    assert preset.drop_last and preset.step_every == 1 and preset.resize == "pil" and preset.published
    torch.manual_seed(0)
    model = build_model(preset, weights="none")  # random weights: no download
    # counted from ADer's model/rd.py with random weights after its freezing of net_t
    assert model.param_counts() == {"total": 80_609_600, "trainable": 55_747_072}
    assert sum(p.numel() for p in model.bottleneck.parameters()) == 30_829_568
    # bottleneck inner widths: 512 (MFF_OCE's width_per_group 64); decoder: 512/256/128 (wide, 128)
    assert model.bottleneck.fuse[0].body[0].out_channels == 512
    assert [st[0].body[0].out_channels for st in model.decoder.stages] == [512, 256, 128]
    assert [len(st) for st in model.decoder.stages] == [3, 4, 6]
    model.eval()
    with torch.no_grad():
        feats, recs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(r.shape) for r in recs] == [(1, 256, 16, 16), (1, 512, 8, 8), (1, 1024, 4, 4)]


def test_initialisation_as_ader():
    torch.manual_seed(0)
    m = ReverseDistillation(create_encoder("resnet18", (1, 2, 3), "none"), decoder_blocks=[2, 2, 2])
    convs = [c for c in m.bottleneck.modules() if isinstance(c, torch.nn.Conv2d)]
    convs += [c for c in m.decoder.modules() if isinstance(c, torch.nn.Conv2d)]
    big = [c for c in convs if c.weight.numel() >= 20_000]
    for c in big:  # Kaiming normal, fan-out mode, ReLU gain: std sqrt(2 / (out · k · k))
        fan_out = c.out_channels * c.kernel_size[0] * c.kernel_size[1]
        assert float(c.weight.detach().std()) == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)
    deconvs = [c for c in m.decoder.modules() if isinstance(c, torch.nn.ConvTranspose2d)]
    assert deconvs and all(c.kernel_size == (2, 2) and c.stride == (2, 2) and c.bias is None for c in deconvs)
    bns = [b for part in (m.bottleneck, m.decoder) for b in part.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert all(torch.equal(b.weight, torch.ones_like(b.weight)) and torch.equal(b.bias, torch.zeros_like(b.bias))
               for b in bns)


def test_bottleneck_block_matches_its_definition():
    torch.manual_seed(0)
    block = Bottleneck(8, 16, 4, stride=2, shortcut=torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2)))
    block.eval()
    x = torch.randn(2, 8, 6, 6)
    b = block.body
    assert [type(m).__name__ for m in b] == ["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["Conv2d", "BatchNorm2d"]
    assert b[3].stride == (2, 2) and b[3].kernel_size == (3, 3)
    h = torch.relu(b[1](b[0](x)))
    h = torch.relu(b[4](b[3](h)))
    ref = torch.relu(b[7](b[6](h)) + block.shortcut(x))
    torch.testing.assert_close(block(x), ref)
    up = Bottleneck(8, 4, 4, up=True, shortcut=torch.nn.Sequential(torch.nn.ConvTranspose2d(8, 4, 2, stride=2)))
    assert tuple(up(x).shape) == (2, 4, 12, 12)


def test_flat_cosine_loss_matches_numpy():
    rng = np.random.default_rng(0)
    a = [rng.standard_normal((3, c, s, s)) for c, s in ((4, 6), (5, 3))]
    b = [rng.standard_normal((3, c, s, s)) for c, s in ((4, 6), (5, 3))]
    ref = 0.0
    for x, y in zip(a, b):
        x, y = x.reshape(3, -1), y.reshape(3, -1)
        ref += np.mean(1 - (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)))
    ours = flat_cosine_loss([torch.from_numpy(x) for x in a], [torch.from_numpy(y) for y in b])
    assert float(ours) == pytest.approx(ref, abs=1e-12)


def test_map_is_the_mean_of_level_maps_with_corners_aligned(tiny):
    # one level at the map's size: the map is 1 − cos there, then scipy's Gaussian
    rng = np.random.default_rng(1)
    f, r = rng.standard_normal((2, 3, 5, 5, 5))
    ours = tiny.anomaly_map([torch.from_numpy(f)], [torch.from_numpy(r)], (5, 5)).numpy()
    cos = (f * r).sum(1) / (np.linalg.norm(f, axis=1) * np.linalg.norm(r, axis=1))
    ref = np.stack([ndimage.gaussian_filter(1 - c, 4.0) for c in cos])
    np.testing.assert_allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize("name", ["rd-tiny", "rdpp-tiny"])
def test_training_moves_only_the_student_side(name):
    """A few Adam steps on one batch: the loss falls, the teacher (weights and BN statistics) never moves."""
    preset = get_preset(name).replace(image_size=128)
    model = tiny_model(name, 128)
    teacher = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1}
    opt, _ = make_optimizer(preset, model)
    x = torch.randn(4, 3, 128, 128)
    model.train()
    losses = []
    for step in range(6):
        out = model(x, **model.training_inputs(x, [0, 1, 2, 3], epoch=0))
        loss = model.loss(*out)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if step == 0:
            assert all(p.grad is None for p in model.encoder.parameters())
            assert all(p.grad is not None for p in model.trainable_parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    assert model.training and not model.encoder.training
    assert all(torch.equal(teacher[k], v) for k, v in model.encoder.state_dict().items())
    assert all(not torch.equal(weights[n], p) for n, p in model.named_parameters() if n in weights)
    assert model.param_counts()["trainable"] == sum(
        p.numel() for n, p in model.named_parameters() if not n.startswith("encoder."))


def test_levels_must_be_one_octave_apart():
    with pytest.raises(ValueError, match="three encoder levels"):
        ReverseDistillation(create_encoder("resnet18", (1, 2, 4), "none"))
