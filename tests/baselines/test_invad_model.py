"""InvAD's network: shapes at every level, frozen encoder, learning, published presets."""

import pytest
import torch

import baselines.invad  # noqa: F401  (registers the presets)
from baselines.common.encoder import create_encoder
from baselines.common.model import build_model
from baselines.common.presets import get_preset
from baselines.invad.model import InvAD, ModulatedConv, StyledBlock
from tests.baselines.conftest import assert_frozen_encoder, losses_on_a_fixed_batch


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model(get_preset("invad-tiny").replace(image_size=64))


def test_tiny_shapes_at_every_level(tiny):
    x = torch.randn(3, 3, 64, 64)
    feats, recs = tiny(x)
    # EfficientNet-Lite0 levels 2-4: 40/112/320 channels at 1/8, 1/16, 1/32 of the input
    assert [tuple(f.shape) for f in feats] == [(3, 40, 8, 8), (3, 112, 4, 4), (3, 320, 2, 2)]
    assert [tuple(r.shape) for r in recs] == [tuple(f.shape) for f in feats]
    styles = tiny.styles(feats)
    assert [tuple(s.shape) for s in styles] == [(3, 32, 2, 2), (3, 32, 4, 4), (3, 32, 8, 8)]
    assert tuple(tiny.decoder.const.shape) == (1, 320, 2, 2)
    amap = tiny.anomaly_map(feats, recs, (64, 64))
    assert amap.shape == (3, 64, 64) and torch.isfinite(amap).all()
    assert float(amap.min()) >= 0 and float(amap.max()) <= 2


def test_widths_derive_from_feature_info():
    enc = create_encoder("resnet18", (1, 2, 3), "none")
    m = InvAD(enc, image_size=128, latent_ch=8, proj_cap=16, blocks=3)
    assert [b.conv2.conv.out_channels for b in m.decoder.stages[0]] == [256] * 3
    assert [st[0].conv1.conv.out_channels for st in m.decoder.stages] == [256, 128, 64]
    assert [st[0].upsample for st in m.decoder.stages] == [False, True, True]
    assert not any(b.upsample for st in m.decoder.stages for b in st[1:])
    feats, recs = m(torch.randn(1, 3, 128, 128))
    assert [r.shape for r in recs] == [f.shape for f in feats]


def test_modulated_conv_starts_as_identity_modulation():
    conv = ModulatedConv(4, 6, style_ch=3, mod_ch=2)
    torch.nn.init.zeros_(conv.gamma.weight)
    torch.nn.init.zeros_(conv.beta.weight)
    x, s = torch.randn(2, 4, 5, 5), torch.randn(2, 3, 5, 5)
    # γ = 1, β = 0: the conv sees the plain layer-normalised input
    h = torch.nn.functional.layer_norm(x, x.shape[1:])
    expected = torch.nn.functional.leaky_relu(conv.conv(h), 0.2)
    torch.testing.assert_close(conv(x, s), expected)


def test_styled_block_residual_scaling():
    block = StyledBlock(4, 4, style_ch=3, mod_ch=2, upsample=True)
    x, s = torch.randn(1, 4, 3, 3), torch.randn(1, 3, 6, 6)
    out = block(x, s)
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    ref = (block.conv2(block.conv1(x, s), s) + block.skip(up)) / 2**0.5
    assert out.shape == (1, 4, 6, 6)
    torch.testing.assert_close(out, ref)


def test_frozen_encoder_gets_no_gradient_and_keeps_statistics(tiny):
    assert_frozen_encoder(tiny, torch.randn(2, 3, 64, 64))
    counts = tiny.param_counts()
    assert counts["trainable"] == sum(p.numel() for n, p in tiny.named_parameters() if not n.startswith("encoder."))


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    preset = get_preset("invad-tiny").replace(image_size=64)
    losses = losses_on_a_fixed_batch(build_model(preset), preset, torch.randn(4, 3, 64, 64), steps=8)
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name, channels, blocks, weight", [
    ("invad", [256, 512, 1024], 2, 1.0),
    ("invad-lite", [64, 128, 256], 4, 5.0),
])
def test_published_presets_forward_backward_on_cpu(name, channels, blocks, weight):
    preset = get_preset(name)
    assert (preset.image_size, preset.batch_size, preset.lr, preset.betas, preset.grad_clip) == (
        256, 32, 0.004, (0.0, 0.99), 5.0)
    assert (preset.epochs, preset.lr_milestone, preset.lr_gamma, preset.seed) == (100, 80, 0.1, 42)
    torch.manual_seed(0)
    model = build_model(preset, weights="none")  # no download
    assert model.encoder.channels == channels and model.loss_weight == weight
    assert len(model.decoder.stages[0]) == blocks
    assert tuple(model.decoder.const.shape) == (1, channels[-1], 16, 16)
    model.train()
    feats, recs = model(torch.randn(1, 3, 256, 256))
    assert [tuple(r.shape) for r in recs] == [(1, c, 256 // s, 256 // s) for c, s in zip(channels, (4, 8, 16))]
    loss = model.loss(feats, recs)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.trainable_parameters())
