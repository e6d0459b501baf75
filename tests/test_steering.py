"""Notebook 04's science: the shipped sweeps verify and support the asserted results on both seeds,
the error-term fact of sae-lens steering, shapes, and clear errors on bad input."""
import json
import math

import pytest
import torch

from course_lib.artifacts import ArtifactError, write_checksums
from course_lib.steering.build import REBUILD, STEERING_DIR, load
from course_lib.steering.results import asserted


@pytest.fixture(scope="module")
def figures():
    load("summary.json")  # verifies the folder's checksums first
    return asserted(STEERING_DIR)


@pytest.fixture(scope="module")
def world():
    from course_lib.sae import load_world_sae, sae_transformer
    from course_lib.world import load_world_model

    model = load_world_model(device="cpu")
    return model, load_world_sae(device="cpu"), sae_transformer(model)


def test_shipped_folder_verifies_and_a_change_names_the_rebuild(tmp_path):
    for p in STEERING_DIR.iterdir():
        (tmp_path / p.name).write_bytes(p.read_bytes())
    assert load("summary.json", tmp_path)["stream_median_norm"] > 0
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ArtifactError, match="course_lib.steering build"):
        load("summary.json", tmp_path)
    write_checksums(tmp_path)
    (tmp_path / "alignsae.json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load("summary.json", tmp_path)
    assert "OMP_NUM_THREADS=1" in REBUILD


def test_sweep_shapes():
    sweep = load("sweep_seed0.json")
    n, s = len(sweep["latents"]), len(sweep["strengths"])
    assert n > 900 and len(sweep["input_score"]) == len(sweep["output_score"]) == n
    for target in ("lens", "description"):
        assert len(sweep["success"][target]) == s and all(len(row) == n for row in sweep["success"][target])
    assert all(0 <= x <= 1 for x in sweep["input_score"] + sweep["output_score"])


def test_output_score_predicts_steering_clearly_more_than_input_score(figures):
    # Pearson correlation at 4x the latent's largest activation, both seeds; in ranks neither predicts
    for out, inp in zip(figures["logit-lens success: corr output"], figures["logit-lens success: corr input"]):
        assert out >= 0.08 and out - inp >= 0.1, (out, inp)
    assert max(abs(r) for r in figures["logit-lens success: rank corr output"]) <= 0.15


def test_top_output_quartile_steers_better_at_fixed_strength_not_at_matched_fluency(figures):
    assert min(figures["logit-lens success: ratio fixed"]) >= 1.5
    # the published "at matched fluency" does not reproduce here: the measured ratio stays near 1
    assert all(0.6 <= r <= 1.4 for r in figures["logit-lens success: ratio matched"])


def test_difference_in_means_at_least_as_good_as_unfiltered_latents_and_filtering_closes_the_gap(figures):
    for dim, sae in zip(figures["methods: difference of means, harmonic"], figures["methods: SAE latent, harmonic"]):
        assert dim >= sae - 0.02, (dim, sae)
    for filtered, dim in zip(figures["methods: SAE latent, output-filtered, harmonic"],
                             figures["methods: difference of means, harmonic"]):
        assert filtered >= dim - 0.02, (filtered, dim)


def test_random_directions_do_not_steer(figures):
    assert max(figures["methods: random - unsteered hit rate, largest at strength <= 0.75"]) <= 0.05


def test_post_training_binds_the_states_at_a_small_reconstruction_cost(figures):
    assert figures["AlignSAE post-trained: bound_f1"] >= figures["AlignSAE unsupervised: bound_f1"] + 0.2
    assert figures["AlignSAE post-trained: fvu"] - figures["AlignSAE unsupervised: fvu"] <= 0.01
    # the concept swap through one latent does not reproduce at this layer, for either SAE
    assert max(figures["AlignSAE post-trained: swap"], figures["AlignSAE unsupervised: swap"]) <= 0.05


def test_card_states_the_measured_figures(figures):
    card = (STEERING_DIR / "README.md").read_text()
    assert REBUILD in card
    value = figures["logit-lens success: corr output"][0]
    assert f"{value:.3f}" in card


def test_error_term_makes_a_latent_edit_exactly_delta_times_w_dec(world):
    model, sae, sae_model = world
    hook = sae.cfg.metadata.hook_name
    tokens = model.to_tokens(["The capital of Texas is", "Dallas is a city in"])
    latent, delta = 7, 3.0

    def add(acts, hook):
        acts = acts.clone()
        acts[..., latent] += delta
        return acts

    with torch.no_grad(), sae_model.saes(saes=[sae], use_error_term=True):
        _, clean = sae_model.run_with_cache(tokens, names_filter=f"{hook}.hook_sae_output")
        with sae_model.hooks(fwd_hooks=[(f"{hook}.hook_sae_acts_post", add)]):
            _, edited = sae_model.run_with_cache(tokens, names_filter=f"{hook}.hook_sae_output")
        logits = sae_model(tokens)
    change = edited[f"{hook}.hook_sae_output"] - clean[f"{hook}.hook_sae_output"]
    expected = delta * sae.W_dec[latent].detach()
    assert torch.allclose(change, expected.expand_as(change), atol=1e-4)
    with torch.no_grad():
        assert torch.allclose(logits, model(tokens), atol=1e-4)  # with the error term, the SAE changes nothing
        with sae_model.saes(saes=[sae], use_error_term=False):
            assert not torch.allclose(sae_model(tokens), model(tokens), atol=1e-2)  # without it, it does


def test_generation_is_seeded_and_masks_after_eos(world):
    from course_lib.steering.generate import GenerateConfig, generated_mask, sample

    model, _, _ = world
    prompts = model.to_tokens(["The capital of Texas is", "The capital of Ohio is"])
    a = sample(model, prompts, GenerateConfig(new_tokens=4, seed=3))
    b = sample(model, prompts, GenerateConfig(new_tokens=4, seed=3))
    assert a.shape == (2, prompts.shape[1] + 4) and torch.equal(a, b)
    eos = model.tokenizer.eos_token_id
    tokens = torch.tensor([[2, 5, 6, eos, 7, 8]])
    assert generated_mask(tokens, 2, eos).tolist() == [[False, False, True, True, False, False]]


def test_bad_input_gives_clear_errors(world):
    from course_lib.steering.concepts import auroc
    from course_lib.steering.generate import GenerateConfig, sample

    model, _, _ = world
    with pytest.raises(ValueError, match="new_tokens"):
        GenerateConfig(new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        GenerateConfig(temperature=0)
    with pytest.raises(ValueError, match="prompts must be"):
        sample(model, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="both classes"):
        auroc(torch.rand(5, 2), [True] * 5)


def test_auroc_matches_its_definition():
    from course_lib.steering.concepts import auroc

    scores = torch.tensor([[0.1], [0.4], [0.35], [0.8]])
    positive = [False, False, True, True]
    # pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4): 3 of 4
    assert math.isclose(float(auroc(scores, positive)[0]), 0.75)


def test_summary_lists_every_concept():
    summary = load("summary.json")
    assert len(summary["concepts"]) == 22 and summary["concepts"]["Texas"] == ["Texas"]
    assert json.loads(json.dumps(summary)) == summary


def test_panel_refuses_unknown_concepts_and_methods_and_renders_html(world):
    from course_lib.steering.widget import SteeringLab, continuations_html

    model, sae, sae_model = world
    lab = SteeringLab(model, sae_model, sae, {}, {}, model.to_tokens(["The capital of Texas is"]), 1.0)
    with pytest.raises(ValueError, match="concept must be one of"):
        lab.run("Atlantis", "random", 1.0)
    html = continuations_html([("It is", "sunny today .", True, -0.5), ("It is", "is is", False, -math.inf)], ("sunny",))
    assert "<b>sunny</b>" in html and "out of support" in html


def test_concepts_need_enough_text():
    import numpy as np

    from course_lib.steering.concepts import world_concepts

    class Tiny:  # two tokens of labelled text: no state word occurs five times
        labels = {"token": np.array(["Texas", "is"], dtype=object), "entity": np.array(["Texas", None], dtype=object),
                  "topic": np.array([None, None], dtype=object), "sentiment": np.array([None, None], dtype=object)}

    class Tok:
        @staticmethod
        def get_vocab():
            return {"Texas": 5, "is": 6}

    with pytest.raises(ValueError, match="collect more text"):
        world_concepts(Tiny(), Tok())
    with pytest.raises(ValueError, match="purity"):
        world_concepts(Tiny(), Tok(), purity=0)
