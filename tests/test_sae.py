"""Notebook 02 (sparse autoencoders): checks accept the reference, reject plausible mistakes with
their hint and fall back for a stub; the asserted results; bad input and missing files."""
import json

import pytest
import torch

from check_contract import contract_tests
from course_lib.sae import checks as ch
from course_lib.sae import scratch as sc
from course_lib.sae import world as sw
from course_lib.sae.scaling import SCALING_DATA, compute_frontier, fit_power_law, scaling_sweep
from course_lib.sae.toy_data import ToyDictionaryData

torch.set_num_threads(1)


def _stub(*args, **kwargs):
    raise NotImplementedError


class _StubSAE(sc.SAE):
    def encode(self, x):
        raise NotImplementedError


class _TransposedDecode(sc.SAE):  # no specific hint: the message still says what differs
    def decode(self, f):
        return f @ self.W_dec + self.b_dec * 2


CASES = {
    "SAE": (ch.check_sae, sc.SAE, _StubSAE, [
        (ch._NoPreBias, "pre-bias"), (ch._NoReLU, "Apply the ReLU"), (ch._DecodeNoBias, "adds the decoder bias"),
        (ch._PreBiasAdded, "*subtracted*"), (_TransposedDecode, "encode: ReLU((x − b_dec)")]),
    "sae_loss": (ch.check_sae_loss, sc.sae_loss, _stub, [
        (lambda x, xh, f, l1: torch.nn.functional.mse_loss(xh, x) + l1 * f.abs().sum(-1).mean(), "F.mse_loss"),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum(-1).mean() + l1 * f.abs().mean(), "sum over latents"),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum(-1).mean() + l1 * f.pow(2).sum(-1).mean(), "not the squared L2"),
        (lambda x, xh, f, l1: (x - xh).pow(2).sum() + l1 * f.abs().sum(), "Average over the batch")]),
    "normalize_decoder": (ch.check_normalize_decoder, sc.normalize_decoder, _stub, [
        (lambda W: W / W.norm(dim=0, keepdim=True), "each *row*"),
        (lambda W: W / W.norm(), "each row separately"),
        (lambda W: W - W.norm(dim=-1, keepdim=True), "do not subtract")]),
    "mmcs": (ch.check_mmcs, sc.mmcs, _stub, [
        (lambda t, w: sc.mmcs(w, t), "max over learned"),
        (lambda t, w: (t @ w.T).max(dim=1).values.mean(), "normalise both"),
        (lambda t, w: (sc.normalize_decoder(t) @ sc.normalize_decoder(w).T).abs().max(1).values.mean(), "absolute")]),
    "resample_weights": (ch.check_resample_weights, sc.resample_weights, _stub, [
        (ch._resample_all_norms, "*alive* latents only"), (ch._resample_keep_bias, "b_enc to 0"),
        (ch._resample_raw_decoder, "*normalised* input"), (ch._resample_no_scale, "× 0.2")]),
    "fvu": (ch.check_fvu, sc.fvu, _stub, [
        (lambda x, xh: (x - xh).pow(2).sum() / x.pow(2).sum(), "mean(x)"),
        (lambda x, xh: 1 - sc.fvu(x, xh), "not 1 minus")]),
    "ce_loss_recovered": (ch.check_ce_loss_recovered, ch.ce_loss_recovered, _stub, [
        (lambda c, s, z: (s - c) / (z - c), "relative to zero-ablation"),
        (lambda c, s, z: z - s, "whole gap"),
        (lambda c, s, z: (z - s) / z, "The denominator")]),
}


test_reference_passes, test_mistakes_get_their_hint, test_stub_falls_back = contract_tests(CASES)


# ----------------------------------------------------------------------------- asserted results
@pytest.fixture(scope="module")
def toy():
    data = ToyDictionaryData(**sc.TOY_DATA)
    return data, data.sample(8192, torch.Generator().manual_seed(sc.EVAL_SEED))


def test_scratch_sae_recovers_the_known_dictionary(toy):
    data, x = toy
    sae, _ = sc.train_scratch_sae(data, progress=False, **sc.SCRATCH)
    stats = sc.sae_stats(sae.encode, sae.decode, x, data.dictionary, sae.W_dec)
    print("from-scratch SAE:", stats)
    assert stats["MMCS"] >= 0.95
    assert stats["L0"] <= 10 and stats["FVU"] < 0.3


def test_resampling_lowers_the_dead_fraction(toy):
    data, x = toy
    dead = []
    for resample_at in ((), sc.RESAMPLE_AT):
        sae, _ = sc.train_scratch_sae(data, progress=False, resample_at=resample_at, **sc.DEAD_DEMO)
        dead.append(sc.sae_stats(sae.encode, sae.decode, x)["dead"])
    print("dead fraction without / with resampling:", dead)
    assert dead[0] > dead[1]


def test_scaling_law_frontier_fits_a_power_law():
    points = scaling_sweep(ToyDictionaryData(**SCALING_DATA))
    fit = fit_power_law(*zip(*[(p["flops"], p["loss"]) for p in compute_frontier(points)]))
    print("power law:", fit)
    assert fit["r2"] >= 0.9 and fit["exponent"] < 0


def test_frontier_keeps_only_improving_points():
    pts = [dict(flops=1, loss=3.0), dict(flops=2, loss=3.5), dict(flops=3, loss=2.0), dict(flops=3, loss=2.5)]
    assert [p["loss"] for p in compute_frontier(pts)] == [3.0, 2.0]
    fit = fit_power_law([1, 10, 100], [2.0, 1.0, 0.5])
    assert fit["exponent"] == pytest.approx(-0.30103, abs=1e-4) and fit["r2"] == pytest.approx(1.0)


def test_shipped_world_sae_recovers_the_loss():
    from course_lib.world import load_world_model

    model = load_world_model(device="cpu")
    sae = sw.load_world_sae(2, device="cpu")
    assert sae.cfg.metadata.hook_name == "blocks.2.hook_resid_pre"
    m = sw.evaluate_world_sae(model, sae, sw.eval_tokens(model, n_docs=300))
    print("world SAE:", m)
    assert m["CE_recovered"] >= 0.9 and m["L0"] <= 32
    shipped = sw.world_sae_metrics()["layers"]["2"]
    assert shipped["CE_recovered"] >= 0.9 and shipped["L0"] <= 32


# ----------------------------------------------------------------------------- bad input, missing files
@pytest.mark.parametrize("call, match", [
    (lambda: ToyDictionaryData(d=0), "d must be a positive int"),
    (lambda: ToyDictionaryData(mean_active=100), "mean_active"),
    (lambda: ToyDictionaryData(offset=-1.0), "offset"),
    (lambda: ToyDictionaryData().sample(0, None), "n must be a positive int"),
    (lambda: next(ToyDictionaryData().batches(0)), "batch_size"),
    (lambda: sc.SAE(0, 4), "positive ints"),
    (lambda: sc.train_scratch_sae(ToyDictionaryData(), 8, 0), "steps must be a positive int"),
    (lambda: sc.train_scratch_sae(ToyDictionaryData(), 8, 5, init_b_dec="median"), "init_b_dec"),
    (lambda: sw.hook_name(4), "layer must be an int in 0..3"),
    (lambda: sw.load_world_sae(layer=0), "no SAE is shipped for layer 0"),
    (lambda: fit_power_law([1.0], [1.0]), "at least 2 points"),
    (lambda: compute_frontier([]), "points is empty"),
    (lambda: scaling_sweep(ToyDictionaryData(), sizes=()), "non-empty"),
])
def test_bad_input_raises_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_architecture():
    from course_lib.sae.library import training_sae

    with pytest.raises(ValueError, match="architecture must be one of"):
        training_sae("gated", 4, 8)


def test_missing_and_corrupted_sae_files_name_the_rebuild_command(tmp_path):
    with pytest.raises(sw.SAEFilesError, match="python -m course_lib.sae train-world"):
        sw.load_world_sae(2, root=tmp_path)
    folder = sw.sae_folder(2, tmp_path)
    folder.mkdir()
    (folder / "cfg.json").write_text("{}")
    sw.write_checksums(tmp_path)
    assert json.loads((tmp_path / sw.CHECKSUMS_FILE).read_text()) and sw.verify(tmp_path) is None
    (folder / "cfg.json").write_text('{"changed": 1}')
    with pytest.raises(sw.SAEFilesError, match="corrupted.*train-world"):
        sw.load_world_sae(2, root=tmp_path)
    (folder / "cfg.json").unlink()
    with pytest.raises(sw.SAEFilesError, match="missing.*train-world"):
        sw.load_world_sae(2, root=tmp_path)


def test_footprint_matches_opensae_checkpoint_size():
    from course_lib.sae.scaling import sae_footprint

    big = sae_footprint(4096, 262_144, 32, tokens=20e9)
    assert big["gb_per_layer"] == pytest.approx(8.6, abs=0.05)  # OpenSAE: ~8.6 GB per layer
    assert big["gb_all_layers"] == pytest.approx(32 * big["gb_per_layer"])
    with pytest.raises(ValueError, match="must be positive"):
        sae_footprint(0, 10)


def test_bench_runs_and_reports_both_trainers():
    from course_lib.sae.bench import benchmark

    out = benchmark(d_in=8, d_sae=16, batch_size=32, steps=3, warmup=1, device="cpu")
    assert out["scratch_tokens_per_s"] > 0 and out["saelens_tokens_per_s"] > 0
    with pytest.raises(ValueError, match="steps >= 2"):
        benchmark(steps=1)
