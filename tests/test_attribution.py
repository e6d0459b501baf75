"""Attribution graphs (notebook 05): the local replacement model's edges, checked against what they claim.

* the edge-sum identity (incoming edges + bias = pre-activation, to 1e-4) on the world LM's Dallas
  prompt, for per-layer transcoders and for a cross-layer transcoder, with the bias measured
  independently and the error nodes from the transcoders' own forward pass;
* every edge of a column predicts the effect of an intervention on that source in the frozen model
  (patterns and LayerNorm scales frozen by hooks written here, independently of the library);
* one edge by hand (:func:`direct_edge` through :func:`frozen_path`) equals the graph's;
* influence against a brute-force power series; pruning keeps tokens and logits, and the identity;
* exact transcoders of a ReLU model: no error, completeness and replacement scores 1;
* drawing runs headless.
"""
import pytest
import torch

from course_lib.checking import randomize_parameters
from course_lib.circuits import attribution as at
from course_lib.circuits.transcoders import CrossLayerTranscoder, Transcoder, TranscoderSet

PROMPT = "The capital of the state containing Dallas is"


def _random_transcoders(n_layers, d_model, d_sae, k, seed=0, clt=False):
    g = torch.Generator().manual_seed(seed)
    if clt:
        tc = CrossLayerTranscoder(n_layers, d_model, d_sae, d_model, k)
    else:
        tc = TranscoderSet([Transcoder(d_model, d_sae, d_model, k, l) for l in range(n_layers)])
    with torch.no_grad():
        for name, p in tc.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if "W_enc" in name else 0.1))
    return tc.requires_grad_(False)


@pytest.fixture(scope="module")
def world():
    from course_lib.world import load_world_model

    return load_world_model(device="cpu")


@pytest.fixture(scope="module", params=["per-layer", "clt"])
def graph(request, world):
    tc = _random_transcoders(world.cfg.n_layers, world.cfg.d_model, 256, 8, clt=request.param == "clt")
    return world, tc, at.attribute(world, tc, PROMPT)


def _transcoder_outputs(tc, xs):
    if isinstance(tc, CrossLayerTranscoder):
        return tc(xs)
    acts = [t(x)[0] for t, x in zip(tc, xs)]
    return acts, torch.stack([t(x)[1] for t, x in zip(tc, xs)])


def test_incoming_edges_sum_to_each_nodes_preactivation(graph):
    model, tc, g = graph
    err = at.edge_sum_error(g.adjacency, g.bias, g.preactivation)
    assert err.max() < 1e-4, err.max()
    assert g.preactivation.abs().max() > 1, "a real test: pre-activations are not all tiny"
    # the pre-activations and error vectors are the transcoders' own, on the real model's run
    L = model.cfg.n_layers
    _, cache = model.run_with_cache(model.to_tokens(PROMPT))
    xs = [cache[f"blocks.{l}.ln2.hook_normalized"][0] for l in range(L)]
    acts, out = _transcoder_outputs(tc, xs)
    l, p, f = g.features.unbind(1)
    assert torch.allclose(g.activations, torch.stack(acts)[l, p, f])
    assert (g.activations > 0).all() and (p > 0).all(), "active features, none at <bos> (zero_bos)"
    assert len(g.features) == sum(int((a[1:] > 0).sum()) for a in acts), "every active feature is a node"
    # an error node's outgoing edges are its error vector (true MLP out − transcoder out) read by the targets
    error = torch.stack([cache[f"blocks.{j}.hook_mlp_out"][0] for j in range(L)]) - out
    assert error[:, 1:].norm() > 1


def _frozen_hooks(model, tokens):
    """Hooks freezing every attention pattern and LayerNorm scale at their values on ``tokens``."""
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith(("hook_pattern", "hook_scale")))
    return [(name, lambda x, hook, v=value: v) for name, value in cache.items()]


@pytest.mark.parametrize("kind", ["per-layer", "cross-layer"])
def test_the_shipped_transcoders_graph_of_the_dallas_prompt(world, kind):
    from course_lib.circuits import load_clt, load_transcoders

    g = at.attribute(world, load_transcoders() if kind == "per-layer" else load_clt(), PROMPT, target="Austin")
    assert at.edge_sum_error(g.adjacency, g.bias, g.preactivation).max() < 1e-4
    p = at.prune(g)
    assert at.edge_sum_error(p.adjacency, p.bias, p.preactivation).max() < 1e-4
    # measured: per-layer 0.902 / 0.973, pruned (26 features) 0.656 / 0.892; CLT 0.914 / 0.975, pruned (17) 0.707 / 0.905
    assert 0.8 <= at.completeness_score(p) <= at.completeness_score(g) < 1
    assert 0.5 <= at.replacement_score(p) <= at.replacement_score(g) < 1


def test_each_edge_is_the_effect_of_its_source_in_the_frozen_model(graph):
    model, tc, g = graph
    tokens = g.tokens[None]
    L, n_f = model.cfg.n_layers, g.n_features
    frozen = _frozen_hooks(model, tokens)

    def measure(extra):
        """Feature pre-activations and centred logits with the MLP outputs frozen (+ ``extra[l]``)."""
        _, clean = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_mlp_out"))
        mlp = {l: clean[f"blocks.{l}.hook_mlp_out"] for l in range(L)}
        xs = {}
        hooks = frozen + [(f"blocks.{l}.hook_mlp_out", lambda x, hook, l=l: mlp[l] + extra.get(l, 0)) for l in range(L)]
        hooks += [(f"blocks.{l}.ln2.hook_normalized", lambda x, hook, l=l: xs.__setitem__(l, x[0])) for l in range(L)]
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)[0, -1]
        W_enc = tc.W_enc if isinstance(tc, CrossLayerTranscoder) else [t.W_enc for t in tc]
        b_enc = tc.b_enc if isinstance(tc, CrossLayerTranscoder) else [t.b_enc for t in tc]
        l, p, f = g.features.unbind(1)
        pre = torch.stack([xs[a] @ W_enc[a] + b_enc[a] for a in range(L)])[l, p, f]
        return torch.cat([pre, logits[g.logit_tokens] - logits.mean()])

    base = measure({})
    rows = torch.cat([torch.arange(n_f), torch.arange(g.slice("logit").start, g.n_nodes)])
    checked = 0
    for s in torch.randperm(n_f, generator=torch.Generator().manual_seed(0))[:12].tolist():
        l, p, f = g.features[s].tolist()
        extra = {}
        for j in range(l, L):  # doubling the activation adds the feature's decoded output once more
            w = tc.W_dec[l][f, j - l] if isinstance(tc, CrossLayerTranscoder) else (tc[l].W_dec[f] if j == l else None)
            if w is not None:
                extra[j] = torch.zeros(1, g.n_pos, model.cfg.d_model)
                extra[j][0, p] = g.activations[s] * w
        effect = measure(extra) - base
        torch.testing.assert_close(effect, g.adjacency[rows, s], atol=2e-4, rtol=1e-3)
        checked += int((g.adjacency[rows, s].abs() > 1e-3).sum())
    assert checked > 20, "the sampled columns have real edges"


def test_one_edge_by_hand_through_the_frozen_path(world):
    tc = _random_transcoders(world.cfg.n_layers, world.cfg.d_model, 256, 8)
    g = at.attribute(world, tc, PROMPT)
    pairs = [(0, 5, 2, 7), (0, 7, 1, 7), (1, 2, 3, 8)]  # (source layer, position) -> (target layer, position)
    for ls, ps, lt, pt in pairs:
        s = next(i for i in range(g.n_features) if g.features[i, :2].tolist() == [ls, ps])
        t = next(i for i in range(g.n_features) if g.features[i, :2].tolist() == [lt, pt])
        fs, ft = int(g.features[s, 2]), int(g.features[t, 2])
        path = at.frozen_path(world, g.tokens, (ls, ps), (lt, pt))
        edge = at.direct_edge(g.activations[s], tc[ls].W_dec[fs], tc[lt].W_enc[:, ft], g.ln_scales[lt, pt], path)
        assert abs(float(edge) - float(g.adjacency[t, s])) < 1e-5 + 1e-4 * abs(float(edge)), (ls, ps, lt, pt)
    with pytest.raises(ValueError, match="before the target"):
        at.frozen_path(world, g.tokens, (2, 3), (1, 3))


def test_influence_is_the_sum_over_all_paths():
    g = torch.Generator().manual_seed(0)
    n = 30
    A = torch.randn(n, n, generator=g).tril(-1) * (torch.rand(n, n, generator=g) < 0.4)  # a DAG
    A[:, -3:] = 0  # the last three are the logits: sources of nothing
    w = torch.zeros(n)
    w[-3:] = torch.tensor([0.5, 0.3, 0.2])
    An = A.abs() / A.abs().sum(1, keepdim=True).clamp(min=1e-10)
    brute, power = torch.zeros(n, dtype=torch.float64), w.double()
    for _ in range(n):
        power = power @ An.double()
        brute += power
    torch.testing.assert_close(at.node_influence(A, w).double(), brute, atol=1e-5, rtol=1e-5)
    assert at.node_influence(A, w)[-3:].abs().max() < 1e-6, "nothing is downstream of a logit"
    keep = at.prune_by_influence(A, w, 0.8)
    ranked = brute.sort(descending=True)
    share = ranked.values.cumsum(0) / ranked.values.sum()
    first = int((share < 0.8).sum())  # the node that reaches 80 %
    assert set(ranked.indices[:first + 1].tolist()) | {n - 3, n - 2, n - 1} == set(keep.nonzero()[:, 0].tolist())


def test_pruning_keeps_tokens_logits_and_the_identity(graph):
    _, _, g = graph
    p = at.prune(g, node_threshold=0.8, edge_threshold=0.98)
    assert p.n_features < g.n_features
    assert p.keep[p.slice("token")].all() and p.keep[p.slice("logit")].all()
    assert torch.equal(p.logit_tokens, g.logit_tokens)
    assert at.edge_sum_error(p.adjacency, p.bias, p.preactivation).max() < 1e-4, "pruned features fold into errors"
    kept_rows = [g.feature_index(*f) for f in p.features.tolist()]
    assert torch.equal(p.preactivation[:p.n_features], g.preactivation[kept_rows])
    assert not p.edge_mask[~p.keep].any() and not p.edge_mask[:, ~p.keep].any()
    for score in (at.replacement_score, at.completeness_score):
        full, pruned = score(g), score(p)
        assert 0 < pruned <= full + 1e-6 < 1, (score.__name__, full, pruned)
    influence = at.node_influence(g.adjacency, g.logit_weights)[:g.n_features]
    everything = at.prune(g, 1.0, 1.0)
    assert everything.n_features >= int((influence > 1e-6 * influence.max()).sum()) > p.n_features
    with pytest.raises(ValueError, match="node_threshold"):
        at.prune(g, 1.5)


# ----------------------------------------------------------------------------- exact transcoders
def _relu_model():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=3, d_model=16, n_heads=2, d_head=8, d_mlp=24, n_ctx=8, d_vocab=11,
                                  act_fn="relu", normalization_type="LN", seed=0, device="cpu")
    return randomize_parameters(HookedTransformer(cfg), seed=3).eval()


def _exact_transcoders(model, clt: bool):
    """Transcoders that *are* the ReLU MLPs (every neuron a feature, k = d_mlp): no error at all."""
    L, d, m = model.cfg.n_layers, model.cfg.d_model, model.cfg.d_mlp
    tc = CrossLayerTranscoder(L, d, m, d, m) if clt else TranscoderSet([Transcoder(d, m, d, m, l) for l in range(L)])
    with torch.no_grad():
        for l, block in enumerate(model.blocks):
            enc = (block.ln2.w[:, None] * block.mlp.W_in, block.ln2.b @ block.mlp.W_in + block.mlp.b_in)
            if clt:
                tc.W_enc[l], tc.b_enc[l], tc.b_dec[l] = *enc, block.mlp.b_out
                tc.W_dec[l][:, 0] = block.mlp.W_out
            else:
                tc[l].W_enc.copy_(enc[0]), tc[l].b_enc.copy_(enc[1])
                tc[l].W_dec.copy_(block.mlp.W_out), tc[l].b_dec.copy_(block.mlp.b_out)
    return tc.requires_grad_(False)


@pytest.mark.parametrize("clt", [False, True])
def test_exact_transcoders_explain_everything(clt):
    model = _relu_model()
    tokens = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    g = at.attribute(model, _exact_transcoders(model, clt), tokens, at.AttributionConfig(max_logits=3))
    assert g.n_logits == 3 and at.edge_sum_error(g.adjacency, g.bias, g.preactivation).max() < 1e-4
    assert g.adjacency[:, g.slice("error")].abs().max() < 1e-4
    assert at.completeness_score(g) > 1 - 1e-4 and at.replacement_score(g) > 1 - 1e-4
    broken = _exact_transcoders(model, clt)  # one decoder off: now part of every MLP output is error
    with torch.no_grad():
        (broken.W_dec[0] if clt else broken[0].W_dec).mul_(0.5)
    g2 = at.attribute(model, broken, tokens, at.AttributionConfig(max_logits=3))
    assert at.edge_sum_error(g2.adjacency, g2.bias, g2.preactivation).max() < 1e-4
    assert at.completeness_score(g2) < 0.99 and at.replacement_score(g2) < 0.99


def test_rows_do_not_depend_on_the_batching(graph):
    model, tc, g = graph
    one_by_one = at.attribute(model, tc, PROMPT, at.AttributionConfig(batch_size=1))  # a batch of one layer-0 target too
    torch.testing.assert_close(one_by_one.adjacency, g.adjacency, atol=1e-5, rtol=1e-5)


def test_targets_and_bad_input(world):
    tc = _random_transcoders(world.cfg.n_layers, world.cfg.d_model, 64, 4)
    austin = world.to_single_token("Austin")
    g = at.attribute(world, tc, PROMPT, target=[austin])
    assert g.logit_tokens.tolist() == [austin] and g.node(g.n_nodes - 1).kind == "logit"
    assert at.attribute(world, tc, PROMPT, target="Austin").logit_tokens.tolist() == [austin]
    with pytest.raises(ValueError, match="d_model"):
        at.attribute(world, _random_transcoders(world.cfg.n_layers, 64, 32, 4), PROMPT)
    assert {n.kind for n in g.nodes()} == set(at.KINDS)
    with pytest.raises(TypeError, match="AttributionConfig"):
        at.attribute(world, tc, PROMPT, {"max_logits": 3})
    with pytest.raises(ValueError, match="one prompt"):
        at.attribute(world, tc, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="4 MLP layers"):
        at.attribute(world, tc[:2], PROMPT)
    with pytest.raises(TypeError, match="TranscoderSet"):
        at.attribute(world, list(tc), PROMPT)
    with pytest.raises(ValueError, match="token ids"):
        at.attribute(world, tc, PROMPT, target=[10**6])
    with pytest.raises(ValueError, match="'Carson City' is 2 tokens"):
        at.attribute(world, tc, PROMPT, target="Carson City")


def test_draw_runs_headless_with_ground_truth_labels(world):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_lib.circuits import graph as gr
    from course_lib.interpretation import CollectConfig

    tc = _random_transcoders(world.cfg.n_layers, world.cfg.d_model, 128, 6)
    pruned = at.prune(at.attribute(world, tc, PROMPT))
    features = [(l, f) for l, _, f in pruned.features.tolist()]
    labels = gr.label_features(world, tc, features, CollectConfig(n_docs=30))
    assert set(labels) == set(features)
    assert all(isinstance(name, str) and 0 <= f1 <= 1 for name, f1 in labels.values())
    ax = gr.draw(pruned, labels=labels, tokenizer=world.tokenizer)
    texts = [t.get_text() for t in ax.texts]
    assert "Dallas" in texts and any("Austin" in t for t in texts)
    l, f = features[0]
    assert any(t.startswith(f"L{l}/{f}\n") and " ".join(t.split()[1:]).startswith(labels[(l, f)][0][:12])
               for t in texts), "features carry their label"
    assert len(ax.collections) > 1  # edges and nodes
    plt.close(ax.figure)

    class Everything:  # an object that labels every feature
        def label(self, layer, feature):
            return f"L{layer}/{feature} token = Dallas (F1 0.99)"

    ax = gr.draw(pruned, labels=Everything())
    assert sum("token = Dallas" in " ".join(t.get_text().split()) for t in ax.texts) == pruned.n_features
    plt.close(ax.figure)
    ax = gr.draw(at.attribute(world, tc, PROMPT))  # an unpruned graph draws too
    plt.close(ax.figure)
    with pytest.raises(TypeError, match="Graph"):
        gr.draw("not a graph")


def test_matches_circuit_tracer(world, monkeypatch):
    """Our edges against circuit-tracer's (github.com/safety-research/circuit-tracer, written against commit
    d797c82) on the same model, prompt and transcoders. circuit-tracer cannot be installed with the course's
    pins (it requires transformers <= 4.57 and huggingface-hub < 1; transformer-lens 3.9 needs transformers
    >= 5.9), so this runs only where it is importable anyway (e.g. its source on PYTHONPATH, and
    huggingface_hub.constants.HF_HUB_ENABLE_HF_TRANSFER defined). Measured that way: the same features, logits
    and node order, and every edge equal to 4e-6 (edges up to 20)."""
    ct = pytest.importorskip("circuit_tracer", reason="circuit-tracer is not importable: it cannot be installed "
                             "with the course's pins (transformers <= 4.57 and huggingface-hub < 1 vs "
                             "transformer-lens 3.9's transformers >= 5.9)")
    from circuit_tracer.replacement_model import ReplacementModel
    from circuit_tracer.transcoder import SingleLayerTranscoder

    if not hasattr(ReplacementModel, "_configure_replacement_model"):
        pytest.skip("circuit-tracer's API changed since commit d797c82, which this test was written for")

    class TopK(torch.nn.Module):
        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, pre):  # our transcoders' activation: ReLU, then the k largest of each row
            acts = torch.relu(pre)
            top = acts.topk(self.k, dim=-1)
            return torch.zeros_like(acts).scatter(-1, top.indices, top.values)

    L, d = world.cfg.n_layers, world.cfg.d_model
    tset = _random_transcoders(L, d, 256, 8)
    theirs = {}
    for l, t in enumerate(tset):
        theirs[l] = SingleLayerTranscoder(d, 256, TopK(8), l)
        theirs[l].load_state_dict({n: getattr(t, n).detach().clone() for n in ("W_enc", "b_enc", "W_dec", "b_dec")})
    monkeypatch.setattr(ReplacementModel, "_deduplicate_attention_buffers", lambda self: None)  # no rotary buffers here
    replacement = ReplacementModel(world.cfg)
    replacement.load_state_dict(world.state_dict(), strict=False)
    replacement.tokenizer = world.tokenizer
    replacement._configure_replacement_model(theirs, "ln2.hook_normalized", "hook_mlp_out", scan="world")
    reference = ct.attribute(world.to_tokens(PROMPT)[0], replacement, max_n_logits=10, desired_logit_prob=0.95)
    g = at.attribute(world, tset, PROMPT)
    assert torch.equal(reference.active_features.cpu(), g.features)
    assert torch.equal(reference.logit_tokens.cpu(), g.logit_tokens)
    torch.testing.assert_close(reference.adjacency_matrix.cpu(), g.adjacency, atol=1e-4, rtol=1e-4)
