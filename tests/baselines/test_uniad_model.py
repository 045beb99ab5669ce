"""UniAD's network against ADer's definitions: alignment, neighbour mask, query decoder, jitter, map, counts."""

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import baselines.uniad  # noqa: F401  (registers the presets)
from baselines.common.engine import make_optimizer
from baselines.common.model import build_model
from baselines.common.presets import get_preset
from baselines.uniad.model import (
    EncoderLayer,
    FeatureAlign,
    QueryDecoderLayer,
    UniADReconstruction,
    drop_unused_blocks,
    neighbor_mask,
)
from baselines.common.maps import pooled_max
from evaluator import reference
from tests.baselines.conftest import assert_frozen_encoder, losses_on_a_fixed_batch


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model(get_preset("uniad-tiny").replace(image_size=64))


def test_tiny_shapes(tiny):
    x = torch.randn(3, 3, 64, 64)
    tiny.eval()
    feats, recs = tiny(x)
    enc = tiny.encoder
    side = 64 // enc.reductions[-1]
    assert [tuple(f.shape) for f in feats] == [(3, sum(enc.channels), side, side)]
    assert [tuple(r.shape) for r in recs] == [tuple(f.shape) for f in feats]
    amap = tiny.anomaly_map(feats, recs, (64, 64))
    assert amap.shape == (3, 64, 64) and amap.dtype == torch.float32 and float(amap.min()) >= 0


def ader_mask(h, w, hm, wm):
    """ADer's ``generate_mask``, loop for loop: 0 → −inf (the neighbourhood), 1 → 0."""
    mask = torch.ones(h, w, h, w)
    for i in range(h):
        for j in range(w):
            mask[i, j, max(i - hm // 2, 0):min(i + hm // 2 + 1, h), max(j - wm // 2, 0):min(j + wm // 2 + 1, w)] = 0
    mask = mask.view(h * w, h * w)
    return mask.masked_fill(mask == 0, float("-inf")).masked_fill(mask == 1, 0.0)


@pytest.mark.parametrize("size, neighbor", [((16, 16), (8, 8)), ((5, 7), (3, 2)), ((6, 6), (1, 1))])
def test_neighbor_mask_equals_ader_rule(size, neighbor):
    assert torch.equal(neighbor_mask(size, neighbor), ader_mask(*size, *neighbor))


def test_a_mask_that_hides_everything_is_refused():
    with pytest.raises(ValueError, match="nothing to attend"):
        UniADReconstruction(8, (4, 4), hidden_dim=8, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=8,
                            neighbor_size=(8, 8))


def test_alignment_equals_ader_upsampling_modules():
    # ADer's MFCN: nn.UpsamplingBilinear2d(scale_factor=stride / 16) per level, then concatenation
    torch.manual_seed(0)
    feats = [torch.randn(2, c, 128 // 2**i, 128 // 2**i) for i, c in enumerate((3, 4, 5, 6))]
    ref = torch.cat([nn.UpsamplingBilinear2d(scale_factor=s / 16)(f) for s, f in zip((2, 4, 8, 16), feats)], 1)
    out = FeatureAlign()(feats)
    assert out.shape == (2, 18, 16, 16)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_encoder_layer_ignores_the_neighbourhood():
    torch.manual_seed(0)
    layer = EncoderLayer(16, 2, 32, dropout=0.0).eval()
    size, mask = (5, 5), neighbor_mask((5, 5), (2, 2))  # 3×3 window
    x, pos = torch.randn(1, 25, 16), torch.randn(1, 25, 16)
    y = x.clone()
    y[0, 12] += 5.0  # the centre token
    a, b = layer(x, pos, mask), layer(y, pos, mask)
    changed = (a - b).abs().amax(-1)[0].reshape(size) > 1e-6
    expect = torch.ones(size, dtype=torch.bool)
    expect[1:4, 1:4] = False  # its neighbours cannot see it…
    expect[2, 2] = True  # …itself changes through the residual path
    assert torch.equal(changed, expect)


def test_query_decoder_layer_never_sees_its_own_position():
    torch.manual_seed(0)
    layer = QueryDecoderLayer(16, 25, 2, 32, dropout=0.0).eval()
    mask = neighbor_mask((5, 5), (2, 2))
    memory, pos = torch.randn(1, 25, 16), torch.randn(1, 25, 16)
    other = memory.clone()
    other[0, 12] += 5.0
    a, b = layer(memory, memory, pos, mask), layer(other, other, pos, mask)
    changed = (a - b).abs().amax(-1)[0].reshape(5, 5) > 1e-6
    # the queries are learned, so the centre and its 8 neighbours do not depend on the centre's features at all
    assert not changed[1:4, 1:4].any() and changed.sum() == 25 - 9


def test_decoder_layers_use_their_own_queries_and_the_previous_output():
    torch.manual_seed(0)
    t = UniADReconstruction(6, (4, 4), hidden_dim=8, heads=2, encoder_layers=1, decoder_layers=2, ff_dim=16,
                            neighbor_size=(2, 2)).eval()
    feats = torch.randn(2, 6, 4, 4)
    x = t.input_proj(feats.flatten(2).transpose(1, 2))
    pos = t.pos()[None]
    memory = t.encoder_layers[0](x, pos, t.mask)
    out = t.decoder_layers[0](memory, memory, pos, t.mask)
    out = t.decoder_layers[1](out, memory, pos, t.mask)
    ref = t.output_proj(t.decoder_norm(out)).transpose(1, 2).reshape(2, 6, 4, 4)
    torch.testing.assert_close(t(feats), ref, rtol=0, atol=0)


def test_learned_positions_are_column_then_row():
    t = UniADReconstruction(6, (3, 5), hidden_dim=8, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=8,
                            neighbor_size=(2, 2))
    pos = t.pos().reshape(3, 5, 8)
    assert torch.equal(pos[2, 4, :4], t.pos.col.weight[4]) and torch.equal(pos[2, 4, 4:], t.pos.row.weight[2])
    w = t.pos.row.weight.detach()
    assert 0 <= float(w.min()) and float(w.max()) < 1


def test_initialisation_as_official():
    torch.manual_seed(0)
    t = UniADReconstruction(10, (4, 4), hidden_dim=8, heads=2, encoder_layers=3, decoder_layers=2, ff_dim=16,
                            neighbor_size=(2, 2))
    enc, dec = t.encoder_layers, t.decoder_layers
    # deep copies: what the Xavier pass does not redraw starts equal in every layer
    assert all(torch.equal(enc[0].attn.in_proj_weight, layer.attn.in_proj_weight) for layer in enc)
    assert torch.equal(dec[0].queries.weight, dec[1].queries.weight)
    assert torch.equal(dec[0].attn_previous.in_proj_weight, dec[1].attn_previous.in_proj_weight)
    # every nn.Linear was redrawn (Xavier uniform, bound √(6 / (fan_in + fan_out))) with a zero bias
    assert not torch.equal(enc[0].ff.linear1.weight, enc[1].ff.linear1.weight)
    assert not torch.equal(enc[0].attn.out_proj.weight, enc[1].attn.out_proj.weight)
    linears = [m for m in t.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3 * 3 + 2 * 4 + 2
    for m in linears:
        assert not m.bias.any()
        assert float(m.weight.detach().abs().max()) <= (6 / sum(m.weight.shape)) ** 0.5


def test_jitter_scale_and_probability():
    t = UniADReconstruction(400, (4, 4), hidden_dim=8, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=8,
                            neighbor_size=(2, 2), jitter_scale=20.0, jitter_prob=1.0)
    torch.manual_seed(0)
    tokens = torch.randn(64, 16, 400)
    noise = t.jitter(tokens) - tokens
    ratio = noise.std(dim=2) / (tokens.norm(dim=2) / 400 * 20.0)
    assert abs(float(ratio.mean()) - 1.0) < 0.01
    t.jitter_prob = 0.0
    assert torch.equal(t.jitter(tokens), tokens)


def test_training_randomness_depends_on_the_step_only(tiny):
    feats = [torch.randn(2, sum(tiny.encoder.channels), *tiny.transformer.size)]
    tiny.train()
    tiny.train_steps.zero_()
    state = torch.get_rng_state()
    a = tiny.reconstruct(feats)[0]
    torch.manual_seed(123)  # the global generators do not matter…
    b = tiny.reconstruct(feats)[0]
    tiny.train_steps.zero_()
    c = tiny.reconstruct(feats)[0]
    assert int(tiny.train_steps) == 1
    assert torch.equal(a, c) and not torch.equal(a, b)  # …the step does
    torch.set_rng_state(state)
    tiny.reconstruct(feats)
    assert torch.equal(torch.get_rng_state(), state)  # and are left as they were
    tiny.eval()
    torch.testing.assert_close(tiny.reconstruct(feats)[0], tiny.reconstruct(feats)[0], rtol=0, atol=0)


def test_map_and_image_score_as_ader(tiny):
    torch.manual_seed(0)
    feats, recs = [torch.randn(2, 5, 16, 16)], [torch.randn(2, 5, 16, 16)]
    amap = tiny.anomaly_map(feats, recs, (256, 256))
    # ADer: pred = √Σ(rec − align)², then nn.UpsamplingBilinear2d(scale_factor=16), no smoothing
    pred = torch.sqrt(torch.sum((recs[0] - feats[0]) ** 2, dim=1, keepdim=True))
    torch.testing.assert_close(amap, nn.UpsamplingBilinear2d(scale_factor=16)(pred)[:, 0], rtol=0, atol=1e-6)
    # the image score written to scores.csv (pooled in float64) against ADer's pooling_ks = [16, 16]: avg_pool2d
    # of the float32 maps, in float32, and the evaluator's own (integral image) reference
    assert get_preset("uniad").pool == get_preset("uniad-tiny").pool == 16
    ours = pooled_max(amap, 16).numpy()
    ader = F.avg_pool2d(amap[:, None], 16, stride=1).flatten(1).amax(1).numpy()
    np.testing.assert_allclose(ours, ader, rtol=1e-6)
    np.testing.assert_allclose(ours, [reference.pooled_max(m, 16) for m in amap.numpy()], rtol=1e-12)


def test_frozen_encoder_gets_no_gradient_and_keeps_statistics(tiny):
    assert_frozen_encoder(tiny, torch.randn(2, 3, 64, 64))
    trainable = sum(p.numel() for n, p in tiny.named_parameters() if not n.startswith("encoder."))
    assert tiny.param_counts()["trainable"] == trainable


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    preset = get_preset("uniad-tiny").replace(image_size=64)
    losses = losses_on_a_fixed_batch(build_model(preset), preset, torch.randn(4, 3, 64, 64), steps=10)
    assert losses[-1] < 0.9 * losses[0] and losses == sorted(losses, reverse=True), losses


def test_adamw_with_ader_weight_decay_groups(tiny):
    opt, sched = make_optimizer(get_preset("uniad"), tiny)
    assert isinstance(opt, torch.optim.AdamW)
    no_decay, decay = opt.param_groups
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 1e-4
    assert decay["lr"] == 1e-4 and decay["betas"] == (0.9, 0.999) and decay["eps"] == 1e-8
    names = {id(p): n for n, p in tiny.named_parameters()}
    nd = {names[id(p)] for p in no_decay["params"]}
    d = {names[id(p)] for p in decay["params"]}
    t = "transformer."
    assert {t + "input_proj.bias", t + "encoder_layers.0.attn.in_proj_bias", t + "decoder_norm.weight"} <= nd
    assert {t + "input_proj.weight", t + "encoder_layers.0.attn.in_proj_weight", t + "pos.row.weight",
            t + "decoder_layers.0.queries.weight", t + "decoder_layers.0.ff.linear1.weight"} <= d
    assert sum(p.numel() for p in no_decay["params"] + decay["params"]) == tiny.param_counts()["trainable"]


def test_other_encoders_keep_every_block():
    from baselines.common.encoder import create_encoder

    assert drop_unused_blocks(create_encoder("resnet18", (1, 2), "none")) == 0
    enc = create_encoder("tf_efficientnet_lite0", (1, 2, 3, 4), "none")
    assert drop_unused_blocks(enc) == 0 and len(enc.body.blocks) == 7  # level 4 is the last block's output


def test_published_preset_counts_and_one_step_on_cpu():
    preset = get_preset("uniad")
    assert (preset.backbone, preset.out_indices, preset.weights) == ("tf_efficientnet_b4.aa_in1k", (0, 1, 2, 3), "hub")
    assert (preset.mean, preset.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert (preset.image_size, preset.batch_size, preset.lr, preset.optimizer, preset.betas, preset.weight_decay) == (
        256, 8, 1e-4, "adamw", (0.9, 0.999), 1e-4)
    assert (preset.grad_clip, preset.epochs, preset.lr_milestone, preset.lr_gamma, preset.seed) == (5.0, 100, 80, 0.1, 42)
    assert preset.drop_last and preset.decay_matrices_only and preset.pool == 16
    torch.manual_seed(0)
    model = build_model(preset, weights="none")  # no download
    counts = model.param_counts()
    # ADer's model, counted with random weights after its own freezing: 24,521,560 total / 7,779,344 trainable,
    # 13,106,232 of which are EfficientNet-B4 blocks 5-6, run but unused; we drop them (same features)
    assert counts == {"total": 11_415_328, "trainable": 7_779_344}
    assert model.removed_backbone_params == 13_106_232
    assert counts["total"] + model.removed_backbone_params == 24_521_560
    uncut = timm.create_model("tf_efficientnet_b4", pretrained=False, features_only=True, out_indices=(0, 1, 2, 3))
    assert sum(p.numel() for p in uncut.parameters()) + counts["trainable"] == 24_521_560
    # the dropped blocks feed no output: the uncut network with the same weights gives the same features
    missing, unexpected = uncut.load_state_dict(model.encoder.body.state_dict(), strict=False)
    assert not unexpected and {k.split(".")[1] for k in missing} == {"5", "6"} and len(model.encoder.body.blocks) == 5
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model.encoder(x), uncut.eval()(x)))
    t = model.transformer
    assert (t.size, t.neighbor_size, t.jitter_scale, t.jitter_prob) == ((16, 16), (8, 8), 20.0, 1.0)
    assert (len(t.encoder_layers), len(t.decoder_layers), t.input_proj.in_features, t.input_proj.out_features) == (
        4, 4, 272, 256)
    model.train()
    feats, recs = model(torch.randn(1, 3, 256, 256))
    assert [tuple(f.shape) for f in feats] == [(1, 272, 16, 16)] == [tuple(r.shape) for r in recs]
    loss = model.loss(feats, recs)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.trainable_parameters())
    assert F.mse_loss(recs[0], feats[0]).item() == pytest.approx(loss.item())
