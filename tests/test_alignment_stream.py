"""Specification of the tokenize-once collation and the prefetching `AlignmentStream`.

The oracles are the paths they replace: the collator tokenizing raw rows as one padded batch
(the tokenizer called on the batch), and a synchronous stream over the raw dataset.
"""

from __future__ import annotations

import copy
import threading
import time
import traceback

import datasets
import pytest
import torch
from _corpus import corpus_tokenizer, english_spanish_rows
from conftest import make_model
from test_trainer import _params, make_args, make_trainer
from transformers import TrainerCallback

from hf_xalign.data import AlignmentStream, ParallelCollator

ALL_VIEWS = {"word_ids", "mlm", "tlm"}


def assert_same_batch(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert got[key].dtype == value.dtype, key
            assert torch.equal(got[key], value), key
        else:
            assert got[key] == value, key


@pytest.fixture(scope="module")
def corpus_pairs():
    return datasets.Dataset.from_list(english_spanish_rows(8))


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("max_length", [128, 6])  # 6 cuts most sentences, and the TLM pairs at 12
def test_pre_tokenized_rows_collate_to_the_batch_the_tokenizer_gives(corpus_pairs, padding_side, max_length):
    tokenizer = copy.deepcopy(corpus_tokenizer())
    tokenizer.padding_side = padding_side
    collator = ParallelCollator(tokenizer, max_length=max_length, views=ALL_VIEWS, mlm_probability=0.3)
    encoded = collator.encode_dataset(corpus_pairs)

    for indices in ([0, 1, 2], [7, 3, 5, 4], [6]):
        got = collator([encoded[i] for i in indices], generator=torch.Generator().manual_seed(11))
        expected = collator([corpus_pairs[i] for i in indices], generator=torch.Generator().manual_seed(11))
        assert_same_batch(got, expected)
    if max_length == 6:  # the cases named in the parametrization really occur
        assert got["input_ids"].shape[1] == 6 and got["tlm_input_ids"].shape[1] <= 12
        assert (got["word_ids"] == -1).any()


def test_pre_tokenized_rows_without_a_view_s_columns_are_refused(corpus_pairs):
    tokenizer = corpus_tokenizer()
    encoded = ParallelCollator(tokenizer).encode_dataset(corpus_pairs)
    with pytest.raises(ValueError, match=r"lack the columns \['src_word_ids', 'tgt_word_ids'\]"):
        ParallelCollator(tokenizer, views={"word_ids"})([encoded[0]])


# --------------------------------------------------------------------------- the prefetching stream


def make_stream(dataset, collate, rank, prefetch, world_size=2):
    return AlignmentStream(
        dataset,
        collate,
        batch_size=3,
        seed=5,
        accumulation_steps=2,
        rank=rank,
        world_size=world_size,
        prefetch=prefetch,
    )


@pytest.fixture(scope="module")
def collator(tokenizer):
    return ParallelCollator(tokenizer, max_length=8, views=ALL_VIEWS, mlm_probability=0.3)


@pytest.fixture(scope="module")
def encoded_pairs(collator, parallel_dataset):
    return collator.encode_dataset(parallel_dataset)


@pytest.mark.parametrize("rank", [0, 1])
def test_prefetched_batches_equal_the_synchronous_stream_over_raw_rows(collator, parallel_dataset, encoded_pairs, rank):
    collated_on = []

    def recording_collate(rows, generator):
        collated_on.append(threading.current_thread().name)
        return collator(rows, generator=generator)

    synchronous = make_stream(parallel_dataset, collator, rank, prefetch=False)
    prefetched = make_stream(encoded_pairs, recording_collate, rank, prefetch=True)
    # 64 pairs / 3 = 21 batches per epoch; 6 steps x 2 micro-steps x 2 ranks cross an epoch boundary
    for step in range(6):
        for micro_step in range(2):
            assert_same_batch(prefetched.batch(step, micro_step), synchronous.batch(step, micro_step))
    prefetched.close()
    # the first batch was collated by the caller, every later one ahead of time by the worker
    assert collated_on[0] == threading.current_thread().name and len(collated_on) >= 12
    assert all(name.startswith("alignment-prefetch") for name in collated_on[1:])


def test_a_resumed_or_skipping_stream_gives_the_same_batches(collator, parallel_dataset, encoded_pairs):
    synchronous = make_stream(parallel_dataset, collator, rank=1, prefetch=False)
    resumed = make_stream(encoded_pairs, collator, rank=1, prefetch=True)
    # starts at step 3, then jumps (no prefetched batch matches), goes back, repeats a position
    for step, micro_step in [(3, 0), (3, 1), (4, 0), (9, 1), (2, 0), (2, 0), (2, 1)]:
        assert_same_batch(resumed.batch(step, micro_step), synchronous.batch(step, micro_step))
    resumed.close()


def test_a_worker_error_surfaces_in_the_caller_with_the_worker_traceback(parallel_dataset):
    calls = []

    def collate_failing_from_the_second_call(rows, generator):
        calls.append(threading.current_thread().name)
        if len(calls) > 1:
            raise ValueError("cannot collate these rows")
        return {"rows": rows}

    stream = make_stream(parallel_dataset, collate_failing_from_the_second_call, 0, prefetch=True, world_size=1)
    stream.batch(0, 0)  # collated here; (0, 1) goes to the worker, which raises
    with pytest.raises(ValueError, match="cannot collate these rows") as raised:
        stream.batch(0, 1)
    stream.close()
    assert calls[1].startswith("alignment-prefetch")
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert frames[-1] == "collate_failing_from_the_second_call" and "batch_at" in frames


def test_close_stops_the_worker_thread(parallel_dataset):
    workers = set()

    def collate(rows, generator):
        workers.add(threading.current_thread())
        return {}

    stream = make_stream(parallel_dataset, collate, 0, prefetch=True, world_size=1)
    stream.batch(0, 0)
    stream.batch(0, 1)  # waits for the worker's batch: the worker thread has run
    workers.discard(threading.current_thread())
    assert len(workers) == 1 and next(iter(workers)).is_alive()
    stream.close()
    assert not next(iter(workers)).is_alive()


def test_waited_seconds_count_only_what_the_worker_did_not_hide(parallel_dataset):
    def slow_collate(rows, generator):
        time.sleep(0.1)
        return {}

    waited = {}
    for prefetch in (False, True):
        stream = make_stream(parallel_dataset, slow_collate, 0, prefetch=prefetch, world_size=1)
        for step in range(4):
            for micro_step in range(2):
                stream.batch(step, micro_step)
                time.sleep(0.2)  # the micro-step's training; the worker collates meanwhile
        stream.close()
        waited[prefetch] = stream.waited_seconds
    assert waited[False] >= 8 * 0.1
    assert waited[True] < 0.1 + 0.15  # the first batch; the 7 others were ready when asked for


# --------------------------------------------------------------------------- the trainer


class PrefetchThreads(TrainerCallback):
    """The prefetch threads alive at each step end."""

    def __init__(self):
        self.seen = set()

    def on_step_end(self, args, state, control, **kwargs):
        self.seen |= {t for t in threading.enumerate() if t.name.startswith("alignment-prefetch")}


def test_training_with_prefetch_equals_training_without(
    tmp_path, tokenizer, task_dataset, parallel_dataset, task_collator
):
    results = {}
    for prefetch in (False, True):
        args = make_args(
            tmp_path / str(prefetch),
            max_steps=3,
            gradient_accumulation_steps=2,
            alignment_loss=["contrastive", "token", "mlm", "tlm"],
            alignment_prefetch=prefetch,
            alignment_max_length=8,
        )
        threads = PrefetchThreads()
        trainer = make_trainer(
            tokenizer,
            task_dataset,
            parallel_dataset,
            task_collator,
            args,
            model=make_model(tokenizer),
            callbacks=[threads],
        )
        trainer.train()
        results[prefetch] = (trainer, threads.seen)
    (plain, no_threads), (prefetching, threads) = results[False], results[True]
    assert not no_threads and threads and not any(t.is_alive() for t in threads)
    assert prefetching.alignment_stream.waited_seconds > 0
    losses = [[h["loss"] for h in t.state.log_history if "loss" in h] for t in (plain, prefetching)]
    assert len(losses[0]) == 3 and losses[0] == pytest.approx(losses[1], abs=1e-6)
    expected, got = _params(plain), _params(prefetching)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=0, msg=name)
