"""ViTAD: the published model's size and recipe, shapes, decoder order, loss and map, learning, frozen teacher."""

import numpy as np
import pytest
import torch

import baselines.vitad  # noqa: F401  (registers the presets)
from baselines.common.engine import make_optimizer
from baselines.common.maps import mean_cosine_anomaly_map
from baselines.common.model import build_model
from baselines.common.presets import get_preset
from baselines.vitad.model import to_grid
from tests.baselines.conftest import assert_frozen_encoder

#: ADer's ViTAD (model/vitad.py as configs/vitad/vitad_coco.py builds it), random weights, after its freezing
OFFICIAL_TOTAL, OFFICIAL_TRAINABLE = 38_586_472, 16_897_768


@pytest.fixture(scope="module")
def published():
    torch.manual_seed(0)
    return build_model(get_preset("vitad"), weights="none")  # no download


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model(get_preset("vitad-tiny").replace(image_size=64))


def test_published_parameter_counts_equal_the_official_model_without_its_unused_tensors(published):
    from timm.models.vision_transformer import VisionTransformer

    # ADer's decoder is a whole timm ViT-S (img_size 256, depth 9, 1000 classes); its forward uses only the
    # blocks and its own position embedding. Never used, never given a gradient: class token, patch
    # embedding, final norm, head. The teacher's final norm is never applied either (the neck is block 12's
    # raw output); timm's features_only model does not have it.
    ader_decoder = VisionTransformer(img_size=256, patch_size=16, embed_dim=384, depth=9, num_heads=6)
    unused_decoder = sum(p.numel() for m in (ader_decoder.patch_embed, ader_decoder.norm, ader_decoder.head)
                         for p in m.parameters()) + ader_decoder.cls_token.numel()
    assert unused_decoder == 681_448
    unused_teacher_norm = 2 * 384
    counts = published.param_counts()
    assert counts == {"total": 37_904_256, "trainable": 16_216_320}
    assert counts["total"] + unused_decoder + unused_teacher_norm == OFFICIAL_TOTAL
    assert counts["trainable"] + unused_decoder == OFFICIAL_TRAINABLE
    # trainable = linear fusion 384→384, position embedding 256×384, nine ViT-S blocks
    assert sum(p.numel() for p in published.fusion.parameters()) == 384 * 384 + 384
    assert tuple(published.pos_embed.shape) == (1, 256, 384) and len(published.blocks) == 9
    assert all(isinstance(h, torch.nn.Identity) for h in published.heads)


def test_published_recipe_is_aders(published):
    p = get_preset("vitad")
    assert (p.backbone, p.out_indices, p.encoder_kwargs) == ("vit_small_patch16_224.dino", (2, 5, 8, 11),
                                                             {"img_size": 256})
    assert (p.mean, p.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert (p.image_size, p.batch_size, p.lr, p.epochs, p.lr_milestone, p.lr_gamma) == (256, 8, 1e-4, 100, 80, 0.1)
    assert (p.optimizer, p.betas, p.eps, p.weight_decay, p.decay_matrices_only) == (
        "adamw", (0.9, 0.999), 1e-8, 1e-4, True)
    assert (p.grad_clip, p.drop_last, p.pool, p.seed, p.published) == (5.0, True, 16, 42, True)
    assert published.students == [3, 6, 9] and published.grid == 16 and published.sigma == 4.0
    opt, _ = make_optimizer(p, published)
    assert type(opt) is torch.optim.AdamW
    plain, decayed = opt.param_groups
    # ADer's get_optim: vectors and biases undecayed; matrices and the (1, 256, 384) position embedding decayed
    names = {id(q): n for n, q in published.named_parameters()}
    assert plain["weight_decay"] == 0.0 and decayed["weight_decay"] == 1e-4
    assert all(q.ndim == 1 for q in plain["params"])
    assert all(q.ndim >= 2 and not names[id(q)].endswith(".bias") for q in decayed["params"])
    assert "pos_embed" in {names[id(q)] for q in decayed["params"]}
    assert len(plain["params"]) + len(decayed["params"]) == len(published.trainable_parameters())


def test_published_forward_backward_on_cpu(published):
    feats, recs = assert_frozen_encoder(published, torch.randn(1, 3, 256, 256))
    assert [tuple(f.shape) for f in feats] == [(1, 384, 16, 16)] * 4  # blocks 3, 6, 9 and the neck (12)
    assert [tuple(r.shape) for r in recs] == [(1, 384, 16, 16)] * 3
    assert torch.isfinite(published.loss(feats, recs))
    assert all(torch.isfinite(p.grad).all() for p in published.trainable_parameters())


def test_decoder_taps_reconstruct_teacher_levels_in_mirror_order(published):
    torch.manual_seed(1)
    feats = [torch.randn(2, 384, 16, 16) for _ in range(4)]
    published.eval()
    with torch.no_grad():
        recs = published.reconstruct(feats)
        x = published.fusion(feats[3].flatten(2).transpose(1, 2)) + published.pos_embed
        after = {}
        for i, block in enumerate(published.blocks, start=1):
            x = block(x)
            after[i] = x.transpose(1, 2).reshape(2, 384, 16, 16)
    # teacher block 3 ← decoder block 9, 6 ← 6, 9 ← 3 (ADer returns its student taps reversed)
    for rec, block in zip(recs, (9, 6, 3)):
        torch.testing.assert_close(rec, after[block], rtol=0, atol=0)
    # token (row r, column c) of the grid is token r * 16 + c of the sequence
    torch.testing.assert_close(recs[0][1, :, 2, 5], x[1, 2 * 16 + 5])


def test_loss_and_map_against_numpy():
    rng = np.random.default_rng(0)
    model = build_model(get_preset("vitad-tiny").replace(image_size=64), weights="none")
    t = [rng.standard_normal((2, 40, 8, 8)), rng.standard_normal((2, 112, 4, 4)), rng.standard_normal((2, 320, 2, 2))]
    r = [rng.standard_normal((2, 40, 2, 2)), rng.standard_normal((2, 112, 2, 2))]
    feats, recs = [torch.from_numpy(a).float() for a in t], [torch.from_numpy(a).float() for a in r]
    # the teacher levels on the 2×2 token grid of the neck: 8×8 and 4×4 area-averaged
    grid = [a.reshape(2, a.shape[1], 2, a.shape[2] // 2, 2, a.shape[3] // 2).mean((3, 5)) for a in t[:2]]
    ref = 0.0
    for a, b in zip(grid, r):
        a, b = a.reshape(2, -1), b.reshape(2, -1)
        ref += np.mean(1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    assert float(model.loss(feats, recs)) == pytest.approx(ref, rel=1e-5)
    amap = model.anomaly_map(feats, recs, (16, 16))
    torch.testing.assert_close(amap, mean_cosine_anomaly_map([torch.from_numpy(g).float() for g in grid], recs,
                                                              (16, 16), 4.0, align_corners=True))
    same = model.anomaly_map(feats, model.targets(feats), (16, 16))
    assert float(same.abs().max()) < 1e-6


def test_to_grid_resamples_only_other_grids():
    f = torch.randn(1, 3, 8, 8)
    assert to_grid(f, 8) is f
    torch.testing.assert_close(to_grid(f, 4), torch.nn.functional.avg_pool2d(f, 2))
    up = to_grid(torch.randn(1, 3, 2, 2), 4)
    assert up.shape == (1, 3, 4, 4)


def test_tiny_shapes_heads_and_frozen_teacher(tiny):
    feats, recs = assert_frozen_encoder(tiny, torch.randn(3, 3, 64, 64))
    # EfficientNet-Lite0 levels 2-4 (1/8, 1/16, 1/32); the last is the neck, the others are reconstructed
    assert [tuple(f.shape) for f in feats] == [(3, 40, 8, 8), (3, 112, 4, 4), (3, 320, 2, 2)]
    assert [tuple(r.shape) for r in recs] == [(3, 40, 2, 2), (3, 112, 2, 2)]
    assert [h.out_features for h in tiny.heads] == [40, 112]
    amap = tiny.anomaly_map(feats, recs, (64, 64))
    assert amap.shape == (3, 64, 64) and torch.isfinite(amap).all() and float(amap.min()) >= 0


@pytest.mark.parametrize("kw, match", [
    (dict(neck=3), "at least one teacher level"),
    (dict(students=[2]), "one increasing decoder block"),
    (dict(students=[2, 1]), "one increasing decoder block"),
    (dict(students=[1, 2]), "must be the decoder's last"),
])
def test_inconsistent_model_arguments_are_refused(kw, match):
    preset = get_preset("vitad-tiny").replace(image_size=64)
    with pytest.raises(ValueError, match=match):
        build_model(preset.replace(model={**preset.model, **kw}), weights="none")
