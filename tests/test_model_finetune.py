"""Episodic fine-tuning: determinism, learning, selection on validation only, edge cases of the pool."""

import numpy as np
import pytest
import torch

from causalmixft.metrics import classification_metrics
from causalmixft.model.backbone import predict_proba
from causalmixft.model.ensemble import Ensemble
from causalmixft.model.finetune import (
    EpisodeSampler,
    FinetuneConfig,
    FinetuneData,
    finetune,
    lr_factor,
    permute_classes,
    sample_episode,
    split_episode,
)
from causalmixft.model.interface import BuiltinBackbone
from model_helpers import tiny_model, toy_table

# A randomly initialised tiny model learns a fixed class mapping quickly; with permuted class ids
# it would first have to learn in-context learning, so the learning tests keep ids fixed.
FAST = FinetuneConfig(steps=30, lr=3e-3, warmup_steps=5, eval_every=10, patience=0, batch_rows=96, device="cpu",
                      permute_classes=False, lr_schedule="constant")


@pytest.fixture(scope="module")
def task():
    x, y = toy_table(400, n_features=5, seed=0)
    return {"pool": (x[:200], y[:200]), "context": (x[:64], y[:64]), "val": (x[200:300], y[200:300]),
            "test": (x[300:], y[300:])}


def run(model, task, cfg=FAST, seed=0, test=None, n_classes=2):
    test_x, test_y = test if test is not None else task["test"]
    data = FinetuneData(task["pool"], task["context"], task["val"], n_classes, test=(test_x, test_y))
    return finetune(model, data, cfg, seed)


def test_two_runs_with_one_seed_are_identical_and_seeds_matter(task):
    first, second = run(tiny_model(), task, seed=7), run(tiny_model(), task, seed=7)
    assert first.curve == second.curve
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    other = run(tiny_model(), task, seed=8)
    assert other.curve[1:] != first.curve[1:]


def test_finetuning_a_learnable_task_raises_validation_accuracy(task):
    result = run(tiny_model(), task, FinetuneConfig(**{**FAST.__dict__, "steps": 60}))
    start, best = result.curve[0]["val"]["accuracy"], result.selected["val"]["accuracy"]
    assert best > start + 0.1, (start, best)
    assert result.selected_step > 0 and result.steps_run == 60
    assert result.curve[0]["train_loss"] is None and all(p["train_loss"] > 0 for p in result.curve[1:])
    assert result.steps_per_second > 0 and result.device == "cpu"
    # The returned model carries the selected weights: re-evaluating reproduces the curve point.
    proba = predict_proba(result.model, *task["context"], task["val"][0], 2)
    assert np.isclose((proba.argmax(1) == task["val"][1]).mean(), best)


def test_caller_model_is_left_untouched(task):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = run(model, task)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert result.model is not model


def test_selection_never_looks_at_test(task):
    """Two runs that differ only in test labels select the same step and return the same weights."""
    test_x, test_y = task["test"]
    cfg = FinetuneConfig(**{**FAST.__dict__, "steps": 40, "lr": 1e-2})
    honest = run(tiny_model(), task, cfg, test=(test_x, test_y))
    inverted = run(tiny_model(), task, cfg, test=(test_x, 1 - test_y))
    assert honest.selected_step == inverted.selected_step
    assert [p["val"] for p in honest.curve] == [p["val"] for p in inverted.curve]
    assert [p["test"] for p in honest.curve] != [p["test"] for p in inverted.curve]
    for a, b in zip(honest.model.state_dict().values(), inverted.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # The selected step is the first best validation score, whatever test says.
    val = [p["val"]["roc_auc"] for p in inverted.curve]
    assert inverted.selected_step == inverted.curve[int(np.argmax(val))]["step"]
    test = [p["test"]["roc_auc"] for p in inverted.curve]
    assert inverted.selected["test"]["roc_auc"] < max(test)  # inverted test disagrees with validation


def test_ties_keep_the_earlier_step_and_patience_counts_evaluations(task):
    # lr=0 and no weight decay: every evaluation equals step 0, so nothing ever improves.
    cfg = FinetuneConfig(**{**FAST.__dict__, "lr": 0.0, "weight_decay": 0.0, "steps": 100, "eval_every": 5,
                            "patience": 3})
    result = run(tiny_model(), task, cfg)
    assert result.selected_step == 0
    assert result.stopped_early and result.stop_reason == "patience" and result.steps_run == 15
    assert [p["step"] for p in result.curve] == [0, 5, 10, 15]
    # min_steps holds the stop back; the step cap ends a run that never stops early.
    held = run(tiny_model(), task, FinetuneConfig(**{**cfg.__dict__, "min_steps": 30}))
    assert held.steps_run == 30 and held.stop_reason == "patience" and len(held.curve) == 7
    capped = run(tiny_model(), task, FinetuneConfig(**{**cfg.__dict__, "steps": 10}))
    assert capped.steps_run == 10 and capped.stop_reason == "step_cap"


def test_select_metric_log_loss_is_minimised(task):
    cfg = FinetuneConfig(**{**FAST.__dict__, "select_metric": "log_loss"})
    result = run(tiny_model(), task, cfg)
    losses = [p["val"]["log_loss"] for p in result.curve]
    assert result.selected_step == result.curve[int(np.argmin(losses))]["step"]
    with pytest.raises(ValueError, match="select_metric"):
        run(tiny_model(), task, FinetuneConfig(select_metric="f1"))


def test_zero_steps_is_zero_shot_and_accepts_an_empty_pool(task):
    model = tiny_model()
    empty = np.zeros((0, 5), np.float32), np.zeros(0, np.int64)
    cfg = FinetuneConfig(steps=0, device="cpu")
    data = FinetuneData(empty, task["context"], task["val"], 2, test=task["test"])
    result = finetune(model, data, cfg, 0)
    assert [p["step"] for p in result.curve] == [0] and result.selected_step == 0 and result.steps_run == 0
    zero_shot = predict_proba(model, *task["context"], task["val"][0], 2)
    assert np.isclose(result.curve[0]["val"]["accuracy"], (zero_shot.argmax(1) == task["val"][1]).mean())
    assert set(result.curve[0]["test"]) == {"roc_auc", "accuracy", "balanced_accuracy", "log_loss"}
    with pytest.raises(ValueError, match="at least 2 pool rows"):
        finetune(model, data, FAST, 0)


def test_pool_smaller_than_batch_and_classes_missing_on_either_side():
    x, y = toy_table(120, n_features=4, n_classes=3, seed=5)
    pool = x[:9], y[:9]  # far fewer rows than batch_rows
    context_rows = y[20:60] != 2  # the context lacks class 2 ...
    context = x[20:60][context_rows], y[20:60][context_rows]
    pool_rows = np.isin(y[60:120], [1, 2])  # ... and this pool lacks class 0
    cfg = FinetuneConfig(steps=4, eval_every=2, device="cpu", batch_rows=512)
    small = finetune(tiny_model(), FinetuneData(pool, context, (x[60:90], y[60:90]), 3), cfg, 0)
    shifted = finetune(tiny_model(), FinetuneData((x[60:120][pool_rows], y[60:120][pool_rows]), context,
                                                  (x[:60], y[:60]), 3, test=(x[90:], y[90:])), cfg, 0)
    for result in (small, shifted):
        assert result.steps_run == 4 and np.isfinite(result.curve[-1]["val"]["log_loss"])
    assert small.curve[0]["test"] == {}
    with pytest.raises(ValueError, match="class indices"):
        finetune(tiny_model(), FinetuneData((x[:9], y[:9] + 5), context, (x[60:90], y[60:90]), 3), cfg, 0)


def test_wide_tables_train_on_feature_subsets():
    x, y = toy_table(150, n_features=9, seed=6)
    cfg = FinetuneConfig(steps=3, eval_every=3, device="cpu")
    model = tiny_model(max_features=4)
    result = finetune(model, FinetuneData((x[:80], y[:80]), (x[:40], y[:40]), (x[80:], y[80:]), 2), cfg, 0)
    assert result.steps_run == 3 and np.isfinite(result.curve[-1]["val"]["roc_auc"])


def test_class_shifts_apply_to_evaluations(task):
    model = tiny_model()
    cfg = FinetuneConfig(steps=0, device="cpu", n_class_shifts=2)
    result = run(model, task, cfg)
    proba = predict_proba(model, *task["context"], task["val"][0], 2, ensemble=Ensemble(n_class_shifts=2))
    assert np.isclose(result.curve[0]["val"]["log_loss"], classification_metrics(task["val"][1], proba)["log_loss"])
    assert result.curve[0]["val"] != run(model, task, FinetuneConfig(steps=0, device="cpu")).curve[0]["val"]


def test_the_inference_ensemble_applies_to_evaluations(task):
    model = tiny_model()
    cfg = FinetuneConfig(steps=0, device="cpu", n_estimators=3)
    result = run(model, task, cfg)
    proba = predict_proba(model, *task["context"], task["val"][0], 2, ensemble=Ensemble(n_estimators=3))
    assert np.isclose(result.curve[0]["val"]["log_loss"], classification_metrics(task["val"][1], proba)["log_loss"])
    assert result.curve[0]["val"] != run(model, task, FinetuneConfig(steps=0, device="cpu")).curve[0]["val"]


def test_a_backbone_object_comes_back_as_a_backbone(task):
    result = run(BuiltinBackbone(tiny_model()), task, FinetuneConfig(steps=2, eval_every=2, device="cpu"))
    assert isinstance(result.model, BuiltinBackbone)


def test_episode_split_is_stratified_and_complete():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2, 3], [40, 10, 2, 1])
    fractions = []
    for _ in range(200):
        context, query = split_episode(y, 0.3, rng)
        assert len(query) >= 1 and len(np.intersect1d(context, query)) == 0
        assert sorted(np.concatenate([context, query])) == list(range(len(y)))
        for label in (0, 1, 2, 3):
            assert (y[context] == label).any()  # every class keeps a context row
        fractions.append(len(query) / len(y))
    assert abs(np.mean(fractions) - 0.3 * 49 / 53) < 0.02  # singletons never become queries
    # All classes singletons: one row still becomes the query.
    context, query = split_episode(np.array([0, 1]), 0.3, rng)
    assert len(query) == 1 and len(context) == 1
    context, query = sample_episode(500, np.zeros(500, int), 64, 0.25, rng)
    assert len(context) + len(query) == 64 and len(np.unique(np.concatenate([context, query]))) == 64


def test_warmup_is_linear_then_constant_or_cosine():
    assert [lr_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_factor(0, 0) == 1.0
    cosine = [lr_factor(s, 4, 24, "cosine") for s in range(25)]
    assert cosine[:4] == [0.25, 0.5, 0.75, 1.0] and cosine[14] == pytest.approx(0.5) and cosine[24] == 0.0
    assert all(a >= b for a, b in zip(cosine[3:], cosine[4:]))


def _episodes(n_synthetic, steps=20, seed=3, **options):
    rng = np.random.default_rng(0)
    y_real, y_synthetic = rng.integers(0, 3, 204), rng.integers(0, 3, n_synthetic)
    cfg = FinetuneConfig(batch_rows=128, query_fraction=0.5, **options)
    sampler = EpisodeSampler(y_real, y_synthetic, cfg, seed)
    return [sampler() for _ in range(steps)], sampler


def test_fixed_share_keeps_episode_size_and_real_rows_at_every_synthetic_size():
    real_parts = None
    for n in (32, 64, 256, 1024):
        episodes, sampler = _episodes(n)
        for context, query in episodes:
            rows = np.concatenate([context, query])
            assert len(rows) == 128 and (rows < 204).sum() == 64  # size and real share fixed
            assert len(np.intersect1d(context, query)) == 0 or n < 64  # repeats only when n < 64
        # Common random numbers: the real part of every episode is the same at every size.
        real = [(np.sort(c[c < 204]), np.sort(q[q < 204])) for c, q in episodes]
        if real_parts is None:
            real_parts = real
        for (a, b), (c, d) in zip(real, real_parts):
            assert np.array_equal(a, c) and np.array_equal(b, d)
        # synthetic_seen marks exactly the synthetic rows the episodes drew (pool index - 204).
        drawn = np.unique(np.concatenate([np.concatenate([c, q]) for c, q in episodes]))
        assert np.array_equal(np.flatnonzero(sampler.synthetic_seen), drawn[drawn >= 204] - 204)
        if n == 32:  # 20 x 64 draws with replacement from 32 rows: one row is missed w.p. (31/32)^1280 ~ 2e-18
            assert sampler.synthetic_seen.all()
    # Plain fine-tuning (no synthetic pool) sees exactly those real parts.
    plain, _ = _episodes(0)
    for (context, query), (a, b) in zip(plain, real_parts):
        assert np.array_equal(np.sort(context), a) and np.array_equal(np.sort(query), b)


def test_a_small_real_pool_shrinks_both_parts_and_keeps_the_share():
    rng = np.random.default_rng(0)
    sampler = EpisodeSampler(rng.integers(0, 2, 36), rng.integers(0, 2, 256), FinetuneConfig(batch_rows=128), 0)
    context, query = sampler()
    rows = np.concatenate([context, query])
    assert len(rows) == 72 and (rows < 36).sum() == 36  # 36 real + 36 synthetic: still half and half


def test_pool_mixing_lets_the_real_share_fall_with_size():
    shares = []
    for n in (64, 1024):
        episodes, _ = _episodes(n, mixing="pool")
        rows = np.concatenate([np.concatenate(e) for e in episodes])
        shares.append((rows < 204).mean())
    assert shares[0] > 0.7 and shares[1] < 0.25


def test_synthetic_rows_can_be_kept_to_context_or_query():
    for place, side in (("context", 1), ("query", 0)):
        episodes, _ = _episodes(256, synthetic_in=place)
        for episode in episodes:
            assert (episode[side] < 204).all()  # the other side holds real rows only
    with pytest.raises(ValueError, match="synthetic_in"):
        FinetuneConfig(synthetic_in="nowhere")
    with pytest.raises(ValueError, match="real_share"):
        FinetuneConfig(real_share=1.0)


def test_class_permutation_relabels_context_and_query_alike():
    rng = np.random.default_rng(0)
    y_context, y_query = torch.tensor([0, 1, 2, 2]), torch.tensor([2, 0])
    seen = set()
    for _ in range(30):
        c, q = permute_classes(y_context, y_query, 3, rng)
        mapping = dict(zip(y_context.tolist(), c.tolist()))
        assert [mapping[v] for v in y_query.tolist()] == q.tolist()
        seen.add(tuple(c.tolist()))
    assert len(seen) == 6  # every permutation of three classes occurs


def test_realised_real_share_is_recorded(task):
    x, y = task["pool"]
    cfg = FinetuneConfig(**{**FAST.__dict__, "steps": 4, "eval_every": 2, "batch_rows": 64})
    data = FinetuneData((x, y), task["context"], task["val"], 2, synthetic=(x[:50] + 0.01, y[:50]))
    result = finetune(tiny_model(), data, cfg, 0)
    assert result.real_share == 0.5 and 0 < result.synthetic_rows_seen <= 50
    plain = run(tiny_model(), task, cfg)
    assert plain.real_share == 1.0 and plain.synthetic_rows_seen == 0


def test_query_rows_are_predicted_independently_of_each_other(task):
    # Fine-tuning evaluates validation and test rows in one pass; that is exact only if a
    # query row's prediction ignores the other query rows.
    backbone = BuiltinBackbone(tiny_model(), Ensemble(n_class_shifts=2))
    (cx, cy), (vx, _), (tx, _) = task["context"], task["val"], task["test"]
    together = backbone.predict_proba(cx, cy, np.concatenate([vx, tx]), 2)
    alone = backbone.predict_proba(cx, cy, vx, 2)
    np.testing.assert_allclose(together[: len(vx)], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"batch_rows": 1}, "batch_rows must be at least 2"),
        ({"batch_rows": 2, "real_share": 0.2}, "gives 0 real rows of 2"),
        ({"batch_rows": 4, "real_share": 0.9}, "gives 4 real rows of 4"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"lr": float("inf")}, "lr must be a finite number"),
        ({"weight_decay": float("nan")}, "weight_decay must be a finite number"),
    ],
)
def test_degenerate_or_non_finite_settings_fail_before_any_step(options, problem):
    with pytest.raises(ValueError, match=problem):
        FinetuneConfig(**options)


def test_the_smallest_episode_runs(task):
    result = run(tiny_model(), task, FinetuneConfig(steps=2, eval_every=1, warmup_steps=0, batch_rows=2, device="cpu"))
    assert result.steps_run == 2


def test_a_diverging_run_says_so_in_the_log(task, monkeypatch, caplog):
    import causalmixft.model.finetune as finetune_module

    monkeypatch.setattr(finetune_module, "finetune_step", lambda *args: float("nan"))
    with caplog.at_level("WARNING", logger="causalmixft.model.finetune"):
        run(tiny_model(), task, FinetuneConfig(steps=2, eval_every=1, warmup_steps=0, batch_rows=16, device="cpu"))
    assert "training loss nan by step 1: fine-tuning diverged" in caplog.text
