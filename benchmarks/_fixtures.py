"""The model, the data and the trainers of the training-step benchmarks, built offline with fixed shapes.

The model is a randomly initialised XLM-R token tagger (6 layers, hidden 384, ~13.5M parameters
with a 16k vocabulary) built from a config with a tokenizer trained here on the Django UI strings
that ship with the repository plus synthetic pseudo-words (the real text alone gives only ~6k
pieces). Shapes are fixed so that every variant does the same arithmetic at every step: task
batches are 16 sentences of 32 tokens; alignment batches are 16 translation pairs (32 rows of 32
tokens in one forward), each pair a run of consecutive Django translations joined until both
sides exceed 32 tokens.
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
from dataclasses import dataclass

import _environment  # noqa: F401  (first: it switches the Hugging Face libraries offline)
import datasets
import torch
import transformers
from _environment import REPO, SEED
from transformers import PreTrainedTokenizerFast, XLMRobertaForTokenClassification

from hf_xalign import AlignmentTrainer, AlignmentTrainingArguments
from hf_xalign.data import load_parallel
from hf_xalign.tiny import tiny_xlmr_config, train_tokenizer

PARALLEL_DIR = REPO / "recipes" / "data" / "django" / "parallel"

HIDDEN_SIZE = 384
NUM_LAYERS = 6
VOCAB_SIZE = 16_000
NUM_LABELS = 17  # UPOS tags
TASK_BATCH = 16  # sentences per task batch
TASK_SEQ = 32  # tokens per task sentence (padded)
ALIGN_PAIRS = 16  # translation pairs per alignment batch (32 rows in the forward)
ALIGN_MAX_LENGTH = 32  # tokens per parallel sentence
LEARNING_RATE = 1e-4
TEMPERATURE = 0.05


@dataclass(frozen=True)
class Shape:
    """The model and batch sizes of a run (`--shape`); the tokenizer is the one trained here whatever the shape."""

    hidden_size: int
    num_layers: int
    task_batch: int  # sentences per task batch
    task_seq: int  # tokens per task sentence (padded)
    align_pairs: int  # translation pairs per alignment batch (twice as many rows in the forward)
    align_max_length: int  # tokens per parallel sentence
    model_vocab: int | None = None  # the embedding matrix's rows; None: the tokenizer's vocabulary
    tokenizer_vocab: int = VOCAB_SIZE

    def config_overrides(self) -> dict[str, int]:
        """`tiny_xlmr_config` options beyond width and depth: XLM-R base's heads and feed-forward width at base."""
        if self.model_vocab is None:
            return {}
        return dict(vocab_size=self.model_vocab, num_attention_heads=12, intermediate_size=4 * self.hidden_size)


SHAPES = {
    # the CPU benchmarks' shape: every measured table in docs/benchmarks.md
    "default": Shape(HIDDEN_SIZE, NUM_LAYERS, TASK_BATCH, TASK_SEQ, ALIGN_PAIRS, ALIGN_MAX_LENGTH),
    # xlm-roberta-base from a config, nothing downloaded: 12 layers, hidden 768, 250002 embeddings (278M
    # parameters); task 32 x 128 tokens, 32 pairs (64 rows) of up to 128 tokens
    "base": Shape(768, 12, 32, 128, 32, 128, model_vocab=250_002),
    # a few seconds a step on a loaded CPU: what `gpu_check.py --dry-run` runs
    "tiny": Shape(32, 2, 4, 16, 4, 16, tokenizer_vocab=2_000),
}
DEFAULT_SHAPE = SHAPES["default"]


def _pseudo_words(count: int, seed: int) -> list[str]:
    """Made-up words from a syllable inventory: enough distinct strings for a 16k-piece vocabulary."""
    rng = random.Random(seed)
    onsets = ["", "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "tr", "kl"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ei"]
    codas = ["", "", "n", "r", "s", "l", "k", "m"]
    words = set()
    while len(words) < count:
        syllables = rng.randint(1, 4)
        words.add("".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables)))
    return sorted(words)


def load_pairs() -> datasets.Dataset:
    """The parallel Django UI strings (English to seven languages), ~2.3k pairs."""
    return load_parallel(sorted(PARALLEL_DIR.glob("en-*.tsv")))


def build_tokenizer(pairs: datasets.Dataset, vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    rng = random.Random(SEED)
    words = _pseudo_words(40_000 * vocab_size // VOCAB_SIZE, seed=SEED)
    synthetic = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(8_000 * vocab_size // VOCAB_SIZE)]
    return train_tokenizer(list(pairs["src"]) + list(pairs["tgt"]) + synthetic, vocab_size=vocab_size)


def build_parallel_dataset(
    tokenizer: PreTrainedTokenizerFast, pairs: datasets.Dataset, rows: int = 512, max_length: int = ALIGN_MAX_LENGTH
) -> datasets.Dataset:
    """Pairs of joined consecutive translations (same language pair), each side over `max_length` tokens.

    Every alignment batch is then truncated to exactly `max_length` tokens: all steps
    and all variants run the same shapes.
    """
    by_language: dict[str, list[tuple[str, str]]] = {}
    for src, tgt, lang in zip(pairs["src"], pairs["tgt"], pairs["tgt_lang"]):
        by_language.setdefault(lang, []).append((src, tgt))
    rng = random.Random(SEED + 2)
    languages = sorted(by_language)
    data: dict[str, list] = {"src": [], "tgt": [], "src_lang": [], "tgt_lang": [], "alignment": []}
    while len(data["src"]) < rows:
        lang = languages[len(data["src"]) % len(languages)]
        candidates = by_language[lang]
        start = rng.randrange(len(candidates))
        src_parts: list[str] = []
        tgt_parts: list[str] = []
        for offset in range(len(candidates)):
            src, tgt = candidates[(start + offset) % len(candidates)]
            src_parts.append(src)
            tgt_parts.append(tgt)
            lengths = [
                len(tokenizer(" ".join(parts).split(), is_split_into_words=True)["input_ids"])
                for parts in (src_parts, tgt_parts)
            ]
            if min(lengths) > max_length:
                break
        data["src"].append(" ".join(src_parts))
        data["tgt"].append(" ".join(tgt_parts))
        data["src_lang"].append("en")
        data["tgt_lang"].append(lang)
        data["alignment"].append([])
    return datasets.Dataset.from_dict(data)


def build_task_dataset(
    tokenizer: PreTrainedTokenizerFast, pairs: datasets.Dataset, rows: int, seq: int = TASK_SEQ
) -> datasets.Dataset:
    """Token-classification rows padded to `seq` tokens: a random tag on each word's first piece, -100 elsewhere."""
    rng = random.Random(SEED + 1)
    texts = list(pairs["src"]) + list(pairs["tgt"])
    data = {"input_ids": [], "attention_mask": [], "labels": []}
    for _ in range(rows):
        words: list[str] = []
        while len(words) < seq:  # join sentences so most rows fill all `seq` tokens
            words += rng.choice(texts).split()
        encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=seq, padding="max_length")
        labels, previous = [], None
        for word_id in encoded.word_ids():
            labels.append(-100 if word_id is None or word_id == previous else rng.randrange(NUM_LABELS))
            previous = word_id
        data["input_ids"].append(encoded["input_ids"])
        data["attention_mask"].append(encoded["attention_mask"])
        data["labels"].append(labels)
    return datasets.Dataset.from_dict(data)


def build_model(
    tokenizer: PreTrainedTokenizerFast, seed: int = SEED, shape: Shape = DEFAULT_SHAPE
) -> XLMRobertaForTokenClassification:
    """The random XLM-R tagger; dropout left at the config default (0.1)."""
    torch.manual_seed(seed)
    config = tiny_xlmr_config(
        tokenizer,
        hidden_size=shape.hidden_size,
        num_layers=shape.num_layers,
        num_labels=NUM_LABELS,
        **shape.config_overrides(),
    )
    return XLMRobertaForTokenClassification(config)


def parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def task_batches(dataset: datasets.Dataset, count: int, size: int = TASK_BATCH) -> list[dict[str, torch.Tensor]]:
    """`count` task batches of `size` rows, as the Trainer would collate them (already padded)."""
    batches = []
    for i in range(count):
        rows = [(i * size + j) % len(dataset) for j in range(size)]
        batches.append({key: torch.tensor(value) for key, value in dataset[rows].items()})
    return batches


def make_args(
    output_dir: str,
    conflict_every: int,
    max_steps: int = 10**6,
    shape: Shape = DEFAULT_SHAPE,
    device: str = "cpu",
    **options,
) -> AlignmentTrainingArguments:
    """Arguments of every trainer variant: `conflict_every` and the `options` a benchmark varies differ between them.

    `device` "cpu" sets `use_cpu`; any other lets the Trainer take the accelerator (`--device cuda`).
    """
    return AlignmentTrainingArguments(
        output_dir=output_dir,
        use_cpu=device == "cpu",
        seed=SEED,
        max_steps=max_steps,
        per_device_train_batch_size=shape.task_batch,
        learning_rate=LEARNING_RATE,
        weight_decay=0.0,
        max_grad_norm=0.0,  # no clipping (the hand loops do not clip either)
        lr_scheduler_type="constant",
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        alignment_loss=["contrastive"],
        alignment_temperature=TEMPERATURE,
        alignment_lambda=1.0,
        alignment_batch_size=shape.align_pairs,
        alignment_max_length=shape.align_max_length,
        conflict_every=conflict_every,
        **options,
    )


def make_trainer(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerFast,
    task_dataset: datasets.Dataset,
    pairs: datasets.Dataset,
    conflict_every: int,
    max_steps: int = 10**6,
    shape: Shape = DEFAULT_SHAPE,
    device: str = "cpu",
    **options,
) -> AlignmentTrainer:
    output_dir = tempfile.mkdtemp(prefix=f"xalign-bench-c{conflict_every}-")
    atexit.register(shutil.rmtree, output_dir, True)  # conflict.jsonl and summaries of the timed runs
    trainer = AlignmentTrainer(
        model=model,
        args=make_args(output_dir, conflict_every, max_steps, shape, device, **options),
        train_dataset=task_dataset,
        alignment_dataset=pairs,
        processing_class=tokenizer,
        data_collator=transformers.default_data_collator,  # rows are already padded to the task length
    )
    trainer.remove_callback(transformers.PrinterCallback)  # it would print train_runtime after every timed chunk
    return trainer


def alignment_batches(trainer: AlignmentTrainer, count: int) -> list[dict[str, torch.Tensor]]:
    """The alignment batches the trainer uses at steps 0..count-1, collated in advance."""
    return [trainer.alignment_stream.batch(step, 0) for step in range(count)]


def print_setup(
    model: torch.nn.Module, task_batch: dict[str, torch.Tensor], align_batches: list[dict[str, torch.Tensor]]
) -> None:
    """The model's size and the batch shapes, for the header of a run."""
    n_params = sum(p.numel() for p in model.parameters())
    embeddings = model.get_input_embeddings().weight
    seqs = sorted({b["input_ids"].shape[1] for b in align_batches})
    config = model.config
    print(
        f"model: XLMRobertaForTokenClassification, {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
        f"vocab {embeddings.shape[0]}, "
        f"{n_params / 1e6:.2f}M parameters ({parameter_bytes(model) / 2**20:.1f} MiB fp32; word embeddings "
        f"{embeddings.numel() / n_params:.0%}), dropout {model.config.hidden_dropout_prob}"
    )
    print(
        f"batches: task {tuple(task_batch['input_ids'].shape)} (sentences, tokens); alignment "
        f"{len(align_batches[0]['input_ids']) // 2} pairs -> ({len(align_batches[0]['input_ids'])}, "
        f"{seqs[0]}..{seqs[-1]}) rows x tokens in one forward"
    )
