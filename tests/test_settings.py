import numpy as np
import pytest

from benchmark import ABSTAIN
from benchmark.data import vspw as vspw_reader
from benchmark.data.cards import load_card
from benchmark.data.settings import BACKGROUND, make_setting
from benchmark.metrics import IGNORE

VSPW_MASKS = vspw_reader.mask_format(load_card("vspw")["classes"])


def synthetic(setting, protocol="intended"):
    return make_setting(load_card("synthetic"), setting, protocol)


def vspw(setting, protocol="intended", **kwargs):
    return make_setting(load_card("vspw"), setting, protocol, **kwargs)


def truth(setting, raw_ids):
    """Scored classes of raw VSPW mask values, decoded as the reader decodes them."""
    return setting.ground_truth(VSPW_MASKS.lut[np.array(raw_ids, dtype=np.uint8)]).tolist()


def test_unseen_keeps_only_unseen_pixels():
    s = vspw("unseen")
    assert len(s.vocabulary) == 44 and s.vocabulary[0] == "trash can" and s.vocabulary[-1] == "train"
    assert truth(s, [0, 1, 80, 81, 123, 124, 255]) == [IGNORE, IGNORE, IGNORE, 0, 42, 43, IGNORE]
    assert s.class_names == s.vocabulary and s.groups == {}


def test_seen_and_all():
    s = vspw("seen")
    assert len(s.vocabulary) == 80 and s.vocabulary[-1] == "bag or package"
    assert truth(s, [1, 80, 81]) == [0, 79, IGNORE]
    a = vspw("all")
    assert len(a.vocabulary) == 124
    assert truth(a, [0, 1, 124, 255]) == [IGNORE, 0, 123, IGNORE]
    assert a.groups["seen"] == list(range(80)) and a.groups["unseen"] == list(range(80, 124))


def test_names_read_as_users_write_them():
    assert "handrail or fence" in vspw("seen").vocabulary
    assert "Microwave oven" in vspw("unseen").vocabulary


def test_official_protocol_reproduces_the_authors_quirks():
    s = vspw("unseen", "official")
    assert s.vocabulary[-1] == BACKGROUND and len(s.vocabulary) == 45 and len(s.class_names) == 44
    # raw 124 (train) is never ground truth; 81..123 map as intended
    assert truth(s, [80, 81, 123, 124]) == [IGNORE, 0, 42, IGNORE]
    # a "background" prediction is counted as the last class (train)
    assert s.score_labels(np.array([0, 43, 44, ABSTAIN])).tolist() == [0, 43, 43, ABSTAIN]
    seen = vspw("seen", "official")  # raw 80 (bag_or_package) drops out: 79 classes scored
    assert truth(seen, [1, 79, 80]) == [0, 78, IGNORE]
    with pytest.raises(ValueError, match="no official protocol"):
        vspw("all", "official")


def test_synthetic_settings_follow_the_card():
    card = load_card("synthetic")
    s = synthetic("unseen")
    assert s.vocabulary == card["classes"][card["num_seen"]:]
    with pytest.raises(ValueError, match="unknown setting"):
        synthetic("novel")
    with pytest.raises(ValueError, match="unknown protocol"):
        synthetic("all", "authors")
