"""InvAD's network against the official architecture: layers on closed forms and a NumPy reference, shapes,
the published presets' parameter counts, the map."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

import baselines.invad  # noqa: F401  (registers the presets)
from baselines.common.encoder import create_encoder
from baselines.common.model import build_model
from baselines.common.presets import get_preset
from baselines.invad.model import ConvLayer, EqualConv2d, InvAD, StyledConv, StyledResBlock, fused_leaky_relu
from tests.baselines.conftest import assert_frozen_encoder, losses_on_a_fixed_batch
from tests.baselines.test_maps import _bilinear_align_corners


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
    styles = tiny.fuser(feats)  # min(C, 64) channels, deepest first
    assert [tuple(s.shape) for s in styles] == [(3, 64, 2, 2), (3, 64, 4, 4), (3, 40, 8, 8)]
    assert tuple(tiny.decoder.const.shape) == (1, 320, 2, 2)
    amap = tiny.anomaly_map(feats, recs, (64, 64))
    assert amap.shape == (3, 64, 64) and torch.isfinite(amap).all()
    assert float(amap.min()) >= 0 and float(amap.max()) <= 2


def test_widths_and_upsampling_derive_from_feature_info():
    enc = create_encoder("resnet18", (1, 2, 3), "none")
    m = InvAD(enc, image_size=128, style_ch=16, latent_ch=8, blocks=3)
    assert [len(st) for st in m.decoder.stages] == [3, 3, 3]
    assert [st[0].conv1.weight.shape[0] for st in m.decoder.stages] == [256, 128, 64]
    # the first block of every later stage upsamples, unmodulated; all other convs are modulated
    assert [st[0].conv1.upsample for st in m.decoder.stages] == [False, True, True]
    assert [st[0].conv1.gamma is None for st in m.decoder.stages] == [False, True, True]
    assert all(b.conv2.gamma is not None and not b.conv2.upsample for st in m.decoder.stages for b in st)
    assert not any(b.conv1.upsample for st in m.decoder.stages for b in st[1:])
    # fuser: kernel = stride = 4, 2, 1 keeping the level's channels; one latent conv pair per stage
    assert [(d[0].kernel_size, d[0].in_channels, d[0].out_channels) for d in m.fuser.down] == [
        ((4, 4), 64, 64), ((2, 2), 128, 128), ((1, 1), 256, 256)]
    assert [lat[1][0].weight.shape[:2] for lat in m.decoder.latents] == [(8, 16)] * 3
    feats, recs = m(torch.randn(1, 3, 128, 128))
    assert [r.shape for r in recs] == [f.shape for f in feats]


def test_fused_leaky_relu_has_the_sqrt2_gain_and_a_channel_bias():
    x = torch.tensor([[[[1.0]], [[-1.0]]]])  # (1, 2, 1, 1)
    out = fused_leaky_relu(x, torch.tensor([0.5, 0.0]))
    assert torch.allclose(out.flatten(), torch.tensor([1.5 * math.sqrt(2), -0.2 * math.sqrt(2)]))


def test_equalised_conv_scales_at_run_time_and_steps_by_lr_times_multiplier():
    torch.manual_seed(0)
    conv = EqualConv2d(64, 32, 3, padding=1, bias=True, bias_init=0.5, lr_mul=0.01).double()
    # stored N(0, 1/lr_mul²), used as weight · lr_mul / √fan_in, bias · lr_mul
    assert float(conv.weight.detach().std()) == pytest.approx(100.0, rel=0.02)
    x = torch.randn(2, 64, 5, 5, dtype=torch.float64)
    ref = F.conv2d(x, conv.weight * 0.01 / math.sqrt(64 * 9), conv.bias * 0.01, padding=1)
    torch.testing.assert_close(conv(x), ref)
    # Adam's first step moves each stored weight by lr (m / √v = ±1 with betas (0, 0.99); eps made
    # negligible), hence the effective weight by lr · lr_mul / √fan_in: the published settings assume this
    before = (conv.weight * conv.scale).detach().clone()
    opt = torch.optim.Adam(conv.parameters(), lr=0.004, betas=(0.0, 0.99), eps=1e-30)
    conv(x).square().sum().backward()
    opt.step()
    moved = ((conv.weight * conv.scale).detach() - before).abs()
    torch.testing.assert_close(moved, torch.full_like(moved, 0.004 * 0.01 / math.sqrt(64 * 9)), rtol=1e-4, atol=0)


def _upfirdn_reference(x: np.ndarray, w: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """Stride-2 transposed conv (no padding) by scattering, zero padding, then the [1,3,3,1]²/64 × 4 FIR."""
    b, c, h, wd = x.shape
    o, _, k, _ = w.shape
    up = np.zeros((b, o, 2 * (h - 1) + k, 2 * (wd - 1) + k))
    for i in range(h):
        for j in range(wd):
            up[:, :, 2 * i:2 * i + k, 2 * j:2 * j + k] += np.einsum("bc,ockl->bokl", x[:, :, i, j], w)
    up = np.pad(up, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[0], pad[1])))
    f = np.array([1.0, 3.0, 3.0, 1.0])
    f = np.outer(f, f) / 64 * 4
    out_h, out_w = up.shape[2] - 3, up.shape[3] - 3
    out = np.zeros((b, o, out_h, out_w))
    for di in range(4):
        for dj in range(4):
            out += f[di, dj] * up[:, :, di:di + out_h, dj:dj + out_w]
    return out


@pytest.mark.parametrize("kernel, pad", [(3, (1, 1)), (1, (2, 2))])
def test_upsampling_conv_layer_is_transposed_conv_then_blur(kernel, pad):
    torch.manual_seed(1)
    layer = ConvLayer(3, 4, kernel, upsample=True, activate=False, lr_mul=0.01).double()
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    w = (layer[0].weight * layer[0].scale).detach().numpy()  # (cout, cin, k, k), as the official layer stores it
    ref = _upfirdn_reference(x.numpy(), w, pad)
    out = layer(x).detach().numpy()
    assert out.shape == (2, 4, 10, 12)
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_styled_conv_modulates_the_layer_normalised_input():
    torch.manual_seed(2)
    conv = StyledConv(4, 6, style_ch=3).double()
    x, s = torch.randn(2, 4, 5, 5, dtype=torch.float64), torch.randn(2, 3, 5, 5, dtype=torch.float64)
    gamma = conv.gamma(s)
    beta = conv.beta(s)
    h = (x - x.mean((1, 2, 3), keepdim=True)) / torch.sqrt(x.var((1, 2, 3), unbiased=False, keepdim=True) + 1e-5)
    ref = fused_leaky_relu(F.conv2d(h * gamma + beta, conv.weight / math.sqrt(4 * 9), padding=1), conv.act.bias)
    torch.testing.assert_close(conv(x, s), ref)
    # γ's bias starts at 1, β's at 0
    assert torch.equal(conv.gamma.bias, torch.ones(4)) and torch.equal(conv.beta.bias, torch.zeros(4))


def test_styled_block_residual_scaling_and_unmodulated_upsampling():
    torch.manual_seed(3)
    block = StyledResBlock(4, 5, style_ch=3, upsample=True)
    assert block.conv1.gamma is None and block.conv1.upsample and block.skip[0].transposed
    x, s = torch.randn(1, 4, 3, 3), torch.randn(1, 3, 6, 6)
    out = block(x, s)
    ref = (block.conv2(block.conv1(x, None), s) + block.skip(x)) / 2**0.5
    assert out.shape == (1, 5, 6, 6)
    torch.testing.assert_close(out, ref)


def test_frozen_encoder_gets_no_gradient_and_keeps_statistics(tiny):
    assert_frozen_encoder(tiny, torch.randn(2, 3, 64, 64))
    counts = tiny.param_counts()
    assert counts["trainable"] == sum(p.numel() for n, p in tiny.named_parameters() if not n.startswith("encoder."))


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    preset = get_preset("invad-tiny").replace(image_size=64)
    losses = losses_on_a_fixed_batch(build_model(preset), preset, torch.randn(4, 3, 64, 64), steps=8)
    # equalised-LR layers move slowly at the published learning rate: steadily, not fast
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.95 * losses[0], losses


def test_anomaly_map_is_aders_unified_cosine_map(tiny):
    # ADer's cal_anomaly_map(uni_am=True, use_cos=True, gaussian_sigma=4): each level L2-normalised and
    # resized (bilinear, corners aligned) to the first level's size, concatenated, 1 - cos, resized
    # (corners aligned) to the image size, scipy's Gaussian
    rng = np.random.default_rng(5)
    shapes = [(2, 40, 8, 8), (2, 112, 4, 4), (2, 320, 2, 2)]
    a = [rng.standard_normal(s) for s in shapes]
    b = [rng.standard_normal(s) for s in shapes]
    ours = tiny.anomaly_map([torch.from_numpy(x).float() for x in a], [torch.from_numpy(x).float() for x in b],
                            (32, 32)).numpy()

    def levels(feats):
        out = []
        for f in feats:
            f = f / np.linalg.norm(f, axis=1, keepdims=True)
            out.append(np.stack([np.stack([_bilinear_align_corners(ch, (8, 8)) for ch in img]) for img in f]))
        return np.concatenate(out, axis=1)

    fa, fb = levels(a), levels(b)
    cos = (fa * fb).sum(1) / (np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1))
    ref = np.stack([ndimage.gaussian_filter(_bilinear_align_corners(1 - c, (32, 32)), 4.0) for c in cos])
    np.testing.assert_allclose(ours, ref, atol=2e-6)


#: counted from the official code (ADer model/invad.py with configs/invad/invad_coco.py and
#: configs/invad/invad_lite/lite_coco.py) with random weights, after its own freezing
OFFICIAL = {
    "invad": dict(total=95_631_088, trainable=70_768_560, fuser=3_492_032, decoder=67_276_528),
    "invad-lite": dict(total=17_146_544, trainable=8_976_240),
}


@pytest.mark.parametrize("name, channels, blocks, weight", [
    ("invad", [256, 512, 1024], 2, 1.0),
    ("invad-lite", [64, 128, 256], 4, 5.0),
])
def test_published_presets_equal_the_official_model(name, channels, blocks, weight):
    preset = get_preset(name)
    assert (preset.image_size, preset.batch_size, preset.lr, preset.betas, preset.weight_decay, preset.grad_clip) == (
        256, 32, 0.004, (0.0, 0.99), 0.0, 5.0)
    assert (preset.epochs, preset.lr_milestone, preset.lr_gamma, preset.seed) == (100, 80, 0.1, 42)
    assert (preset.mean, preset.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert preset.backbone == {"invad": "wide_resnet50_2.racm_in1k", "invad-lite": "resnet34.bt_in1k"}[name]
    torch.manual_seed(0)
    model = build_model(preset, weights="none")  # no download
    counts = model.param_counts()
    assert counts == {"total": OFFICIAL[name]["total"], "trainable": OFFICIAL[name]["trainable"]}
    if "fuser" in OFFICIAL[name]:
        assert sum(p.numel() for p in model.fuser.parameters()) == OFFICIAL[name]["fuser"]
        assert sum(p.numel() for p in model.decoder.parameters()) == OFFICIAL[name]["decoder"]
    assert model.encoder.channels == channels and model.loss_weight == weight
    assert [len(st) for st in model.decoder.stages] == [blocks] * 3
    assert tuple(model.decoder.const.shape) == (1, channels[-1], 16, 16)
    model.train()
    with torch.set_grad_enabled(name == "invad-lite"):  # the backward of the large one adds nothing but time
        feats, recs = model(torch.randn(1, 3, 256, 256))
        assert [tuple(r.shape) for r in recs] == [(1, c, 256 // s, 256 // s) for c, s in zip(channels, (4, 8, 16))]
        loss = model.loss(feats, recs)
    assert torch.isfinite(loss)
    if loss.requires_grad:
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.trainable_parameters())
