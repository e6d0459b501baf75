"""Notebook 05 (transcoders and circuits), the science side: the shipped transcoders are complete
and checksummed, refuse damage with the rebuild command, reconstruct the MLPs within the figures
their card reports (tolerances from two training seeds), and the state-feature swap moves the
two-hop answer at the answer position (≥ 90 % of (city, other state) pairs, held-out cities too)
but not at the city position. Exercise checks are in test_circuits_checks.py."""
import shutil

import numpy as np
import pytest
import torch

from course_lib.artifacts import ArtifactError
from course_lib.circuits import interventions as iv
from course_lib.circuits import measures as ms
from course_lib.circuits import training as tr
from course_lib.circuits import transcoders as tc

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    from course_lib.world import load_world_model

    return load_world_model(device="cpu")


@pytest.fixture(scope="module")
def shipped():
    return tc.load_transcoders(), tc.load_clt()


# ----------------------------------------------------------------------------- the artifact
def test_shipped_folder_is_complete_small_and_verified(shipped):
    from course_lib.artifacts import verify

    verify(tc.CIRCUITS_DIR, tc.REBUILD)
    size = sum(p.stat().st_size for p in tc.CIRCUITS_DIR.rglob("*") if p.is_file())
    assert size < 20e6, f"shipped weights must stay under 20 MB, got {size / 1e6:.1f} MB"
    per_layer, clt = shipped
    assert per_layer.n_layers == clt.n_layers == 4
    for l, t in enumerate(per_layer):
        assert t.layer == l and t.W_enc.shape == (128, t.d_sae) and t.W_dec.shape == (t.d_sae, 128)
    assert [tuple(w.shape) for w in clt.W_dec] == [(clt.d_sae, 4 - l, 128) for l in range(4)]
    assert clt.b_dec.shape == (4, 128)
    metrics = tc.shipped_metrics()
    from course_lib.sae.world import _world_model_sha256

    assert metrics["world_model_sha256"] == _world_model_sha256(), "trained on the shipped world LM"
    assert "python -m course_lib.circuits train" in (tc.CIRCUITS_DIR / tc.CARD_FILE).read_text()


@pytest.mark.parametrize("damage", ["corrupt", "missing", "extra"])
def test_damaged_folder_names_the_rebuild_command(tmp_path, damage):
    root = tmp_path / "circuits"
    shutil.copytree(tc.CIRCUITS_DIR, root)
    if damage == "corrupt":
        with open(root / tc.CLT_FILE, "r+b") as f:
            f.seek(1000)
            f.write(b"\x00\x01\x02")
    elif damage == "missing":
        (root / tc.TRANSCODERS_FILE).unlink()
    else:
        (root / "notes.txt").write_text("x")
    with pytest.raises(ArtifactError, match="python -m course_lib.circuits train"):
        tc.load_clt(root)
    with pytest.raises(ArtifactError, match="python -m course_lib.circuits train"):
        tc.load_transcoders(root)
    with pytest.raises(ArtifactError, match="python -m course_lib.circuits train"):
        tc.load_transcoders(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- the figures
def test_two_seeds_agree_and_set_the_tolerances():
    m = tc.shipped_metrics()
    for kind in ("per_layer", "clt"):
        seeds = m[kind]["seeds"]
        assert set(seeds) == {"0", "1"}
        for a, b in zip(seeds["0"]["layers"], seeds["1"]["layers"]):
            assert a["nmse"] < 0.06 and b["nmse"] < 0.06
            assert abs(a["nmse"] - b["nmse"]) < 0.01, (kind, a["nmse"], b["nmse"])
        assert abs(seeds["0"]["top1_agreement"] - seeds["1"]["top1_agreement"]) < 0.01
        assert abs(seeds["0"]["CE_increase"] - seeds["1"]["CE_increase"]) < 0.003


def test_fidelity_of_the_shipped_transcoders(model, shipped):
    tokens = ms.eval_tokens(model, n_docs=100)
    card = tc.shipped_metrics()
    for kind, module in zip(("per_layer", "clt"), shipped):
        f = ms.fidelity(model, module, tokens)
        ref = card[kind]["seeds"]["0"]
        for got, want in zip(f["layers"], ref["layers"]):
            assert abs(got["nmse"] - want["nmse"]) < 0.015 + 0.3 * want["nmse"], (kind, got, want)
            assert got["L0"] <= module.k + 1e-6 and got["L0"] > module.k - 1
        assert f["top1_agreement"] > 0.92 and f["CE_increase"] < 0.01, (kind, f)
        assert abs(f["top1_agreement"] - ref["top1_agreement"]) < 0.03


def test_forward_functions_match_the_classes(model, shipped):
    per_layer, clt = shipped
    x = torch.randn(2, 5, 128)
    for t in per_layer:
        acts, out = tc.transcoder_forward(x, t.W_enc, t.b_enc, t.W_dec, t.b_dec, t.k)
        assert ((acts > 0).sum(-1) <= t.k).all()
        torch.testing.assert_close(out, t.decode(t.encode(x)))
    acts = clt.encode([x] * 4)
    full = tc.clt_decode(acts, list(clt.W_dec), clt.b_dec)
    for j in range(4):
        torch.testing.assert_close(full[j], clt.decode_layer(acts, j))
    # the model with every MLP replaced mostly keeps its predictions
    with torch.no_grad():
        logits = model("The capital of Texas is")
        replaced = model.run_with_hooks("The capital of Texas is", fwd_hooks=ms.replacement_hooks(per_layer))
    assert (logits.argmax(-1) == replaced.argmax(-1)).float().mean() > 0.8


# ----------------------------------------------------------------------------- the swap
def test_state_swap_works_at_the_answer_position_not_at_the_city(model, shipped):
    per_layer, _ = shipped
    prompts = iv.two_hop_prompts(model, phrasings=(0,))
    assert len(prompts) == 64 and sum(p.heldout for p in prompts) == 16
    dallas = next(p for p in prompts if p.city == "Dallas")
    assert dallas.text == "The capital of the state containing Dallas is"
    assert model.to_str_tokens(dallas.tokens)[dallas.city_positions[0]] == "Dallas"
    answer = iv.summarize(iv.swap_table(model, per_layer, prompts, iv.state_features(model, per_layer, prompts)))
    city = iv.summarize(iv.swap_table(model, per_layer, prompts, iv.state_features(model, per_layer, prompts, "city")))
    for cities in ("trained", "heldout"):
        assert answer[cities]["swap_success"] >= 0.9, answer
        assert city[cities]["swap_success"] <= 0.1, city
    assert answer["trained"]["pairs"] == 48 * 15 and answer["heldout"]["pairs"] == 16 * 15
    assert answer["heldout"]["p_suppressed"] < answer["heldout"]["p_clean"]


def test_graph_predictions_and_path_lengths(model, shipped):
    from course_lib.circuits.attribution import attribute, prune

    per_layer, _ = shipped
    g = prune(attribute(model, per_layer, "The capital of the state containing Dallas is", target="Austin"))
    share = ms.path_lengths(g)
    assert abs(float(share.sum()) - 1) < 1e-5 and 1 <= ms.mean_path_length(g) <= len(share)
    austin = int(model.to_tokens("Austin", prepend_bos=False)[0, 0])
    pred, real = iv.predicted_ablation_effects(g, austin), iv.real_ablation_effects(model, per_layer, g, austin)
    assert pred.shape == real.shape == (g.n_features,)
    assert float(torch.corrcoef(torch.stack([pred, real]))[0, 1]) > 0.5


# ----------------------------------------------------------------------------- training and bad input
def test_training_reduces_the_error_for_both_kinds():
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(4, 3000, 16, generator=g)
    ys = torch.tanh(xs @ torch.randn(16, 16, generator=g))
    config = tr.TrainConfig(d_sae=64, k=4, steps=80, batch_size=256, lr=5e-3)
    for clt in (False, True):
        module, _ = tr.train_transcoders(xs, ys, config, clt=clt, progress=False)
        with torch.no_grad():
            acts, out = module(list(xs)) if clt else (None, module.decode(module.encode(list(xs))))
        nmse = ((out - ys) ** 2).sum(-1).mean(1) / ys.var(1).sum(-1)
        assert (nmse < 0.8).all(), (clt, nmse)
        assert not any(p.requires_grad for p in module.parameters())


def test_training_runs_through_the_given_loss():
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(4, 500, 8, generator=g)
    calls = []

    def loss(out, target, variance):
        calls.append(out.shape)
        return tr.normalized_mse(out, target, variance)

    config = tr.TrainConfig(d_sae=16, k=2, steps=5, batch_size=64)
    tr.train_transcoders(xs, xs.tanh(), config, progress=False, loss=loss)
    assert calls == [torch.Size([4, 64, 8])] * 5


def test_build_writes_a_verified_folder(tmp_path):
    from course_lib.artifacts import verify

    root = tmp_path / "circuits"
    config = tr.TrainConfig(d_sae=16, k=2, steps=2, batch_size=64, train_docs=20)
    metrics = tr.build_circuits(root, config, seeds=(0,), progress=False)
    verify(root, tc.REBUILD)
    assert tc.load_transcoders(root)[0].W_enc.shape == (128, 16) and metrics["per_layer"]["config"]["d_sae"] == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["circuits"]


def test_bad_input_gets_clear_errors(model, shipped):
    per_layer, clt = shipped
    with pytest.raises(ValueError, match=r"\[\.\.\., 128\]"):
        per_layer[0](torch.randn(3, 64))
    with pytest.raises(ValueError, match="MLP inputs of all 4 layers"):
        clt.encode([torch.randn(3, 128)])
    with pytest.raises(ValueError, match="k must be"):
        tr.TrainConfig(d_sae=8, k=16)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        tr.TrainConfig(steps=0)
    with pytest.raises(ValueError, match=r"\[n_layers, N, d_model\]"):
        tr.train_transcoders(torch.randn(4, 10, 8), torch.randn(4, 11, 8), progress=False)
    with pytest.raises(TypeError, match="TranscoderSet"):
        ms.fidelity(model, "transcoders", None)
    prompts = iv.two_hop_prompts(model, phrasings=(0,))[:2]
    with pytest.raises(ValueError, match="where must be one of"):
        iv.prompt_features(model, per_layer, prompts, "subject")
    assert tr.TrainConfig(steps=np.int64(3)).steps == 3  # numpy integers accepted
