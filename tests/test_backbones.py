"""The OV2VSS image backbones: shapes at any input size, checkpoint loading and its errors."""
import math

import pytest
import torch

from methods.ov2vss.backbones import (
    BACKBONES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    BackboneConfig,
    SamViTBackbone,
    create_backbone,
    normalize,
)

TINY = ["resnet-tiny", "sam-vit-tiny"]


def run(backbone: Backbone, height: int, width: int, seed: int = 0) -> list[torch.Tensor]:
    images = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return backbone.eval()(images)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("size", [(64, 96), (70, 100), (33, 17)])
def test_output_shapes_and_strides(name, size):
    torch.manual_seed(0)
    backbone = create_backbone(name)
    assert backbone.config is BACKBONES[name]
    assert backbone.strides == (4, 8, 16, 32)
    maps = run(backbone, *size)
    assert [tuple(m.shape) for m in maps] == [
        (2, c, math.ceil(size[0] / s), math.ceil(size[1] / s)) for c, s in zip(backbone.channels, backbone.strides)]
    assert all(torch.isfinite(m).all() for m in maps)


def test_sam_non_square_input_with_trained_rel_pos():
    """Global blocks interpolate non-zero rel_pos tables to a 30x40 token grid."""
    torch.manual_seed(0)
    backbone = create_backbone("sam-vit-tiny")
    with torch.no_grad():
        for name, param in backbone.encoder.named_parameters():
            if "rel_pos" in name:
                param.normal_()
    maps = run(backbone, 480, 640)
    assert [tuple(m.shape[-2:]) for m in maps] == [(120, 160), (60, 80), (30, 40), (15, 20)]


def test_sam_matches_image_encoder_at_its_own_size():
    """At img_size our manual run of the encoder equals ImageEncoderViT.forward (read at the neck)."""
    torch.manual_seed(0)
    config = BackboneConfig(kind="sam-vit", channels=8, img_size=128, embed_dim=32, depth=4, num_heads=2,
                            window_size=4, global_attn_indexes=(0, 1, 2, 3), out_chans=16)
    backbone = SamViTBackbone(config).eval()
    with torch.no_grad():
        backbone.encoder.pos_embed.normal_()
    seen = []
    backbone.encoder.neck.register_forward_hook(lambda module, inputs, output: seen.append(output))
    images = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        backbone(images)
        expected = backbone.encoder(images)
    torch.testing.assert_close(seen[0], expected)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_load_saved_weights_by_path(tmp_path, name, suffix):
    torch.manual_seed(0)
    original = create_backbone(name)
    with torch.no_grad():  # non-default values everywhere, so a skipped tensor would show
        for param in original.parameters():
            param.normal_(std=0.1)
    if name.startswith("sam"):
        state = {f"image_encoder.{k}": v for k, v in original.encoder.state_dict().items()}
        state["mask_decoder.x"] = torch.zeros(3)
    else:
        state = {k: v for k, v in original.body.state_dict().items()}
        state["fc.weight"] = torch.zeros(10, 128)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    torch.manual_seed(1)  # other random init, so only the loaded trunk can make the outputs agree
    loaded = create_backbone(name, pretrained=path)
    trunk = "encoder" if name.startswith("sam") else "body"
    for (key, a), b in zip(getattr(original, trunk).state_dict().items(), getattr(loaded, trunk).state_dict().values()):
        assert torch.equal(a, b), key
    loaded.load_state_dict(original.state_dict())  # the projections are not in the checkpoint
    for a, b in zip(run(original, 70, 100), run(loaded, 70, 100)):
        assert torch.equal(a, b)


def test_load_encoder_only_sam_state_dict(tmp_path):
    original = create_backbone("sam-vit-tiny")
    path = tmp_path / "encoder.pt"
    torch.save(original.encoder.state_dict(), path)
    loaded = create_backbone("sam-vit-tiny", pretrained=str(path))
    assert torch.equal(loaded.encoder.pos_embed, original.encoder.pos_embed)


@pytest.mark.parametrize("name, expected", [("sam-vit-tiny", "sam_vit_b_01ec64.pth"),
                                            ("resnet-tiny", "a ResNet state dict")])
def test_missing_file(tmp_path, name, expected):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError) as error:
        create_backbone(name, pretrained=path)
    assert str(path) in str(error.value) and expected in str(error.value)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("kind", ["random bytes", "truncated zip", "not a state dict"])
def test_corrupt_file(tmp_path, name, kind):
    path = tmp_path / "broken.pth"
    if kind == "random bytes":
        path.write_bytes(torch.randint(0, 256, (1000,), dtype=torch.uint8).numpy().tobytes())
    elif kind == "truncated zip":
        torch.save({"w": torch.zeros(100)}, path)
        path.write_bytes(path.read_bytes()[:200])
    else:
        torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError) as error:
        create_backbone(name, pretrained=path)
    assert str(path) in str(error.value) and "expected a" in str(error.value)


def test_corrupt_safetensors(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="cannot read checkpoint .*broken.safetensors"):
        create_backbone("resnet-tiny", pretrained=path)


def test_sam_checkpoint_for_another_model_type(tmp_path):
    state = {f"image_encoder.{k}": v for k, v in create_backbone("sam-vit-tiny").encoder.state_dict().items()}
    state["image_encoder.pos_embed"] = torch.zeros(1, 32, 32, 64)  # as if trained at img_size 512
    path = tmp_path / "other_sam.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as error:
        create_backbone("sam-vit-tiny", pretrained=path)
    message = str(error.value)
    assert str(path) in message and "image_encoder.pos_embed" in message and "(1, 32, 32, 64)" in message
    assert "(1, 64, 64, 64)" in message and "another model type" in message


def test_resnet_checkpoint_for_another_model_type(tmp_path):
    import timm

    path = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), path)
    with pytest.raises(ValueError) as error:
        create_backbone("resnet-tiny", pretrained=path)
    assert str(path) in str(error.value) and "another model type" in str(error.value)


def test_checkpoint_missing_encoder_keys(tmp_path):
    state = {f"image_encoder.{k}": v for k, v in create_backbone("sam-vit-tiny").encoder.state_dict().items()
             if not k.startswith("neck.")}
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="misses keys") as error:
        create_backbone("sam-vit-tiny", pretrained=path)
    assert str(path) in str(error.value) and "image_encoder.neck.0.weight" in str(error.value)


def test_unknown_name():
    with pytest.raises(ValueError, match="resnet101, resnet-tiny, sam-vit-b, sam-vit-tiny"):
        create_backbone("vit-huge")


def test_normalize():
    images = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    expected = (images.double() - torch.tensor(IMAGENET_MEAN, dtype=torch.double)[:, None, None]) / torch.tensor(
        IMAGENET_STD, dtype=torch.double)[:, None, None]
    for given in (images, images.float()):
        out = normalize(given)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected.float())
    with pytest.raises(ValueError, match="3, H, W"):
        normalize(torch.zeros(2, 4, 5, 7))


def test_full_size_configs_build():
    sam = create_backbone("sam-vit-b")
    assert sum(p.numel() for p in sam.encoder.parameters()) == pytest.approx(89.7e6, rel=0.01)
    assert sam.encoder.pos_embed.shape == (1, 64, 64, 768)
    assert [i for i, block in enumerate(sam.encoder.blocks) if block.window_size == 0] == [2, 5, 8, 11]
    assert {block.window_size for block in sam.encoder.blocks} == {0, 14}
    resnet = create_backbone("resnet101")
    assert sum(p.numel() for p in resnet.body.parameters()) == pytest.approx(42.5e6, rel=0.01)
    assert resnet.body.feature_info.reduction() == [4, 8, 16, 32]
    assert resnet.channels == sam.channels == (256,) * 4
