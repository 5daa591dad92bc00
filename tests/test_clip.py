"""The shared CLIP module: dense features, the cost volume, text embeddings, loading, sliding windows."""

import pytest
import torch
import torch.nn.functional as F

from methods import clip
from methods.windows import WindowedInference, window_starts


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return clip.load_clip(clip.TINY_MODEL, "random")


def random_images(batch, height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width), generator=generator, dtype=torch.uint8)


def test_cost_volume_is_the_cosine_of_every_pixel_with_every_class_and_template():
    generator = torch.Generator().manual_seed(1)
    dense = torch.randn(2, 16, 3, 5, generator=generator) * 4
    text = torch.randn(3, 4, 16, generator=generator)
    volume = clip.cost_volume(dense, text)
    assert volume.shape == (2, 3, 4, 3, 5)  # batch x templates x classes x H x W
    for b, t, c, y, x in [(0, 0, 0, 0, 0), (1, 2, 3, 2, 4), (0, 1, 2, 1, 3), (1, 0, 1, 0, 2)]:
        pixel, name = dense[b, :, y, x], text[t, c]
        expected = (pixel @ name) / (pixel.norm() * name.norm())
        assert volume[b, t, c, y, x].item() == pytest.approx(expected.item(), abs=1e-6)
    assert volume.abs().max() <= 1 + 1e-6


def test_plain_dense_path_at_the_input_size_gives_open_clips_image_embedding(tiny):
    images = clip.normalize(random_images(2, 64, 64))
    tokens = tiny.tokens(images, last_block="plain")
    assert tokens.shape == (2, 1 + 8 * 8, tiny.embed_dim)
    torch.testing.assert_close(tokens[:, 0], tiny.model.encode_image(images), atol=1e-5, rtol=1e-5)


def test_value_path_is_the_last_block_with_attention_restricted_to_each_token_itself(tiny):
    """The documented difference from open_clip's encoder: only the last block's attention changes,
    to the value path (q/k ignored), which equals attention where each token sees only itself."""
    images = clip.normalize(random_images(2, 64, 64, seed=3))
    visual = tiny.model.visual
    with torch.no_grad():
        x = visual.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.view(1, 1, -1).expand(2, -1, -1), x], 1) + visual.positional_embedding
        x = visual.ln_pre(x)
        for block in visual.transformer.resblocks[:-1]:
            x = block(x)
        self_only = torch.full((x.shape[1], x.shape[1]), float("-inf"))
        self_only.fill_diagonal_(0)
        x = visual.transformer.resblocks[-1](x, attn_mask=self_only)
        expected = visual.ln_post(x) @ visual.proj
    value = tiny.tokens(images, last_block="value")
    torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(value[:, 0], tiny.model.encode_image(images), atol=1e-3)


def test_dense_features_at_any_size_resize_the_positional_embedding(tiny):
    features = tiny.dense_features(clip.normalize(random_images(1, 48, 96)))
    assert features.shape == (1, tiny.embed_dim, 6, 12)
    assert tiny._positional_embedding((8, 8)) is tiny.model.visual.positional_embedding
    assert tiny._positional_embedding((6, 12)).shape == (1 + 72, tiny.model.visual.positional_embedding.shape[1])
    with pytest.raises(ValueError, match="multiple of the patch size 8"):
        tiny.dense_features(clip.normalize(random_images(1, 50, 64)))


def test_text_embeddings_keep_one_normalised_embedding_per_class_and_template_and_are_cached(tiny):
    names = ["red circle", "blue square", "green triangle"]
    assert [len(clip.prompt_templates(p)) for p in clip.PROMPT_SETS] == [1, 8, 80]
    hits, misses = tiny.cache_stats.hits, tiny.cache_stats.misses
    embeddings = tiny.text_embeddings(names, "imagenet_select")
    assert embeddings.shape == (8, 3, tiny.embed_dim)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(8, 3))
    direct = tiny.model.encode_text(tiny.tokenizer(["a origami blue square."]))
    torch.testing.assert_close(embeddings[2, 1], F.normalize(direct, dim=-1)[0], atol=1e-5, rtol=1e-5)
    assert tiny.text_embeddings(names, "imagenet_select") is embeddings
    assert (tiny.cache_stats.hits - hits, tiny.cache_stats.misses - misses) == (1, 1)
    assert tiny.text_embeddings(names[:2], "imagenet_select").shape == (8, 2, tiny.embed_dim)
    with pytest.raises(ValueError, match="vocabulary is empty"):
        tiny.text_embeddings([], "single")
    with pytest.raises(ValueError, match="unknown prompt set"):
        tiny.text_embeddings(names, "imagenet_all")


def test_weights_saved_to_a_file_load_back_by_path(tiny, tmp_path):
    path = tmp_path / "tiny-clip.pt"
    torch.save(tiny.model.state_dict(), path)
    loaded = clip.load_clip(clip.TINY_MODEL, path)
    assert loaded.weights == str(path.resolve()) and loaded is not tiny
    images = clip.normalize(random_images(1, 64, 64, seed=5))
    torch.testing.assert_close(loaded.dense_features(images), tiny.dense_features(images))
    torch.testing.assert_close(loaded.text_embeddings(["cat"], "single"), tiny.text_embeddings(["cat"], "single"))


def test_a_missing_corrupt_or_foreign_checkpoint_names_the_file_and_what_was_expected(tiny, tmp_path):
    missing = tmp_path / "nowhere" / "clip.pt"
    with pytest.raises(FileNotFoundError, match=f"CLIP checkpoint {missing} does not exist.*open_clip state dict"):
        clip.load_clip(clip.TINY_MODEL, missing)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(ValueError, match=f"cannot load CLIP checkpoint {corrupt}.*Expected an open_clip state dict"):
        clip.load_clip(clip.TINY_MODEL, corrupt)
    foreign = tmp_path / "foreign.pt"
    state = tiny.model.state_dict()
    state["visual.proj"] = torch.zeros(3, 3)
    torch.save(state, foreign)
    with pytest.raises(ValueError, match=f"cannot load CLIP checkpoint {foreign} into {clip.TINY_MODEL}"):
        clip.load_clip(clip.TINY_MODEL, foreign)
    with pytest.raises(ValueError, match="neither a file nor a tag"):
        clip.load_clip(clip.TINY_MODEL, "openia")
    with pytest.raises(ValueError, match="unknown CLIP model"):
        clip.load_clip("ViT-B-61", "random")


def test_windows_cover_the_frame_and_average_overlaps_exactly():
    assert window_starts(853, 480, 320) == [0, 320, 373]
    assert window_starts(480, 480, 320) == [0]
    image = random_images(1, 70, 100, seed=7)[0]
    seen = []

    def identity(crops):  # class scores = the pixels themselves: averaging overlaps must give them back
        seen.append(crops.shape)
        return crops.float()

    slide = WindowedInference("slide", size=32, overlap=0.5, batch_size=4)
    torch.testing.assert_close(slide(image, identity), image.float())
    assert all(shape[-2:] == (32, 32) and shape[0] <= 4 for shape in seen)
    assert sum(shape[0] for shape in seen) == len(slide.windows(70, 100)) == 4 * 6
    ramp = (torch.arange(100).view(1, 1, 100) * 2 + torch.arange(70).view(1, 70, 1)).expand(3, -1, -1).to(torch.uint8)
    small = WindowedInference("slide", size=128)(ramp, identity)  # upscaled to fit a window, scaled back
    assert small.shape == (3, 70, 100)
    assert (small - ramp.float()).abs().mean() < 1
    whole = WindowedInference("whole", size=64)(image, lambda crops: crops.float()[:, :1].expand(-1, 5, -1, -1))
    assert whole.shape == (5, 70, 100)
    with pytest.raises(ValueError, match="overlap"):
        WindowedInference("slide", overlap=1.0)
    with pytest.raises(ValueError, match="inference mode"):
        WindowedInference("tiles")
