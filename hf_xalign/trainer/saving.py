"""What is saved: the model with what alignment adds, the card, the push, and loading from a checkpoint."""

from __future__ import annotations

import json
import os
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from .._compat import finish_current_push, save_model_without_push
from ..adapters import adapted_model_facts, is_peft_model, task_model
from ..data.parallel import language_pair_counts
from ..files import (
    ALIGNMENT_CONFIG_NAME,
    ALIGNMENT_LOSSES_NAME,
    COMBINATION_STATE_NAME,
    MODEL_CARD_NAME,
    SKIPPED_STEPS_NAME,
)
from ..hub import push_aligned
from ..layers import num_blocks, resolve_layer
from ..model_card import build_model_card
from ..surgery import CombinationState
from ..version import __version__


class SavingMixin:
    """What [`AlignmentTrainer`] saves beside the model (loss-owned heads, `alignment_config.json`, the combining
    state, the skipped steps, the card), pushes, and loads back from a checkpoint or as the best model. Mixed into
    `AlignmentTrainer`."""

    def save_model(self, output_dir: str | None = None, **kwargs: Any) -> None:
        """Save as [`~transformers.Trainer.save_model`], then what alignment adds beside the model.

        `alignment_losses.safetensors` (the loss-owned heads), `alignment_config.json`, the combining
        rules' state and the skipped steps when they are in use, and the alignment model card; into
        checkpoints too, which Trainer saves through this method. Without alignment configured (plain
        `TrainingArguments`, no alignment data or loss), Trainer's files alone.
        """
        super().save_model(output_dir, **kwargs)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save or not self.alignment_configured:
            return
        os.makedirs(output_dir, exist_ok=True)
        loss_state = {k: v.detach().contiguous().cpu() for k, v in self.alignment_losses.state_dict().items()}
        if loss_state:
            save_file(loss_state, os.path.join(output_dir, ALIGNMENT_LOSSES_NAME), metadata={"format": "pt"})
        with open(os.path.join(output_dir, ALIGNMENT_CONFIG_NAME), "w", encoding="utf-8") as f:
            json.dump(self.alignment_config(), f, indent=2)
        if self.alignment_args.gradient_combination != "sum":
            with open(os.path.join(output_dir, COMBINATION_STATE_NAME), "w", encoding="utf-8") as f:
                json.dump(self.combination_state.to_dict(), f, indent=2)
        if self.alignment_args.skip_nonfinite_steps > 0:  # the skips left after a resume
            with open(os.path.join(output_dir, SKIPPED_STEPS_NAME), "w", encoding="utf-8") as f:
                json.dump(self.nonfinite.state_dict(), f, indent=2)
        self._write_model_card(output_dir)

    # ---- model card and Hub: the card is written from the saved files, as TRL writes its cards on save ----

    def _write_model_card(self, folder: str, model_name: str | None = None, **card_options: Any) -> None:
        repo_id = self.hub_model_id or self.args.hub_model_id
        card = build_model_card(folder, repo_id, model_name=model_name, **card_options)
        card.save(os.path.join(folder, MODEL_CARD_NAME))

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
    ) -> None:
        """Write `output_dir/README.md`: the alignment card (`hf_xalign.model_card`) instead of Trainer's generic one.

        The card's facts come from the saved files (languages, base model and datasets included);
        `license`, `tags` and `model_name` are added, the other arguments are Trainer's and unused.
        Without alignment configured, Trainer's own card.
        """
        if not self.alignment_configured:
            return super().create_model_card(
                language, license, tags, model_name, finetuned_from, tasks, dataset_tags, dataset, dataset_args
            )
        if not self.is_world_process_zero():
            return
        extra_tags = [tags] if isinstance(tags, str) else list(tags or [])
        self._write_model_card(self.args.output_dir, model_name=model_name, license=license, tags=extra_tags)

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Save the model and push `output_dir` to `args.hub_model_id` with the alignment card.

        As [`~transformers.Trainer.push_to_hub`], but what is uploaded is what `hf_xalign.hub` publishes:
        no pickles (`training_args.bin`), no checkpoints or alignment stage, and the loss-owned heads
        only with `hub_push_loss_heads`. Blocking; returns the commit URL on the main process.
        """
        if not self.alignment_configured:
            return super().push_to_hub(commit_message, blocking, token, revision, private, **kwargs)
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        token = token if token is not None else self.args.hub_token
        if self.hub_model_id is None:
            self.init_hf_repo(token=token, private=private)
        save_model_without_push(self)
        if not self.is_world_process_zero():
            return None
        finish_current_push(self)
        return push_aligned(
            self.args.output_dir,
            self.hub_model_id,
            token=token,
            revision=revision if revision is not None else self.args.hub_revision,
            commit_message=commit_message or "End of training",
            include_loss_heads=self.alignment_args.hub_push_loss_heads,
            model_name=kwargs.get("model_name"),
        )

    def alignment_config(self) -> dict[str, Any]:
        """How this model is being aligned, for `alignment_config.json` and the model card.

        The losses (options and weights), λ and its schedule, the mode (and whether the run is
        alignment-only: no task data), the layer and pooling the losses read, the parallel data
        (pairs per language pair), steps and seeds, the base model and the package version; for a
        PEFT model, under `adapter`, the wrapped model's class and labels, which the saved adapter
        does not record and [`~hf_xalign.load_aligned`] needs to rebuild it.
        """
        args = self.alignment_args
        unwrapped = self.accelerator.unwrap_model(self.model)
        model = task_model(unwrapped)
        model_config = getattr(model, "config", None)
        num_layers = num_blocks(model)
        pairs = self.alignment_stream.dataset if self.alignment_stream else None
        return {
            "hf_xalign_version": __version__,
            "base_model": getattr(model_config, "name_or_path", None) or None,
            "losses": [
                {
                    "name": loss.name,
                    "key": key,
                    "weight": weight,
                    "config": loss.get_config_dict(),
                    "citation": loss.citation,
                }
                for key, weight, loss in zip(
                    self.alignment_loss_names, self.alignment_loss_weights, self.alignment_losses
                )
            ],
            "lambda": args.alignment_lambda,
            "lambda_schedule": args.alignment_lambda_schedule,
            "mode": args.alignment_mode,
            "alignment_only": self.task_dataset is None,  # no task data: an encoder aligned for later fine-tuning
            "layer": resolve_layer(args.alignment_layer, num_layers) if num_layers else args.alignment_layer,
            "pooling": args.alignment_pooling,
            "alignment_batch_size": args.alignment_batch_size,
            "alignment_pairs": len(pairs) if pairs is not None else 0,
            "language_pairs": language_pair_counts(pairs) if pairs is not None else {},
            "steps": self.state.global_step,
            "alignment_steps": args.alignment_steps if args.alignment_mode == "sequential" else 0,
            "seed": self.args.seed,
            "alignment_seed": args.alignment_seed,
            "gradient_combination": args.gradient_combination,
            **({"adapter": adapted_model_facts(unwrapped)} if is_peft_model(unwrapped) else {}),
        }

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        state_path = os.path.join(resume_from_checkpoint, COMBINATION_STATE_NAME)
        if os.path.isfile(state_path):  # GradVac targets / adaptive EMA: an exact resume needs them
            with open(state_path, encoding="utf-8") as f:
                self.combination_state = CombinationState.from_dict(json.load(f))
        skipped_path = os.path.join(resume_from_checkpoint, SKIPPED_STEPS_NAME)
        if os.path.isfile(skipped_path):
            with open(skipped_path, encoding="utf-8") as f:
                self.nonfinite.load_state_dict(json.load(f))
        self._load_loss_parameters(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        """Load the best checkpoint's model as `Trainer` does, then the loss-owned parameters saved beside it.

        `Trainer` restores the model's weights alone. The loss-owned heads are weights of the aligned model too:
        left as they were, the last step's heads would sit beside the best step's model, and the final save would
        write that pair. The combining rules' state and the skipped steps belong to the run, as the optimizer state
        and `global_step` do, which `Trainer` also keeps from the run's end: they stay.
        """
        super()._load_best_model()
        self._load_loss_parameters(self.state.best_model_checkpoint)

    def _load_loss_parameters(self, checkpoint: str) -> None:
        """Load the loss-owned parameters from `checkpoint`'s `alignment_losses.safetensors`.

        Raises:
            `FileNotFoundError`: the losses own parameters and the checkpoint has no file for them.
        """
        path = os.path.join(checkpoint, ALIGNMENT_LOSSES_NAME)
        if os.path.isfile(path):
            self.alignment_losses.load_state_dict(load_file(path, device=str(self.args.device)))
        elif any(True for _ in self.alignment_losses.parameters()):
            raise FileNotFoundError(
                f"{path} is missing: the checkpoint has no state for the loss-owned parameters "
                f"({', '.join(self.alignment_loss_names)})."
            )
