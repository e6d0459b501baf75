"""Notebook 06: the checks teach (reference passes, mistakes get their hint, a stub falls back),
the shipped runs show the asserted results, and bad input gives clear errors."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from check_contract import contract_tests
from course_lib.implicit_reasoning import analysis as an
from course_lib.implicit_reasoning import checks as ck
from course_lib.implicit_reasoning import runs
from course_lib.implicit_reasoning.training import TrainConfig, first_step_at
from course_lib.implicit_reasoning.world import World, WorldConfig, build_splits

torch.set_num_threads(1)



CASES = {
    "build_splits": (ck.check_build_splits, build_splits, [
        (ck._swapped_letters, "you swapped them"),
        (ck._answer_is_bridge, "the bridge e2 comes before the answer e3"),
        (ck._only_first_hop_origin, "check is_ood of the second hop"),
    ]),
    "answer_only_loss": (ck.check_answer_only_loss, ck.answer_only_loss, [
        (ck._loss_last, "use each row's answer_pos"),
        (ck._loss_all_positions, "not on every position"),
        (lambda lg, a, p: ck.answer_only_loss(lg, a, p) * lg.shape[0], "not sum"),
    ]),
    "answer_accuracy": (ck.check_answer_accuracy, ck.answer_accuracy, [
        (lambda lg, a, p: float((lg[:, -1].argmax(-1) == a).float().mean()), "its own answer position"),
        (lambda lg, a, p: float((lg[range(len(a)), p].argmax(-1) == a).float().sum()), "not the number"),
    ]),
    "logit_lens_at": (ck.check_logit_lens_at, an.logit_lens_at, [
        (ck._lens_no_ln, "model.ln_final"),
        (ck._lens_no_embed, "n_layers + 1 states"),
        (lambda model, cache, pos: an.logit_lens_at(model, cache, -1), "not at the last position"),
    ]),
    "patched_logits": (ck.check_patched_logits, an.patched_logits, [
        (ck._patch_same_pos, "at src_pos"),
        (ck._patch_all_positions, "Patch one position only"),
        (ck._patch_post, "resid_pre"),
    ]),
    "edit_metrics": (ck.check_edit_metrics, an.edit_metrics, [
        (lambda ap, nb, th, na: {"edit": float((ap == nb).float().mean()),
                                 "multi_hop": float((th == nb).float().mean())}, "not the new bridge"),
        (lambda ap, nb, th, na: {"edit": float((ap == nb).sum()), "multi_hop": float((th == na).sum())},
         "not counts"),
    ]),
}


test_reference_passes, test_mistakes_get_their_hint, test_stub_falls_back = contract_tests(CASES)


# ----------------------------------------------------------------------------- the world
def test_splits_are_consistent():
    world = World(WorldConfig(n_entities=30, relations_per_entity=10, phi=3.0, n_test=200))
    tail = world.tail
    for split, q in world.all_queries.items():
        assert all(tail[(a, b)] == e2 and tail[(e2, c)] == e3 for a, b, c, e2, e3 in q[:50].tolist())
    train = {tuple(q[:3]) for q in world.train_2hop.tolist()}
    assert not train & {tuple(q[:3]) for q in world.test["ID"].tolist()}, "ID test is held out"
    assert len(world.train_2hop) == round(3.0 * (~world.is_ood).sum())


def test_blocked_second_hops_never_appear_in_training():
    world = World(WorldConfig(n_entities=30, relations_per_entity=10, phi=3.0, blocked_second_hop=0.2))
    assert not world.second_hop_blocked(world.train_2hop).any()
    assert world.second_hop_blocked(world.test["ID_blocked"]).all()
    assert len(world.test["ID_blocked"]) > 0


# ----------------------------------------------------------------------------- shipped runs
# The asserted results must hold on the shipped seed and on its shipped repeat (not luck).
ON_BOTH_SEEDS = pytest.mark.parametrize("seed", [None, runs.REPEAT_SEED], ids=["shipped", "repeat"])


@ON_BOTH_SEEDS
def test_main_run_memorizes_before_it_generalizes(seed):
    """Training accuracy passes 85 % while ID test accuracy is still low, ID rises later,
    OOD (OO, IO) stays near chance."""
    log = runs.load_run("main", seed)["log"]
    i = log["step"].index(first_step_at(log, "train", 0.85))
    assert log["ID"][i] <= 0.15, "ID test is still low when training accuracy passes 85 %"
    assert log["ID"][-1] >= 3 * log["ID"][i] and log["ID"][-1] >= 0.4
    assert log["OO"][-1] <= 0.10 and log["IO"][-1] <= 0.10


@ON_BOTH_SEEDS
def test_main_run_reaches_the_papers_thresholds(seed):
    """Training >= 99 %, ID test >= 90 %, OO <= 10 %, and ID crosses 50 % only once training
    accuracy is on its plateau (>= 90 %)."""
    log = runs.load_run("main", seed)["log"]
    assert log["train"][-1] >= 0.99 and log["ID"][-1] >= 0.90 and log["OO"][-1] <= 0.10
    id50 = first_step_at(log, "ID", 0.5)
    assert id50 is not None and id50 > first_step_at(log, "train", 0.9)


def test_main_run_passes_95_percent_training_accuracy_before_id_passes_50():
    """The issue's criterion of memorization first, on the shipped seed. On the repeat (seed 1)
    it misses by a hair: training sits at 0.946 when ID passes 50 % (step 14308), and passes 95 %
    at step 18531; the notebook reports both."""
    log = runs.load_run("main")["log"]
    train95, id50 = first_step_at(log, "train", 0.95), first_step_at(log, "ID", 0.5)
    assert train95 is not None and id50 is not None and id50 > train95


@ON_BOTH_SEEDS
def test_ood_first_hop_generalizes_last_ood_second_hop_never(seed):
    """Ye et al.'s phases: memorization, then ID, then OI (an OOD first hop composed with an ID
    second hop); IO and OO, whose second hop never was a training second hop, stay near zero."""
    log = runs.load_run("main", seed)["log"]
    oi50, id50 = first_step_at(log, "OI", 0.5), first_step_at(log, "ID", 0.5)
    assert oi50 is not None and id50 is not None and oi50 > id50
    after = log["step"].index(id50)  # OO has only 37 queries: early noise reaches 4/37
    assert max(log["IO"][after:]) <= 0.10 and max(log["OO"][after:]) <= 0.10


def test_smaller_models_memorize_but_do_not_generalize():
    """The main model is the smallest tried: the main recipe with 2 layers or d_model 32 fits the
    training set but stays below the ID thresholds (the narrow one generalizes nothing)."""
    two, narrow = runs.load_run("main_2_layers")["log"], runs.load_run("main_d32")["log"]
    assert two["train"][-1] >= 0.99 and two["ID"][-1] < 0.9
    assert narrow["train"][-1] >= 0.99 and narrow["ID"][-1] <= 0.15


def test_shipped_runs_are_what_the_script_trains():
    """Every shipped log, and every shipped seed repeat, was trained with the configuration in
    ``runs.RUNS``, to its last step."""
    for name, seed in runs.shipped_runs():
        rec = runs.load_run(name, seed)
        wcfg, tcfg = runs.configs(name, seed)
        assert rec["world"] == dataclasses.asdict(wcfg) and rec["train"] == dataclasses.asdict(tcfg), name
        assert rec["log"]["step"][-1] == tcfg.steps and rec["name"] == runs.run_stem(name, seed), name


def test_larger_phi_generalizes_sooner():
    """Wang et al.: the speed of ID generalization grows with phi (5.4 < 9 < 14.4)."""
    first = [first_step_at(runs.load_run(name)["log"], "ID", 0.4) for name in ("main", "phi_9", "phi_14.4")]
    assert None not in first and first[0] > first[1] > first[2], first


@ON_BOTH_SEEDS
def test_no_id_atomic_run_still_generalizes_later(seed):
    """Ye et al.: without the ID atomic triples (phi = 14.4) the ID test still reaches >= 80 %,
    later than the same world with them; OOD stays near chance."""
    no_id, with_id = runs.load_run("no_id_atomic", seed)["log"], runs.load_run("phi_14.4", seed)["log"]
    assert no_id["step"] == with_id["step"], "both runs are logged at the same steps"
    assert no_id["ID"][-1] >= 0.80 and no_id["OO"][-1] <= 0.10 and no_id["IO"][-1] <= 0.10
    for threshold in (0.5, 0.8):
        assert first_step_at(no_id, "ID", threshold) > first_step_at(with_id, "ID", threshold), threshold


def test_no_id_atomic_at_the_main_phi_does_not_generalize_in_budget():
    """What the notebook reports: at phi = 5.4 the ablation stays near chance for 24000 steps."""
    log = runs.load_run("no_id_atomic_phi_5.4")["log"]
    assert log["step"][-1] == 24000 and max(log["ID"]) <= 0.15


@ON_BOTH_SEEDS
def test_blocked_second_hops_do_not_compose(seed):
    """Ye et al.: a triple never trained as a second hop is not composed as one, while the other
    held-out ID queries generalize."""
    log = runs.load_run("blocked_second_hop", seed)["log"]
    assert log["ID"][-1] >= 0.80 and log["ID_blocked"][-1] <= 0.05


@pytest.fixture(scope="module")
def patching_curve():
    model, world = runs.load_main_model()
    return an.cross_query_patching(model, world, world.test["ID"][:150]), model.cfg.n_layers


def test_cross_query_patching_peaks_at_r1_in_middle_layers(patching_curve):
    curve, n_layers = patching_curve
    r1 = curve["r1"]
    best = int(np.argmax(r1))
    assert 0 < best < n_layers and r1[best] >= 0.5 and r1[-1] <= 0.1
    assert max(curve["e1"]) <= 0.1 and max(curve["r2"]) <= 0.1


def test_cross_query_patching_reaches_one(patching_curve):
    """Ye et al. report success close to 1.0 in the middle layers (measured: 0.95 at layer 2)."""
    assert max(patching_curve[0]["r1"]) >= 0.9


def test_short_live_run_is_seeded():
    world = World(WorldConfig(n_entities=20, relations_per_entity=5, n_relations=5, phi=2.0, n_test=50,
                              ood_fraction=0.2))
    cfg = TrainConfig(n_layers=2, d_model=32, n_heads=2, d_mlp=64, steps=20, batch_size=64, n_log=3)
    from course_lib.implicit_reasoning.training import train
    a, b = train(world, cfg)["log"], train(world, cfg)["log"]
    assert a == b and a["step"][-1] == 20


def test_the_script_retrains_the_start_of_the_shipped_main_run():
    """The first steps of the main configuration, trained now, give the shipped log (the notebook's
    live run relies on this); a small tolerance for another CPU's floating point."""
    from course_lib.implicit_reasoning.training import train
    wcfg, tcfg = runs.configs("main")
    start = dataclasses.replace(tcfg, steps=5, n_log=3, decay_from=1.0)  # main's lr decays from step 18000
    live = train(World(wcfg), start)["log"]
    shipped = runs.load_run("main")["log"]
    assert live["step"] == [1, 2, 5]
    for i, step in enumerate(live["step"]):
        j = shipped["step"].index(step)
        for key in ("loss", "train", "ID", "IO", "OI", "OO"):
            assert abs(live[key][i] - shipped[key][j]) <= 0.01, (step, key)


def test_a_run_repeats_on_another_seed(tmp_path, monkeypatch):
    """``train-all RUN --seed N``: same configuration, world and training seed N, its own file."""
    monkeypatch.setitem(runs.RUNS, "main", (dict(n_entities=12, n_relations=4, relations_per_entity=4, n_test=20),
                                            dict(n_layers=1, d_model=16, n_heads=2, d_mlp=32, steps=5, n_log=2)))
    rec = runs.run_one("main", progress=False, seed=3, out_dir=tmp_path)
    assert rec["world"]["seed"] == rec["train"]["seed"] == 3 and rec["log"]["step"][-1] == 5
    assert sorted(f.name for f in tmp_path.iterdir()) == ["main_seed3.json"]  # no checkpoint
    assert json.loads((tmp_path / "main_seed3.json").read_text())["name"] == "main_seed3"


def test_train_all_command(monkeypatch, capsys):
    """No run named: every shipped file (runs + seed repeats); named runs with --seed; --jobs."""
    from course_lib.implicit_reasoning import __main__ as cli
    calls = []
    monkeypatch.setattr(cli, "train_all", lambda todo, **kw: calls.append((todo, kw)))
    cli.main(["train-all"])
    cli.main(["train-all", "main", "phi_9", "--seed", "2", "--jobs", "2"])
    assert calls[0] == (runs.shipped_runs(), dict(out_dir=None, jobs=1))
    assert ("main", runs.REPEAT_SEED) in calls[0][0] and ("main", None) in calls[0][0]
    assert calls[1] == ([("main", 2), ("phi_9", 2)], dict(out_dir=None, jobs=2))
    with pytest.raises(SystemExit):
        cli.main(["train-all", "--seed", "2"])
    assert "--seed needs the runs" in capsys.readouterr().err


def test_lr_schedule_warms_up_stays_constant_then_decays():
    from course_lib.implicit_reasoning.training import lr_factor
    flat, decay = TrainConfig(steps=1000, warmup=100), TrainConfig(steps=1000, warmup=100, decay_from=0.5)
    assert lr_factor(0, flat) == 0.01 and lr_factor(99, flat) == lr_factor(999, flat) == 1.0
    assert lr_factor(499, decay) == 1.0 and abs(lr_factor(750, decay) - 0.5) < 1e-9 and lr_factor(999, decay) < 1e-4


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, fragment", [
    (dict(n_entities=1), "n_entities"), (dict(relations_per_entity=30), "relations_per_entity"),
    (dict(ood_fraction=0.0), "ood_fraction"), (dict(phi=-1), "phi"), (dict(blocked_second_hop=1.0), "blocked"),
])
def test_bad_world_config(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        WorldConfig(**kwargs)


@pytest.mark.parametrize("kwargs, fragment", [(dict(d_model=30, n_heads=4), "divisible"), (dict(steps=0), "steps"),
                                              (dict(lr=0.0), "lr"), (dict(decay_from=1.5), "decay_from")])
def test_bad_train_config(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        TrainConfig(**kwargs)


def test_bad_layer_and_run_name():
    model = ck._random_model()
    with pytest.raises(ValueError, match="layer must be in 0..3"):
        an.resid_hook_name(model, 4)
    with pytest.raises(ValueError, match="unknown run"):
        runs.load_run("nope")


def test_missing_or_corrupt_file_names_the_rebuild_command(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "RUN_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="train-all"):
        runs.load_run("main")
    (tmp_path / "main.json").write_text("{not json")
    with pytest.raises(FileNotFoundError, match="train-all"):
        runs.load_run("main")
    (tmp_path / "main.safetensors").write_bytes(b"garbage")
    with pytest.raises(FileNotFoundError, match="train-all"):
        runs.load_main_model()
