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


def build_tokenizer(pairs: datasets.Dataset) -> PreTrainedTokenizerFast:
    rng = random.Random(SEED)
    words = _pseudo_words(40_000, seed=SEED)
    synthetic = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(8_000)]
    return train_tokenizer(list(pairs["src"]) + list(pairs["tgt"]) + synthetic, vocab_size=VOCAB_SIZE)


def build_parallel_dataset(
    tokenizer: PreTrainedTokenizerFast, pairs: datasets.Dataset, rows: int = 512
) -> datasets.Dataset:
    """Pairs of joined consecutive translations (same language pair), each side over `ALIGN_MAX_LENGTH` tokens.

    Every alignment batch is then truncated to exactly `ALIGN_MAX_LENGTH` tokens: all steps
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
            if min(lengths) > ALIGN_MAX_LENGTH:
                break
        data["src"].append(" ".join(src_parts))
        data["tgt"].append(" ".join(tgt_parts))
        data["src_lang"].append("en")
        data["tgt_lang"].append(lang)
        data["alignment"].append([])
    return datasets.Dataset.from_dict(data)


def build_task_dataset(tokenizer: PreTrainedTokenizerFast, pairs: datasets.Dataset, rows: int) -> datasets.Dataset:
    """Token-classification rows padded to `TASK_SEQ`: a random tag on each word's first piece, -100 elsewhere."""
    rng = random.Random(SEED + 1)
    texts = list(pairs["src"]) + list(pairs["tgt"])
    data = {"input_ids": [], "attention_mask": [], "labels": []}
    for _ in range(rows):
        words: list[str] = []
        while len(words) < TASK_SEQ:  # join sentences so most rows fill all 32 tokens
            words += rng.choice(texts).split()
        encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=TASK_SEQ, padding="max_length")
        labels, previous = [], None
        for word_id in encoded.word_ids():
            labels.append(-100 if word_id is None or word_id == previous else rng.randrange(NUM_LABELS))
            previous = word_id
        data["input_ids"].append(encoded["input_ids"])
        data["attention_mask"].append(encoded["attention_mask"])
        data["labels"].append(labels)
    return datasets.Dataset.from_dict(data)


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int = SEED) -> XLMRobertaForTokenClassification:
    """The random XLM-R tagger; dropout left at the config default (0.1)."""
    torch.manual_seed(seed)
    config = tiny_xlmr_config(tokenizer, hidden_size=HIDDEN_SIZE, num_layers=NUM_LAYERS, num_labels=NUM_LABELS)
    return XLMRobertaForTokenClassification(config)


def parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def task_batches(dataset: datasets.Dataset, count: int) -> list[dict[str, torch.Tensor]]:
    """`count` task batches of `TASK_BATCH` rows, as the Trainer would collate them (already padded)."""
    batches = []
    for i in range(count):
        rows = [(i * TASK_BATCH + j) % len(dataset) for j in range(TASK_BATCH)]
        batches.append({key: torch.tensor(value) for key, value in dataset[rows].items()})
    return batches


def make_args(output_dir: str, conflict_every: int, max_steps: int = 10**6, **options) -> AlignmentTrainingArguments:
    """Arguments of every trainer variant: `conflict_every` and the `options` a benchmark varies differ between them."""
    return AlignmentTrainingArguments(
        output_dir=output_dir,
        use_cpu=True,
        seed=SEED,
        max_steps=max_steps,
        per_device_train_batch_size=TASK_BATCH,
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
        alignment_batch_size=ALIGN_PAIRS,
        alignment_max_length=ALIGN_MAX_LENGTH,
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
    **options,
) -> AlignmentTrainer:
    output_dir = tempfile.mkdtemp(prefix=f"xalign-bench-c{conflict_every}-")
    atexit.register(shutil.rmtree, output_dir, True)  # conflict.jsonl and summaries of the timed runs
    trainer = AlignmentTrainer(
        model=model,
        args=make_args(output_dir, conflict_every, max_steps, **options),
        train_dataset=task_dataset,
        alignment_dataset=pairs,
        processing_class=tokenizer,
        data_collator=transformers.default_data_collator,  # rows are already padded to TASK_SEQ
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
    print(
        f"model: XLMRobertaForTokenClassification, {NUM_LAYERS} layers, hidden {HIDDEN_SIZE}, vocab {embeddings.shape[0]}, "
        f"{n_params / 1e6:.2f}M parameters ({parameter_bytes(model) / 2**20:.1f} MiB fp32; word embeddings "
        f"{embeddings.numel() / n_params:.0%}), dropout {model.config.hidden_dropout_prob}"
    )
    print(
        f"batches: task {tuple(task_batch['input_ids'].shape)} (sentences, tokens); alignment "
        f"{ALIGN_PAIRS} pairs -> ({2 * ALIGN_PAIRS}, {seqs[0]}..{seqs[-1]}) rows x tokens in one forward"
    )
