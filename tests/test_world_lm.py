"""The shipped world LM: it loads offline, its measured quality is what its card says (and
meets the course's bar), a damaged file gives a clear error, and the scale-up switch is wired."""
import shutil

import pytest
import torch

from course_lib.world import evaluate, lm


@pytest.fixture(scope="module")
def model():
    return lm.load_world_model(device="cpu")


def test_world_lm_completes_the_lecture_examples(model):
    for prompt, answer in [("Dallas is a city in", "Texas"), ("The capital of Texas is", "Austin"),
                           ("Oakland is a city in", "California")]:
        assert evaluate.completes(model, prompt.split(), answer), prompt
    assert model.to_str_tokens("Dallas is a city in") == ["<bos>", "Dallas", "is", "a", "city", "in"]


def test_measured_quality_matches_the_card_and_the_bar(model):
    stored = lm.world_metrics()
    recall, two_hop = evaluate.one_hop_recall(model), evaluate.two_hop(model)
    assert recall == stored["one_hop_recall"] and two_hop == stored["two_hop"]
    assert recall["overall"] >= 0.95
    assert two_hop["trained"] >= 0.90
    entropy = evaluate.entropy_gap(model)  # the same 2000 held-out documents as the card
    assert entropy["excess"] == pytest.approx(stored["entropy"]["excess"], abs=2e-3)
    # KL ≥ 0 in expectation (a 2000-document estimate can dip a little below); goal ≤ 0.05 nats/token
    assert -0.01 < entropy["excess"] <= 0.05
    card = (lm.WORLD_DIR / lm.CARD_FILE).read_text()
    assert f"{stored['entropy']['excess']}" in card and lm.REBUILD in card


def test_damaged_or_missing_files_name_the_rebuild_command(tmp_path):
    folder = tmp_path / "world"
    shutil.copytree(lm.WORLD_DIR, folder)
    weights = folder / lm.MODEL_FILE
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(lm.WorldModelError, match="corrupted.*python -m course_lib.world train"):
        lm.load_world_model(folder=folder, device="cpu")
    weights.unlink()
    with pytest.raises(lm.WorldModelError, match="missing.*python -m course_lib.world train"):
        lm.load_world_model(folder=folder, device="cpu")
    with pytest.raises(lm.WorldModelError, match="not found"):
        lm.load_world_model(folder=tmp_path / "nowhere", device="cpu")
    with pytest.raises(ValueError, match="'world' or 'gpt2-small'"):
        lm.load_world_model("gpt3")


def test_scale_up_switch_gives_a_gpt2_small_architecture_offline(model):
    big = lm.load_world_model("gpt2-small", pretrained=False, device="cpu")
    assert (big.cfg.n_layers, big.cfg.d_model, big.cfg.n_heads, big.cfg.d_vocab) == (12, 768, 12, 50257)
    _, cache = big.run_with_cache(torch.randint(0, 50257, (1, 5)), names_filter=lambda n: "blocks.0." in n)
    _, small_cache = model.run_with_cache(model.to_tokens("Dallas is"), names_filter=lambda n: "blocks.0." in n)
    assert sorted(cache.keys()) == sorted(small_cache.keys())  # course code runs on either
