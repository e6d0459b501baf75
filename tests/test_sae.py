"""Notebook 02 (sparse autoencoders): the checks' contracts (accept the reference and correct
alternatives, reject plausible mistakes with the right hint, compare gradients where the notebook
trains through the code), the asserted results, training with gradients switched off, bad input and
damaged files."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from check_contract import Contract, contract_tests

from course_lib.artifacts import ArtifactError
from course_lib.sae import checks as ch
from course_lib.sae import measures as me
from course_lib.sae import model as mo
from course_lib.sae import resampling as rs
from course_lib.sae import world as sw
from course_lib.sae.scaling import SCALING_DATA, SweepConfig, compute_frontier, fit_power_law, scaling_sweep
from course_lib.sae.toy_data import TOY_DATA, ToyDictionaryData
from course_lib.sae.training import DEAD_DEMO, EVAL_SEED, RESAMPLE_AT, SCRATCH, ScratchConfig, train_scratch_sae

torch.set_num_threads(1)
F = torch.nn.functional


# ----------------------------------------------------------------------------- SAE: wrong and right classes
class _StubSAE(mo.SAE):
    def encode(self, x):
        raise NotImplementedError


class _DoubledDecoderBias(mo.SAE):
    def decode(self, f):
        return f @ self.W_dec + self.b_dec * 2


class _NoGradEncode(mo.SAE):
    def encode(self, x):
        with torch.no_grad():
            return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)


class _DataEncoder(mo.SAE):  # W_enc.data: no gradient reaches the encoder weights
    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc.data + self.b_enc)


class _DecodeWithEncoder(mo.SAE):
    def decode(self, f):
        return f @ self.W_enc.T + self.b_dec


class _SwappedForward(mo.SAE):
    def forward(self, x):
        f = self.encode(x)
        return f, self.decode(f)


class _ForwardDecodesPreActivation(mo.SAE):
    def forward(self, x):
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        return self.decode(pre), torch.relu(pre)


class _DetachedDecodeInput(mo.SAE):
    def decode(self, f):
        return f.detach() @ self.W_dec + self.b_dec


class _Flattening(mo.SAE):
    def encode(self, x):
        return torch.relu((x.reshape(-1, self.d_in) - self.b_dec) @ self.W_enc + self.b_enc)


class _ClampEinsum(mo.SAE):
    def encode(self, x):
        return (torch.einsum("...i,ij->...j", x - self.b_dec, self.W_enc) + self.b_enc).clamp(min=0)

    def decode(self, f):
        return torch.einsum("...j,ji->...i", f, self.W_dec) + self.b_dec


class _FunctionalSAE(mo.SAE):
    def encode(self, x):
        return F.relu(torch.matmul(x, self.W_enc) - torch.matmul(self.b_dec, self.W_enc) + self.b_enc)

    def decode(self, f):
        return torch.addmm(self.b_dec, f.reshape(-1, self.d_sae), self.W_dec).reshape(*f.shape[:-1], self.d_in)


# ----------------------------------------------------------------------------- resampling: wrong and right
def _resample_row_norms(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    if not dead.any():
        return W_enc, b_enc, W_dec
    d = inputs / inputs.norm(dim=-1, keepdim=True)
    alive = W_enc[:, ~dead].norm(dim=1).mean() if (~dead).any() else torch.tensor(1.0)
    W_dec[dead], W_enc[:, dead], b_enc[dead] = d, (d * scale * alive).T, 0.0
    return W_enc, b_enc, W_dec


def _resample_decoder_norms(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    if not dead.any():
        return W_enc, b_enc, W_dec
    d = inputs / inputs.norm(dim=-1, keepdim=True)
    alive = W_dec[~dead].norm(dim=1).mean() if (~dead).any() else torch.tensor(1.0)
    W_dec[dead], W_enc[:, dead], b_enc[dead] = d, (d * scale * alive).T, 0.0
    return W_enc, b_enc, W_dec


def _resample_max_norm(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    if not dead.any():
        return W_enc, b_enc, W_dec
    d = inputs / inputs.norm(dim=-1, keepdim=True)
    alive = W_enc[:, ~dead].norm(dim=0).max() if (~dead).any() else torch.tensor(1.0)
    W_dec[dead], W_enc[:, dead], b_enc[dead] = d, (d * scale * alive).T, 0.0
    return W_enc, b_enc, W_dec


def _resample_first_rows(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    n = int(dead.sum())
    if n == 0:
        return W_enc, b_enc, W_dec
    d = inputs / inputs.norm(dim=-1, keepdim=True)
    alive = W_enc[:, ~dead].norm(dim=0).mean() if (~dead).any() else torch.tensor(1.0)
    W_dec[:n], W_enc[:, :n], b_enc[:n] = d, (d * scale * alive).T, 0.0
    return W_enc, b_enc, W_dec


def _resample_loop(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    new_enc, new_b, new_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    alive = [j for j in range(len(dead)) if not dead[j]]
    norm = torch.stack([W_enc[:, j].norm() for j in alive]).mean() if alive else 1.0
    for row, j in zip(inputs, torch.nonzero(dead).flatten().tolist()):
        direction = row / row.norm()
        new_dec[j], new_enc[:, j], new_b[j] = direction, direction * scale * norm, 0.0
    return new_enc, new_b, new_dec


def _resample_where(W_enc, b_enc, W_dec, dead, inputs, scale=0.2):
    alive_norm = torch.linalg.vector_norm(W_enc[:, ~dead], dim=0).mean() if (~dead).any() else torch.tensor(1.0)
    direction = F.normalize(inputs, dim=-1)
    full = torch.zeros_like(W_dec)
    full[dead] = direction
    return (torch.where(dead, full.T * scale * alive_norm, W_enc), torch.where(dead, torch.zeros_like(b_enc), b_enc),
            torch.where(dead[:, None], full, W_dec))


def _normalize_via_data(W):
    W.data = W / W.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return W


def _mmcs_normalises_true_in_place(t, w):
    t /= t.norm(dim=-1, keepdim=True)
    return (t @ F.normalize(w, dim=-1).T).max(dim=1).values.mean()


CASES = {
    "SAE": Contract(ch.check_sae, mo.SAE, stub=_StubSAE, wrongs=[
        (ch._NoPreBias, "pre-bias"), (ch._NoReLU, "Apply the ReLU"), (ch._DecodeNoBias, "adds the decoder bias"),
        (ch._PreBiasAdded, "*subtracted*"), (_DoubledDecoderBias, None),
        (ch._DetachedEncode, "Do not .detach()"), (_NoGradEncode, "Do not .detach()"),
        (ch._TiedEncoder, "not with the decoder transposed"), (ch._ReLUBeforeBias, "*before* the ReLU"),
        (_DataEncoder, "no gradient flows back to W_enc"), (_DecodeWithEncoder, None), (_SwappedForward, None),
        (_ForwardDecodesPreActivation, None), (_DetachedDecodeInput, None),
        (_Flattening, None)],
        alternatives=[_ClampEinsum, _FunctionalSAE]),
    "sae_loss": Contract(ch.check_sae_loss, mo.sae_loss, wrongs=[
        (lambda x, xh, f, l1: F.mse_loss(xh, x) + l1 * f.abs().sum(-1).mean(), "F.mse_loss"),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum(-1).mean() + l1 * f.abs().mean(), "sum over latents"),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum(-1).mean() + l1 * f.pow(2).sum(-1).mean(), "not the squared L2"),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum() + l1 * f.abs().sum(), "Average over the batch"),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum(-1).mean() + l1 * f.sum(-1).mean(), "*absolute values*"),
        (lambda x, xh, f, l1: ((x - xh).pow(2).sum(-1).mean() + l1 * f.abs().sum(-1).mean()).item(), ".item()"),
        (lambda x, xh, f, l1: ((x - xh).pow(2).sum(-1).mean() + l1 * f.abs().sum(-1).mean()).detach(), ".detach()"),
        (lambda x, xh, f, l1: (x - xh).norm(dim=-1).mean() + l1 * f.abs().sum(-1).mean(), "*squared* error"),
        (lambda x, xh, f, l1: (x - xh.detach()).pow(2).sum(-1).mean() + l1 * f.abs().sum(-1).mean(),
         "no gradient flows back to x_hat"),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum(-1).mean() + 0.3 * f.abs().sum(-1).mean(), None),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum(-1).mean() + l1 * xh.abs().sum(-1).mean(), None)],
        alternatives=[
            lambda x, xh, f, l1: F.mse_loss(xh, x, reduction="sum") / len(x)
            + l1 * torch.linalg.vector_norm(f, ord=1, dim=-1).mean(),
            lambda x, xh, f, l1: ((xh - x) ** 2).sum(dim=1).mean() + l1 * f.norm(p=1, dim=1).mean()]),
    "normalize_decoder": Contract(ch.check_normalize_decoder, mo.normalize_decoder, wrongs=[
        (lambda W: W / W.norm(dim=0, keepdim=True), "each *row*"),
        (lambda W: W / W.norm(), "each row separately"),
        (lambda W: W - W.norm(dim=-1, keepdim=True), "do not subtract"),
        (lambda W: W / W.norm(dim=-1, keepdim=True), "clamp the norm"),  # the notebook's old copy
        (lambda W: W / W.pow(2).sum(-1, keepdim=True), "not the squared norm"),
        (lambda W: W / W.norm(dim=-1, keepdim=True).clamp(min=1), "*every* row"),
        (lambda W: F.normalize(W, dim=0), "each *row*"),
        (lambda W: W / W.abs().sum(-1, keepdim=True).clamp(min=1e-8), None),
        (lambda W: W / W.abs().amax(-1, keepdim=True).clamp(min=1e-8), None),
        (ch._normalize_in_place, "leave the arguments unchanged"),
        (_normalize_via_data, "leave the arguments unchanged"),
        (lambda W: W / W.norm(dim=-1, keepdim=True).clamp(min=1e-2), None)],  # leaves tiny rows short
        alternatives=[lambda W: F.normalize(W, dim=-1), lambda W: W / (W.norm(dim=1, keepdim=True) + 1e-8),
                      lambda W: W * torch.rsqrt(W.pow(2).sum(-1, keepdim=True).clamp(min=1e-16))]),
    "mmcs": Contract(ch.check_mmcs, me.mmcs, wrongs=[
        (lambda t, w: me.mmcs(w, t), "max over learned"),
        (lambda t, w: (t @ w.T).max(dim=1).values.mean(), "normalise both"),
        (lambda t, w: (mo.normalize_decoder(t) @ mo.normalize_decoder(w).T).abs().max(1).values.mean(), "absolute"),
        (lambda t, w: (F.normalize(t, dim=-1) @ F.normalize(w, dim=-1).T).mean(), "not the mean"),
        (lambda t, w: (t @ F.normalize(w, dim=-1).T).max(dim=1).values.mean(), "true directions too"),
        (lambda t, w: (F.normalize(t, dim=-1) @ w.T).max(dim=1).values.mean(), "learned decoder rows too"),
        (lambda t, w: (F.normalize(t, dim=-1) @ F.normalize(w, dim=-1).T).max(dim=1).values.sum(), "do not add"),
        (lambda t, w: (F.normalize(t, dim=0) @ F.normalize(w, dim=0).T).max(dim=1).values.mean(), None),
        (lambda t, w: (F.normalize(t, dim=-1) @ F.normalize(w, dim=-1).T).max(dim=1).values, None),
        (lambda t, w: (F.normalize(t, dim=-1) @ F.normalize(w, dim=-1).T).max(), None),
        (ch._mmcs_in_place, "leave the arguments unchanged"),
        (_mmcs_normalises_true_in_place, None)],
        alternatives=[
            lambda t, w: torch.cosine_similarity(t[:, None], w[None], dim=-1).amax(dim=1).mean(),
            lambda t, w: torch.einsum("td,sd->ts", F.normalize(t, dim=-1), F.normalize(w, dim=-1)).max(1)[0].mean().item()]),
    "resample_weights": Contract(ch.check_resample_weights, rs.resample_weights, wrongs=[
        (ch._resample_all_norms, "*alive* latents only"), (ch._resample_keep_bias, "b_enc to 0"),
        (ch._resample_raw_decoder, "*normalised* input"), (ch._resample_no_scale, "keep it small"),
        (ch._resample_fixed_scale, "not a fixed 0.2"), (ch._resample_in_place, "Work on clones"),
        (ch._resample_no_fallback, "use 1.0 then"), (_resample_row_norms, None), (_resample_decoder_norms, None),
        (_resample_max_norm, None), (_resample_first_rows, None)],
        alternatives=[_resample_loop, _resample_where]),
    "fvu": Contract(ch.check_fvu, me.fvu, wrongs=[
        (lambda x, xh: (x - xh).pow(2).sum() / x.pow(2).sum(), "mean(x)"),
        (lambda x, xh: 1 - me.fvu(x, xh), "not 1 minus"),
        (lambda x, xh: (x - xh).pow(2).sum() / (x - x.mean()).pow(2).sum(), "one overall mean"),
        (lambda x, xh: (x - xh).pow(2).sum() / (xh - xh.mean(0)).pow(2).sum().clamp(min=1e-12), "not of the recon"),
        (lambda x, xh: ((x - xh).pow(2).sum(0) / (x - x.mean(0)).pow(2).sum(0)).mean(), "divide once"),
        (lambda x, xh: (x - xh).norm() / (x - x.mean(0)).norm(), "no square root"),
        (lambda x, xh: (x - xh).pow(2).mean(0).sum() / x.var(0).sum(), None),
        (lambda x, xh: (x - xh).pow(2).mean() / x.var(), None)],
        alternatives=[lambda x, xh: F.mse_loss(xh, x, reduction="sum") / (x - x.mean(0, keepdim=True)).pow(2).sum(),
                      lambda x, xh: (x - xh).pow(2).mean(0).sum() / x.var(0, unbiased=False).sum()]),
    "ce_loss_recovered": Contract(ch.check_ce_loss_recovered, me.ce_loss_recovered, wrongs=[
        (lambda c, s, z: (s - c) / (z - c), "relative to zero-ablation"),
        (lambda c, s, z: z - s, "whole gap"),
        (lambda c, s, z: (z - s) / z, "The denominator"),
        (lambda c, s, z: torch.as_tensor((z - s) / (z - c)).clamp(0, 1), "Do not clip"),
        (lambda c, s, z: abs(z - s) / abs(z - c), "No absolute values"),
        (lambda c, s, z: (z - c) / (z - s), None),
        (lambda c, s, z: 100 * (z - s) / (z - c), None),
        (lambda c, s, z: (6.0 - s) / (6.0 - c), None),
        (lambda c, s, z: c / s, None)],
        alternatives=[lambda c, s, z: 1 - (s - c) / (z - c), lambda c, s, z: (s - z) / (c - z)]),
}
globals().update(contract_tests(CASES))


# ----------------------------------------------------------------------------- asserted results
@pytest.fixture(scope="module")
def toy():
    return TOY_DATA, TOY_DATA.sample(8192, torch.Generator().manual_seed(EVAL_SEED))


def test_scratch_sae_recovers_the_known_dictionary(toy):
    data, x = toy
    sae, _ = train_scratch_sae(data, SCRATCH, progress=False)
    stats = me.sae_stats(sae.encode, sae.decode, x, data.dictionary, sae.W_dec)
    print("from-scratch SAE:", stats)
    assert stats["MMCS"] >= 0.95
    assert stats["L0"] <= 10 and stats["FVU"] < 0.3


def test_resampling_lowers_the_dead_fraction(toy):
    import dataclasses

    data, x = toy
    dead = []
    for config in (DEAD_DEMO, dataclasses.replace(DEAD_DEMO, resample_at=RESAMPLE_AT)):
        sae, history = train_scratch_sae(data, config, progress=False)
        dead.append(me.sae_stats(sae.encode, sae.decode, x)["dead"])
    print("dead fraction without / with resampling:", dead)
    assert dead[0] > dead[1]
    assert [h["step"] for h in history][:2] == [50, 100] and history[-1]["step"] == DEAD_DEMO.steps


def test_scaling_law_frontier_fits_a_power_law():
    points = scaling_sweep(SCALING_DATA)
    fit = fit_power_law(*zip(*[(p["flops"], p["loss"]) for p in compute_frontier(points)]))
    print("power law:", fit)
    assert fit["r2"] >= 0.9 and fit["exponent"] < 0


def test_frontier_keeps_only_improving_points():
    pts = [dict(flops=1, loss=3.0), dict(flops=2, loss=3.5), dict(flops=3, loss=2.0), dict(flops=3, loss=2.5)]
    assert [p["loss"] for p in compute_frontier(pts)] == [3.0, 2.0]
    fit = fit_power_law([1, 10, 100], [2.0, 1.0, 0.5])
    assert fit["exponent"] == pytest.approx(-0.30103, abs=1e-4) and fit["r2"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def world_model():
    from course_lib.world import load_world_model

    return load_world_model(device="cpu")


def test_shipped_world_sae_recovers_the_loss(world_model):
    sae = sw.load_world_sae(2, device="cpu")
    assert sae.cfg.metadata.hook_name == "blocks.2.hook_resid_pre"
    m = sw.evaluate_world_sae(world_model, sae, sw.eval_tokens(world_model, n_docs=300))
    print("world SAE:", m)
    assert m["CE_recovered"] >= 0.9 and m["L0"] <= 32 and m["FVU"] < 0.1
    assert m["CE_increase"] == pytest.approx(m["CE_sae"] - m["CE_clean"]) and m["CE_increase"] < 0.05
    assert 0 <= m["KL"] < 0.05
    shipped = sw.world_sae_metrics()["layers"]["2"]
    assert shipped["CE_recovered"] >= 0.9 and shipped["L0"] <= 32


def test_a_perfect_sae_scores_perfectly_and_bos_is_not_counted(world_model):
    """The identity as an SAE: FVU 0, CE increase 0, KL 0, CE recovered 1; the figures count text
    positions only (not BOS, not padding)."""
    class Identity(torch.nn.Module):
        def __init__(self, hook, d):
            super().__init__()
            self.cfg = type("Cfg", (), {"d_sae": d, "metadata": type("M", (), {"hook_name": hook})()})()

        def encode(self, x):
            return x

        def decode(self, f):
            return f

    tokens = sw.eval_tokens(world_model, n_docs=20)
    m = sw.evaluate_world_sae(world_model, Identity(sw.hook_name(2), world_model.cfg.d_model), tokens)
    assert m["FVU"] == pytest.approx(0, abs=1e-6) and abs(m["CE_increase"]) < 1e-5 and m["KL"] < 1e-5
    text = sw.text_positions(tokens, world_model.tokenizer)
    assert (tokens == world_model.tokenizer.bos_token_id).any() and m["tokens"] == int(text.sum())
    assert m["CE_recovered"] == pytest.approx(1.0, abs=1e-5) and m["CE_zero_ablation"] > m["CE_clean"] + 1


# ----------------------------------------------------------------------------- gradients switched off globally
@pytest.fixture
def grad_off():
    torch.set_grad_enabled(False)
    yield
    torch.set_grad_enabled(True)


def test_training_works_after_gradients_were_switched_off_globally(grad_off):
    """Notebook 02 used to call torch.set_grad_enabled(False); re-running a training cell then failed
    with "element 0 of tensors does not require grad". Every trainer switches gradients on itself."""
    from course_lib.sae.library import toy_sae_config, train_saelens

    assert not torch.is_grad_enabled()
    sae, history = train_scratch_sae(TOY_DATA, ScratchConfig(d_sae=16, steps=20, resample_at=(10,), window=2,
                                                             log_every=10), progress=False)
    assert len(history) == 2 and np.isfinite(history[-1]["loss"])
    trained = train_saelens(TOY_DATA.batches(32), toy_sae_config("topk", 32, 16), steps=5, batch_size=32,
                            progress=False)
    assert trained.W_dec.shape == (16, 32)
    assert scaling_sweep(TOY_DATA, SweepConfig(sizes=(4,), checkpoints=(2, 4), n_eval=64))
    assert not torch.is_grad_enabled(), "a trainer must not change the caller's grad mode"


def test_world_sae_trains_after_gradients_were_switched_off_globally(world_model, grad_off):
    config = sw.WorldSAEConfig(d_sae=32, k=4, steps=3, train_docs=40, batch_size=64)
    sae = sw.train_world_sae(world_model, 2, config, progress=False)
    assert sae.cfg.d_sae == 32 and sae.cfg.metadata.hook_name == "blocks.2.hook_resid_pre"


def test_a_detached_student_sae_would_not_learn_and_is_rejected(toy, capsys):
    """Why the SAE check compares gradients: trained with a detached encoder, the SAE does not find the
    dictionary; the check hands back the reference instead."""
    data, x = toy
    config = ScratchConfig(d_sae=128, steps=300, l1_coeff=0.3)
    good, _ = train_scratch_sae(data, config, progress=False)
    bad, _ = train_scratch_sae(data, config, sae_cls=ch._DetachedEncode, progress=False)
    mmcs = [me.mmcs(data.dictionary, s.W_dec).item() for s in (good, bad)]
    assert mmcs[0] > mmcs[1] + 0.1, mmcs
    assert ch.check_sae(ch._DetachedEncode) is mo.SAE
    assert "no gradient flows back" in capsys.readouterr().out


# ----------------------------------------------------------------------------- bad input, numpy ints, damaged files
@pytest.mark.parametrize("call, match", [
    (lambda: ToyDictionaryData(d=0), "d must be a positive int"),
    (lambda: ToyDictionaryData(d=2.5), "d must be a positive int"),
    (lambda: ToyDictionaryData(mean_active=100), "mean_active"),
    (lambda: ToyDictionaryData(offset=-1.0), "offset"),
    (lambda: ToyDictionaryData().sample(0, None), "n must be a positive int"),
    (lambda: next(ToyDictionaryData().batches(0)), "batch_size"),
    (lambda: mo.SAE(0, 4), "positive ints"),
    (lambda: ScratchConfig(steps=0), "steps must be a positive int"),
    (lambda: ScratchConfig(init_b_dec="median"), "init_b_dec"),
    (lambda: ScratchConfig(lr=0.0), "lr > 0"),
    (lambda: ScratchConfig(resample_at=(0,)), "resample_at step"),
    (lambda: SweepConfig(sizes=()), "non-empty"),
    (lambda: SweepConfig(checkpoints=(0, 5)), "checkpoints >= 1"),
    (lambda: sw.WorldSAEConfig(k=2000), "k must be <= d_sae"),
    (lambda: sw.WorldSAEConfig(steps=-1), "steps must be a positive int"),
    (lambda: sw.hook_name(4), "layer must be an int in 0..3"),
    (lambda: sw.hook_name("2"), "layer must be an int in 0..3"),
    (lambda: sw.load_world_sae(layer=0), "no SAE is shipped for layer 0"),
    (lambda: fit_power_law([1.0], [1.0]), "at least 2 points"),
    (lambda: compute_frontier([]), "points is empty"),
    (lambda: me.sae_stats(lambda x: x, lambda f: f, torch.ones(3, 2), torch.ones(2, 2)), "pass W_dec"),
])
def test_bad_input_raises_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_raise_clear_type_errors():
    with pytest.raises(TypeError, match="config must be a ScratchConfig"):
        train_scratch_sae(TOY_DATA, dict(d_sae=8))
    with pytest.raises(TypeError, match=r"\.sample\(n, generator\)"):
        train_scratch_sae([1, 2, 3], ScratchConfig(steps=1))


def test_bad_architecture():
    from course_lib.sae.library import toy_sae_config

    with pytest.raises(ValueError, match="architecture must be one of"):
        toy_sae_config("gated", 4, 8)


def test_numpy_integers_work_as_sizes_and_seeds():
    data = ToyDictionaryData(d=np.int64(8), n_features=np.int32(16), seed=np.int64(3))
    assert data.d == 8 and type(data.d) is int
    assert data.sample(np.int64(5), torch.Generator().manual_seed(0)).shape == (5, 8)
    config = ScratchConfig(d_sae=np.int64(16), steps=np.int64(3), batch_size=np.int32(8), seed=np.int64(1))
    sae, _ = train_scratch_sae(data, config, progress=False)
    assert sae.W_dec.shape == (16, 8) and mo.SAE(np.int64(4), np.int64(6)).W_enc.shape == (4, 6)
    assert sw.hook_name(np.int64(2)) == "blocks.2.hook_resid_pre"


def test_a_diverging_run_raises_instead_of_returning_nan():
    with pytest.raises(FloatingPointError, match="diverged"):
        train_scratch_sae(TOY_DATA, ScratchConfig(d_sae=8, steps=5, lr=1e30), progress=False)


def _copy_shipped(tmp_path):
    import shutil

    root = tmp_path / "sae"
    shutil.copytree(sw.SAE_DIR, root)
    return root


def test_damaged_sae_files_name_the_rebuild_command(tmp_path):
    with pytest.raises(ArtifactError, match="python -m course_lib.sae train-world"):
        sw.load_world_sae(2, root=tmp_path / "nothing")
    root = _copy_shipped(tmp_path)
    assert sw.load_world_sae(2, device="cpu", root=str(root)).cfg.d_sae == 1024  # a str folder works
    weights = sw.sae_folder(2, root) / "sae_weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupted.*train-world"):
        sw.load_world_sae(2, root=root)
    weights.unlink()
    with pytest.raises(ArtifactError, match="missing.*train-world"):
        sw.load_world_sae(2, root=root)


def test_extra_file_and_invalid_metrics_name_the_rebuild_command(tmp_path):
    root = _copy_shipped(tmp_path)
    (sw.sae_folder(2, root) / "extra.json").write_text("{}")
    with pytest.raises(ArtifactError, match="unexpected file.*train-world"):
        sw.load_world_sae(2, root=root)
    (sw.sae_folder(2, root) / "extra.json").unlink()
    (root / sw.METRICS_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="train-world"):
        sw.world_sae_metrics(root)


def test_an_sae_trained_on_another_world_lm_is_refused(tmp_path):
    root = _copy_shipped(tmp_path)
    metrics = json.loads((root / sw.METRICS_FILE).read_text())
    (root / sw.METRICS_FILE).write_text(json.dumps({**metrics, "world_model_sha256": "0" * 64}))
    sw.write_checksums(root)
    with pytest.raises(ArtifactError, match="another world LM.*train-world"):
        sw.load_world_sae(2, device="cpu", root=root)


def test_card_reports_ce_increase_kl_and_bos(tmp_path):
    m = dict(hook="blocks.2.hook_resid_pre", d_sae=1024, k=16, L0=16.0, FVU=0.0481, dead=0.01, CE_clean=0.7544,
             CE_sae=0.7561, CE_zero_ablation=8.27, CE_recovered=0.99977, CE_increase=0.0017, KL=0.00213, tokens=30000,
             predictions=29000, baseline_pca16=dict(FVU=0.2, CE_sae=0.9, CE_increase=0.15, CE_recovered=0.98, KL=0.16))
    config = sw.WorldSAEConfig()
    sw.write_card(tmp_path, dict(config=dataclasses.asdict(config), eval=dict(docs=1500, seed=1000), layers={"2": m}))
    card = (tmp_path / sw.CARD_FILE).read_text()
    assert sw.REBUILD in card and "BOS positions are excluded from every figure" in card
    assert "| 0.0017 | 0.9998 | 0.0021 |" in card and "CE increase (nats)" in card and "KL (nats)" in card
    assert "| 2 | 0.200 | 0.9000 | 0.1500 | 0.9800 | 0.1600 |" in card  # the PCA yardstick
    assert sw.REBUILD in (sw.SAE_DIR / sw.CARD_FILE).read_text()


def test_pca_baseline_is_a_yardstick_the_sae_beats(world_model):
    tokens = sw.eval_tokens(world_model, n_docs=60)
    pca = sw.pca_baseline(world_model, 2, n_components=16, n_docs=200)
    assert pca.cfg.d_sae == 16 and torch.allclose(pca.components @ pca.components.T, torch.eye(16), atol=1e-4)
    base = sw.evaluate_world_sae(world_model, pca, tokens)
    full = sw.evaluate_world_sae(world_model, sw.pca_baseline(world_model, 2, n_components=128, n_docs=200), tokens)
    assert full["FVU"] < 1e-4 and abs(full["CE_increase"]) < 1e-3  # all components: (almost) the identity
    sae = sw.evaluate_world_sae(world_model, sw.load_world_sae(2, device="cpu"), tokens)
    assert sae["KL"] < base["KL"] and sae["FVU"] < base["FVU"] and base["CE_recovered"] > 0.5
    with pytest.raises(ValueError, match="n_components must be at most"):
        sw.pca_baseline(world_model, 2, n_components=200, n_docs=20)


def test_footprint_matches_opensae_checkpoint_size():
    from course_lib.sae.scaling import sae_footprint

    big = sae_footprint(4096, 262_144, 32, tokens=20e9)
    assert big["gb_per_layer"] == pytest.approx(8.6, abs=0.05)  # OpenSAE: ~8.6 GB per layer
    assert big["gb_all_layers"] == pytest.approx(32 * big["gb_per_layer"])
    with pytest.raises(ValueError, match="must be positive"):
        sae_footprint(0, 10)


def test_bench_runs_and_reports_both_trainers():
    from course_lib.sae.bench import BenchConfig, benchmark

    out = benchmark(BenchConfig(d_in=8, d_sae=16, batch_size=32, steps=3, warmup=1), device="cpu")
    assert out["scratch_tokens_per_s"] > 0 and out["saelens_tokens_per_s"] > 0
    with pytest.raises(ValueError, match="steps must be a >= 2 int"):
        BenchConfig(steps=1)


def test_importing_the_package_is_cheap():
    import subprocess
    import sys

    code = "import sys, course_lib.sae; assert 'torch' not in sys.modules, 'torch imported'; print(course_lib.sae.SAE)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "course_lib.sae.model.SAE" in out.stdout


def test_json_of_the_shipped_metrics_is_valid():
    assert json.loads((sw.SAE_DIR / sw.METRICS_FILE).read_text())["layers"]["2"]["hook"] == "blocks.2.hook_resid_pre"


def test_build_writes_a_verified_folder_and_keeps_the_old_one_on_failure(tmp_path, world_model):
    root = tmp_path / "sae"
    tiny = sw.WorldSAEConfig(d_sae=32, k=4, steps=3, train_docs=40, batch_size=64, eval_docs=10)
    metrics = sw.build_world_saes(root, config=tiny, progress=False)
    assert metrics["config"]["d_sae"] == 32 and set(metrics["layers"]) == {"2"} and len(metrics["world_model_sha256"]) == 64
    assert sw.load_world_sae(2, device="cpu", root=root).cfg.d_sae == 32
    assert "CE increase (nats)" in (root / sw.CARD_FILE).read_text() and "baseline_pca16" in metrics["layers"]["2"]
    before = (root / "checksums.json").read_text()
    with pytest.raises(ValueError, match="layer must be an int"):
        sw.build_world_saes(root, layers=(7,), config=tiny, progress=False)
    assert (root / "checksums.json").read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["sae"]


def test_cli_rejects_bad_arguments():
    from course_lib.sae.__main__ import main

    with pytest.raises(SystemExit) as err:
        main(["bench", "--steps", "1"])
    assert err.value.code == 2
