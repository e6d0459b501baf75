"""Transcoders: sparse replacements of the world LM's MLPs.

A **per-layer transcoder** reads an MLP's input (``blocks.L.ln2.hook_normalized``, the normalised
residual stream before LayerNorm's own scale and bias) and predicts that MLP's output
(``blocks.L.hook_mlp_out``) through ``d_sae`` sparse features (TopK: the ``k`` largest ReLU
pre-activations of each position are kept, every other feature is 0; Gao et al. 2024).

A **cross-layer transcoder** (CLT, Ameisen et al. 2025) has one encoder per layer (reading that
layer's MLP input, as above), and the features of layer ``l`` write to the MLP outputs of layer
``l`` *and every later layer*: ``W_dec[l]`` has shape ``[d_sae, n_layers - l, d_model]``, slot
``j - l`` being what it writes to layer ``j``'s MLP output. The shipped CLT is TopK at the same k
per layer as the per-layer transcoders (matched L0), not JumpReLU with the tanh sparsity penalty of
the paper: a TopK CLT needs no sparsity coefficient to tune and its L0 is matched by construction.

sae-lens 6.54's inference classes (``Transcoder``, ``SkipTranscoder``, ``JumpReLUTranscoder``) have
ReLU or JumpReLU activations, none TopK, and no cross-layer decoder; the classes here are small
``torch.nn.Module``s with the same attribute names (``W_enc``, ``b_enc``, ``W_dec``, ``b_dec``) and
``encode`` / ``decode`` / ``forward`` methods. (Loading a TopK transcoder into sae-lens's ReLU
``Transcoder`` would keep every positive pre-activation: another map, so we do not.)

Shipped weights: ``data/circuits/`` (``python -m course_lib.circuits train``; checksummed, with a card).
"""
from __future__ import annotations

import torch
from torch import nn

from ..artifacts import read_json, verify
from ..paths import DATA_DIR

CIRCUITS_DIR = DATA_DIR / "circuits"
REBUILD = "python -m course_lib.circuits train"
TRANSCODERS_FILE, CLT_FILE, METRICS_FILE, CARD_FILE = "transcoders.safetensors", "clt.safetensors", "metrics.json", \
    "README.md"


def input_hook(layer: int) -> str:
    """Where a layer's transcoder reads: the MLP input, ``blocks.{layer}.ln2.hook_normalized``."""
    return f"blocks.{int(layer)}.ln2.hook_normalized"


def output_hook(layer: int) -> str:
    """What a layer's transcoder predicts: the MLP output, ``blocks.{layer}.hook_mlp_out``."""
    from transformer_lens.utilities import get_act_name

    return get_act_name("mlp_out", int(layer))


def transcoder_forward(x, W_enc, b_enc, W_dec, b_dec, k):
    """A TopK transcoder: ``acts`` = ReLU(x @ W_enc + b_enc) with only the ``k`` largest of each row
    kept (the others 0), ``out`` = acts @ W_dec + b_dec. ``x``: [..., d_in]; returns ``(acts, out)``,
    [..., d_sae] and [..., d_out]."""
    acts = torch.relu(x @ W_enc + b_enc)
    top = acts.topk(k, dim=-1)
    acts = torch.zeros_like(acts).scatter(-1, top.indices, top.values)
    return acts, acts @ W_dec + b_dec


def clt_decode(acts_by_layer, W_dec, b_dec):
    """The cross-layer transcoder's output for every MLP layer ``j``: ``b_dec[j]`` plus, for every
    layer ``l <= j``, ``acts_by_layer[l] @ W_dec[l][:, j - l, :]``. ``acts_by_layer``: one
    [..., d_sae] tensor per layer; ``W_dec[l]``: [d_sae, n_layers - l, d_model]; ``b_dec``:
    [n_layers, d_model]. Returns [n_layers, ..., d_model]."""
    n_layers = len(W_dec)
    outs = []
    for j in range(n_layers):
        out = b_dec[j]
        for l in range(j + 1):
            out = out + acts_by_layer[l] @ W_dec[l][:, j - l, :]
        outs.append(out)
    return torch.stack(outs)


def _check_input(x, d_in: int, what: str):
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[-1] != d_in:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} expects a tensor [..., {d_in}] (the MLP input, blocks.L.ln2.hook_normalized), "
                         f"got {shape}")


class Transcoder(nn.Module):
    """A per-layer TopK transcoder for the MLP of block ``layer`` (see the module docstring)."""

    def __init__(self, d_in: int, d_sae: int, d_out: int, k: int, layer: int):
        super().__init__()
        if not 1 <= int(k) <= int(d_sae):
            raise ValueError(f"k must be in 1..d_sae={d_sae}, got {k!r}")
        self.k, self.layer = int(k), int(layer)
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.zeros(d_sae, d_out))
        self.b_dec = nn.Parameter(torch.zeros(d_out))

    @property
    def d_sae(self) -> int:
        return self.W_enc.shape[1]

    @property
    def input_hook(self) -> str:
        return input_hook(self.layer)

    @property
    def output_hook(self) -> str:
        return output_hook(self.layer)

    def forward(self, x):
        """``(acts, out)`` for MLP inputs ``x`` [..., d_in]."""
        _check_input(x, self.W_enc.shape[0], "Transcoder")
        return transcoder_forward(x, self.W_enc, self.b_enc, self.W_dec, self.b_dec, self.k)

    def encode(self, x):
        return self.forward(x)[0]

    def decode(self, acts):
        return acts @ self.W_dec + self.b_dec


class TranscoderSet(nn.ModuleList):
    """The per-layer transcoders of every MLP layer, in layer order (``tset[l]`` is layer ``l``'s)."""

    def __init__(self, transcoders):
        super().__init__(transcoders)
        for l, tc in enumerate(self):
            if not isinstance(tc, Transcoder) or tc.layer != l:
                raise ValueError(f"entry {l} must be the Transcoder of layer {l}, got {tc!r}")

    @property
    def n_layers(self) -> int:
        return len(self)

    @property
    def k(self) -> int:
        return self[0].k

    @property
    def d_sae(self) -> int:
        return self[0].d_sae

    def encode_layer(self, x, layer: int):
        """Layer ``layer``'s features from its MLP input ``x`` [..., d_in] (as :class:`CrossLayerTranscoder`)."""
        return self[layer].encode(x)

    def decode_layer(self, acts_by_layer, j: int):
        """Layer ``j``'s predicted MLP output (from ``acts_by_layer[j]`` alone: per-layer features write
        to their own layer only; the same signature as :meth:`CrossLayerTranscoder.decode_layer`)."""
        return self[j].decode(acts_by_layer[j])

    def encode(self, xs):
        """Features of every layer from the MLP inputs of every layer (one [..., d_in] tensor each)."""
        return [tc.encode(x) for tc, x in zip(self, xs, strict=True)]

    def decode(self, acts_by_layer):
        """[n_layers, ..., d_model]: each layer's predicted MLP output."""
        return torch.stack([tc.decode(a) for tc, a in zip(self, acts_by_layer, strict=True)])


class CrossLayerTranscoder(nn.Module):
    """A TopK cross-layer transcoder: per-layer encoders ``W_enc`` [n_layers, d_in, d_sae], ``b_enc``
    [n_layers, d_sae]; decoders ``W_dec`` (a list: ``W_dec[l]`` [d_sae, n_layers - l, d_model]);
    ``b_dec`` [n_layers, d_model]; ``k`` features per layer and position."""

    def __init__(self, n_layers: int, d_in: int, d_sae: int, d_out: int, k: int):
        super().__init__()
        if not 1 <= int(k) <= int(d_sae):
            raise ValueError(f"k must be in 1..d_sae={d_sae}, got {k!r}")
        self.k = int(k)
        self.W_enc = nn.Parameter(torch.zeros(n_layers, d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(n_layers, d_sae))
        self.W_dec = nn.ParameterList([nn.Parameter(torch.zeros(d_sae, n_layers - l, d_out)) for l in range(n_layers)])
        self.b_dec = nn.Parameter(torch.zeros(n_layers, d_out))

    @property
    def n_layers(self) -> int:
        return self.W_enc.shape[0]

    @property
    def d_sae(self) -> int:
        return self.W_enc.shape[2]

    def encode_layer(self, x, layer: int):
        """Layer ``layer``'s features from its MLP input ``x`` [..., d_in] (TopK)."""
        _check_input(x, self.W_enc.shape[1], "CrossLayerTranscoder")
        acts = torch.relu(x @ self.W_enc[layer] + self.b_enc[layer])
        top = acts.topk(self.k, dim=-1)
        return torch.zeros_like(acts).scatter(-1, top.indices, top.values)

    def encode(self, xs):
        """Features of every layer from the MLP inputs of every layer (one [..., d_in] tensor each)."""
        if len(xs) != self.n_layers:
            raise ValueError(f"expected the MLP inputs of all {self.n_layers} layers, got {len(xs)}")
        return [self.encode_layer(x, l) for l, x in enumerate(xs)]

    def decode(self, acts_by_layer):
        """[n_layers, ..., d_model]: each layer's predicted MLP output (:func:`clt_decode`)."""
        return clt_decode(acts_by_layer, list(self.W_dec), self.b_dec)

    def decode_layer(self, acts_by_layer, j: int):
        """Layer ``j``'s predicted MLP output from the features of layers ``0..j`` (``acts_by_layer[:j + 1]``)."""
        out = self.b_dec[j]
        for l in range(j + 1):
            out = out + acts_by_layer[l] @ self.W_dec[l][:, j - l, :]
        return out

    def forward(self, xs):
        """``(acts_by_layer, out)`` for the MLP inputs of every layer."""
        acts = self.encode(xs)
        return acts, self.decode(acts)

    def decoder_norms(self):
        """[n_layers, d_sae]: the norm of each feature's decoder, concatenated over the layers it writes to."""
        return torch.stack([w.flatten(1).norm(dim=1) for w in self.W_dec])


def check_transcoders(transcoders) -> None:
    """A ``TypeError`` unless ``transcoders`` is a :class:`TranscoderSet` or a :class:`CrossLayerTranscoder`."""
    if not isinstance(transcoders, (TranscoderSet, CrossLayerTranscoder)):
        raise TypeError("transcoders must be a TranscoderSet (load_transcoders()) or a CrossLayerTranscoder "
                        f"(load_clt()), got {type(transcoders).__name__}")


def _load_file(root, name: str) -> dict:
    from pathlib import Path

    from safetensors.torch import load_file

    root = Path(root)
    verify(root, REBUILD, "transcoders")
    return load_file(root / name), read_json(root / METRICS_FILE, REBUILD)


def shipped_metrics(root=CIRCUITS_DIR) -> dict:
    """The figures measured by the training script (``metrics.json``: config, per seed and kind)."""
    from pathlib import Path

    verify(root, REBUILD, "transcoders")
    return read_json(Path(root) / METRICS_FILE, REBUILD)


def load_transcoders(root=CIRCUITS_DIR, device="cpu") -> TranscoderSet:
    """The shipped per-layer transcoders (checksummed; fp32 on ``device``)."""
    tensors, metrics = _load_file(root, TRANSCODERS_FILE)
    cfg = metrics["per_layer"]["config"]
    out = []
    for l in range(cfg["n_layers"]):
        tc = Transcoder(cfg["d_model"], cfg["d_sae"], cfg["d_model"], cfg["k"], l)
        tc.load_state_dict({n: tensors[f"{l}.{n}"].float() for n in ("W_enc", "b_enc", "W_dec", "b_dec")})
        out.append(tc)
    return TranscoderSet(out).to(device).eval().requires_grad_(False)


def load_clt(root=CIRCUITS_DIR, device="cpu") -> CrossLayerTranscoder:
    """The shipped cross-layer transcoder (checksummed; fp32 on ``device``)."""
    tensors, metrics = _load_file(root, CLT_FILE)
    cfg = metrics["clt"]["config"]
    clt = CrossLayerTranscoder(cfg["n_layers"], cfg["d_model"], cfg["d_sae"], cfg["d_model"], cfg["k"])
    clt.load_state_dict({n: t.float() for n, t in tensors.items()})
    return clt.to(device).eval().requires_grad_(False)
