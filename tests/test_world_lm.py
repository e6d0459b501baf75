"""The shipped world LM: it loads offline, its measured quality is what its card says (and
meets the course's bar, never beating the true entropy), a damaged or extra file gives a clear
error, bad input gets a clear message, the training command is safe, and the scale-up switch is wired."""
import json
import shutil

import pytest
import torch

from course_lib.artifacts import ArtifactError
from course_lib.world import __main__ as cli
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
    assert two_hop["trained"] >= 0.90 and two_hop["heldout"] >= 0.75
    assert two_hop["heldout_cities"] >= 16 and two_hop["heldout_prompts"] >= 32
    entropy = evaluate.entropy_gap(model)  # the same held-out documents as the card
    assert entropy["true_entropy"] == stored["entropy"]["true_entropy"]  # exact: the scorer is deterministic
    assert entropy["excess"] == pytest.approx(stored["entropy"]["excess"], abs=2e-3)
    assert 0 <= entropy["excess"] + 3 * entropy["excess_se"] and entropy["excess"] <= 0.05
    # KL ≥ 0: the model's loss is never below the true entropy beyond 3 standard errors, per kind
    for kind, e in entropy["per_kind"].items():
        assert e["excess"] > -3 * e["excess_se"], (kind, e)
        assert e["excess"] <= 0.05, (kind, e)
    card = (lm.WORLD_DIR / lm.CARD_FILE).read_text()
    assert f"{stored['entropy']['excess']}" in card and lm.REBUILD in card
    assert all(f"| {kind} |" in card for kind in entropy["per_kind"])


def test_damaged_missing_or_extra_files_name_the_rebuild_command(tmp_path):
    folder = tmp_path / "world"
    shutil.copytree(lm.WORLD_DIR, folder)
    lm.load_world_model(folder=str(folder), device="cpu")  # a str path is fine
    assert lm.world_metrics(str(folder)) == lm.world_metrics()
    extra = folder / lm.TOKENIZER_DIR / "special_tokens_map.json"  # would change the tokenizer's BOS token
    extra.write_text(json.dumps({"bos_token": "Dallas"}))
    with pytest.raises(ArtifactError, match="unexpected file.*special_tokens_map.json.*python -m course_lib.world train"):
        lm.load_world_model(folder=folder, device="cpu")
    extra.unlink()
    metrics = folder / lm.METRICS_FILE
    metrics.write_text(metrics.read_text().replace('"overall": ', '"overall": 0'))  # an edited figure
    with pytest.raises(lm.WorldModelError, match="metrics.json is corrupted.*python -m course_lib.world train"):
        lm.world_metrics(folder)
    shutil.copy(lm.WORLD_DIR / lm.METRICS_FILE, metrics)
    for name in ("tokenizer/tokenizer_config.json", lm.MODEL_FILE):
        path = folder / name
        original = path.read_bytes()
        path.write_bytes(original[:-10] + b"0123456789")
        with pytest.raises(ArtifactError, match="corrupted.*python -m course_lib.world train"):
            lm.load_world_model(folder=folder, device="cpu")
        path.write_bytes(original)
    (folder / lm.MODEL_FILE).unlink()
    with pytest.raises(ArtifactError, match="missing.*python -m course_lib.world train"):
        lm.load_world_model(folder=folder, device="cpu")
    with pytest.raises(ArtifactError, match="not found"):
        lm.load_world_model(folder=tmp_path / "nowhere", device="cpu")
    with pytest.raises(ValueError, match="'world' or 'gpt2-small'"):
        lm.load_world_model("gpt3")
    with pytest.raises(TypeError, match="must be a path"):
        lm.load_world_model(folder=3)


def test_unknown_words_and_long_prompts_are_refused_with_a_clear_message(model):
    with pytest.raises(ValueError, match=r"unknown word for the world LM: 'texas' \(did you mean 'Texas'\?\)"):
        model.to_tokens("The capital of texas is")
    with pytest.raises(ValueError, match=r"'Dalas' \(did you mean 'Dallas'"):
        model("Dalas is a city in")  # the forward pass tokenizes through the same check
    with pytest.raises(ValueError, match="unknown words.*'Zorblax'.*'Qwfp'"):
        model.to_tokens(["Zorblax is a city in", "Qwfp"])
    with pytest.raises(ValueError, match="unknown word.*Zorblax"):
        model.to_str_tokens("Zorblax is a city in")
    long = " ".join(["Dallas is a city in Texas ."] * 20)
    with pytest.raises(ValueError, match=r"has 141 tokens .*context of 96 tokens"):
        model.to_tokens(long)
    assert model.to_tokens(long, truncate=False).shape == (1, 141)  # asked for explicitly: no cut, no error
    batch = model.to_tokens(["Dallas is a city in", "The capital of Texas is"])
    assert batch.shape == (2, 6) and model(batch).shape[:2] == (2, 6)


def test_a_missing_device_and_an_offline_gpt2_small_say_what_is_wrong(monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU on this machine.*device='cpu'"):
            lm.load_world_model(device="cuda")
    with pytest.raises(ValueError, match="device must be"):
        lm.load_world_model(device="gpu")
    from transformer_lens import HookedTransformer

    def offline(*args, **kwargs):  # what huggingface_hub raises without a network
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them "
                      "in the cached files. Check your internet connection or see how to run the library in offline "
                      "mode. ... a local directory with the same name")

    monkeypatch.setattr(HookedTransformer, "from_pretrained", offline)
    with pytest.raises(RuntimeError, match="not shipped with the course.*no network.*pretrained=False"):
        lm.load_world_model("gpt2-small", device="cpu")


def test_train_validates_its_arguments_and_replaces_the_folder_only_on_success(tmp_path, monkeypatch, capsys):
    target = tmp_path / "world"
    target.mkdir()
    (target / "old.txt").write_text("the shipped model")
    for bad in (["train", "--steps", "0"], ["train", "--steps", "-3"], ["train", "--steps", "many"]):
        with pytest.raises(SystemExit):
            cli.main([*bad, "--folder", str(target)])
        assert "expected a positive integer" in capsys.readouterr().err
    with pytest.raises(ValueError, match="steps must be a positive int"):
        lm.train(target, steps=0)

    def failing(folder, steps, progress):
        (folder / lm.MODEL_FILE).write_text("half-written")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(lm, "_train_into", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        lm.train(str(target), steps=5)
    assert [p.name for p in tmp_path.iterdir()] == ["world"] and [p.name for p in target.iterdir()] == ["old.txt"]

    def succeeding(folder, steps, progress):
        (folder / lm.MODEL_FILE).write_text(f"{steps} steps")
        return {"steps": steps}

    monkeypatch.setattr(lm, "_train_into", succeeding)
    assert lm.train(target, steps=5) == {"steps": 5}
    assert [p.name for p in tmp_path.iterdir()] == ["world"] and [p.name for p in target.iterdir()] == [lm.MODEL_FILE]
    assert (target / lm.MODEL_FILE).read_text() == "5 steps" and oct(target.stat().st_mode)[-3:] == "755"


def test_scale_up_switch_gives_a_gpt2_small_architecture_offline(model):
    big = lm.load_world_model("gpt2-small", pretrained=False, device="cpu")
    assert (big.cfg.n_layers, big.cfg.d_model, big.cfg.n_heads, big.cfg.d_vocab) == (12, 768, 12, 50257)
    _, cache = big.run_with_cache(torch.randint(0, 50257, (1, 5)), names_filter=lambda n: "blocks.0." in n)
    _, small_cache = model.run_with_cache(model.to_tokens("Dallas is"), names_filter=lambda n: "blocks.0." in n)
    assert sorted(cache.keys()) == sorted(small_cache.keys())  # course code runs on either
