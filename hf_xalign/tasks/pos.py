"""POS tagging on Universal Dependencies as a zero-shot task: treebanks per language, a fresh tagger per cell."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from ..args import AlignmentTrainingArguments
from ..data.conllu import GOOGLE_UNIVERSAL_TAG_MAP, UPOS_TAGS, read_treebank, tokenize_and_align_labels
from ..experiment.config import parse_language_paths
from ..experiment.task import ZeroShotArguments, ZeroShotTask

TAG_MAPS = {"none": None, "google_universal": GOOGLE_UNIVERSAL_TAG_MAP}


@dataclass(kw_only=True)
class PosArguments(ZeroShotArguments):
    """The experiment: model, treebanks, parallel text."""

    train_treebank: list[str] = field(
        metadata={"help": "Source-language CoNLL-U file(s), folder(s), glob(s), or hub:PATH[:CONFIG]:SPLIT."}
    )
    eval_treebanks: list[str] = field(metadata={"help": "LANG=PATH per evaluation language (source included)."})
    tag_map: str = field(default="none", metadata={"help": f"Tag renaming: {', '.join(TAG_MAPS)}."})
    max_length: int = field(default=128, metadata={"help": "Max tokens per sentence."})
    label_all_subtokens: bool = field(default=False, metadata={"help": "Label every sub-token, not only the first."})

    def __post_init__(self) -> None:
        if self.tag_map not in TAG_MAPS:
            raise ValueError(f"tag_map must be one of {', '.join(TAG_MAPS)}, got {self.tag_map!r}.")
        self.eval_languages = parse_language_paths(self.eval_treebanks, "eval_treebanks")


class PosTask(ZeroShotTask):
    """Treebanks and parallel text, read once; a fresh tagger for each cell."""

    name, metric_module, collator_class = "pos", "token_accuracy", DataCollatorForTokenClassification
    recipe = "recipes/pos.py"

    def __init__(self, script_args: PosArguments, training_args: AlignmentTrainingArguments) -> None:
        super().__init__(script_args, training_args)
        tag_map = TAG_MAPS[script_args.tag_map]
        treebanks = {
            language: read_treebank(path, language=language, tag_map=tag_map)
            for language, path in script_args.eval_languages.items()
        }
        source = read_treebank(script_args.train_treebank, language=script_args.source_language, tag_map=tag_map)
        self.train_dataset = self.tokenized(source)
        self.eval_datasets = {language: self.tokenized(treebank) for language, treebank in treebanks.items()}
        self.details["train_sources"] = list(script_args.train_treebank)
        self.details["train_sentences"] = len(self.train_dataset)
        self.details["eval_sentences"] = {language: len(data) for language, data in self.eval_datasets.items()}
        # Zero-shot test sentences must not be aligned: drop the pairs that contain a target-language
        # test sentence. (Source-language test text is not zero-shot; dropping it would also drop its
        # translations into every other language, which share the English side.)
        targets = [t for language, t in treebanks.items() if language != script_args.source_language]
        self.load_alignment_data(" ".join(words) for treebank in targets for words in treebank["words"])

    def tokenized(self, treebank):
        args = self.script_args
        encoded = tokenize_and_align_labels(treebank, self.tokenizer, args.max_length, args.label_all_subtokens)
        return encoded.remove_columns(["words", "upos", "lang", "sent_id"])

    def build_model(self):
        return AutoModelForTokenClassification.from_pretrained(
            self.script_args.model_name_or_path,
            num_labels=len(UPOS_TAGS),
            id2label=dict(enumerate(UPOS_TAGS)),
            label2id={tag: i for i, tag in enumerate(UPOS_TAGS)},
        )
