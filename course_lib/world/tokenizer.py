"""The world's word-level tokenizer: one token per word or punctuation mark (a name such as
"Los Angeles" is two tokens). Built with the `tokenizers` package and wrapped as a Hugging Face
fast tokenizer, so TransformerLens's ``to_tokens`` / ``to_string`` / ``to_str_tokens`` work."""
from __future__ import annotations

from pathlib import Path

from . import grammar as g
from . import knowledge as kg

SPECIALS = ("<pad>", "<unk>", g.BOS, g.EOS)
SPLIT_PATTERN = r"\w+|[^\w\s]"


def world_words() -> list[str]:
    """Every word the grammar can write, sorted (the vocabulary, after the special tokens)."""
    words = set(g.LEXICON) | set(g.NUMBER_WORDS) | set(g.COUNTABLE) | set(g.COUNTABLE.values())
    for fillers in g.FILLERS.values():
        words |= set(fillers)
    for name in kg.entity_types():
        words |= set(name.split())
    return sorted(words)


def build_tokenizer():
    """A `tokenizers.Tokenizer` over the world's words."""
    from tokenizers import Regex, Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    vocab = {w: i for i, w in enumerate([*SPECIALS, *world_words()])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Split(Regex(SPLIT_PATTERN), "isolated")])
    tok.add_special_tokens(list(SPECIALS))
    return tok


def load_tokenizer(path: Path):
    """The saved tokenizer as a `PreTrainedTokenizerFast` (what TransformerLens expects)."""
    from transformers import PreTrainedTokenizerFast

    if not (Path(path) / "tokenizer.json").exists():
        raise FileNotFoundError(f"world tokenizer not found in {path}; rebuild with `python -m course_lib.world train`")
    return PreTrainedTokenizerFast.from_pretrained(str(path))


def save_tokenizer(path: Path):
    """Build the tokenizer, save it as a Hugging Face tokenizer folder, and return it loaded."""
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(), bos_token=g.BOS, eos_token=g.EOS,
                                 unk_token="<unk>", pad_token="<pad>")
    hf.save_pretrained(str(path))
    return load_tokenizer(path)
