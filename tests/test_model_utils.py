"""The production-model layer: loading, surgery on one block, comparison metrics, heatmaps. Offline only."""
from __future__ import annotations

import gc
import json
import math
import weakref

import huggingface_hub.constants
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from autograder.assignments.attention.contract import PROMPT_EXAMPLE
from autograder.feedback import CheckFailed
from autograder.model import metrics
from autograder.model.compare import (
    compare_attention_implementations,
    extract_attention_weights,
    run_inference_comparison,
)
from autograder.model.heatmaps import (
    HeatmapFigure,
    attention_heatmap_pair,
    visualize_model_comparison,
)
from autograder.model.loading import (
    ModelUnavailableError,
    exact_float32,
    load_mini_transformer,
    one_cpu_thread,
)
from autograder.model.surgery import (
    ModelIntegrationError,
    extract_attention_layer,
    injected_attention,
    replace_attention_mechanism,
)
from autograder.runtime.submission import SubmissionError
from reference.attention import linear_projections, scaled_dot_product_attention
from tests.model_fixtures import gpt2, gpt2_dir, minilm  # noqa: F401  (pytest fixtures)

TOL = 1e-5
PROMPTS = ["The cat sat on the mat", "Hi there"]  # a padded batch: the mask matters


def logits_of(model, tokenizer, text=PROMPT_EXAMPLE):
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits


# -- students ------------------------------------------------------------------------------------------

def no_scaling(Q, K, V, mask):
    scores = (Q @ K.transpose(-2, -1)).masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ V, weights


def transposed_weights(Q, K, V, mask):
    attended, weights = scaled_dot_product_attention(Q, K, V, mask)
    return attended, weights.transpose(-2, -1)


def ignores_mask(Q, K, V, mask):
    return scaled_dot_product_attention(Q, K, V, None)


def naive_neg_inf(Q, K, V, mask):
    """The textbook version: a row with no visible key would be all -inf and give NaN."""
    scores = (Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])).masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ V, weights


# -- loading -------------------------------------------------------------------------------------------

def test_gpt2_loads_eager_in_eval_with_distilgpt2_tokens(gpt2):
    model, tokenizer = gpt2
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert model.config._attn_implementation == "eager" and not model.training
    assert tokenizer(PROMPT_EXAMPLE)["input_ids"] == [464, 3797, 3332, 319, 262, 2603]
    assert extract_attention_layer(model, 0) is model.transformer.h[0].attn


def test_encoder_loads_with_automodel(minilm):
    model, _ = minilm
    assert type(model).__name__ == "BertModel" and model.config._attn_implementation == "eager"
    assert extract_attention_layer(model, 0) is model.encoder.layer[0].attention.self


def test_offline_empty_cache_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import
    with pytest.raises(ModelUnavailableError) as caught:
        load_mini_transformer("distilgpt2", cache_dir=tmp_path / "empty")
    message = str(caught.value)
    assert "'distilgpt2' is not in the model cache" in message and "HF_HUB_OFFLINE=1" in message
    assert "from autograder.model.loading import load_mini_transformer; load_mini_transformer(" in message
    assert caught.value.__suppress_context__  # no hub traceback chained under it


def test_unreachable_hub_fails_fast_with_one_clear_error(tmp_path, monkeypatch):
    """No network and no cached copy: one message in milliseconds, not ~20 s of hub retries."""
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "https://autograder-no-such-host.invalid")
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as caught:
        load_mini_transformer("distilgpt2", cache_dir=tmp_path / "empty")
    assert time.perf_counter() - start < 5
    assert "autograder-no-such-host.invalid cannot be reached" in str(caught.value)
    assert caught.value.__suppress_context__


def test_directory_without_a_model_is_unavailable(tmp_path):
    with pytest.raises(ModelUnavailableError, match="not a loadable model directory"):
        load_mini_transformer(str(tmp_path))


# -- surgery -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpt2_reference(gpt2):
    model, tokenizer = gpt2
    return compare_attention_implementations(model, tokenizer, scaled_dot_product_attention)


def test_reference_student_reproduces_gpt2(gpt2_reference):
    report = gpt2_reference.to_dict()
    json.dumps(report, allow_nan=False)
    assert report["student_ran"] and report["student_calls"] == 1
    assert report["logits_max_abs_diff"] < TOL and report["block_output_max_abs_diff"] < TOL
    assert report["attention"]["max_abs_diff"] < TOL and report["attention"]["cosine"]["min"] > 1 - 1e-9
    assert report["next_token"]["top1_agreement"] == [1.0] and report["next_token"]["kl"][0] < 1e-9
    assert report["continuation"]["match"] and len(report["continuation"]["student_ids"]) == 5
    assert report["tokens"] == [["The", " cat", " sat", " on", " the", " mat"]]
    # row 0 of a causal map sees one key: trivially right, so not graded
    assert report["graded_rows"] == 5 and report["attention"]["js"]["per_row"][0][0][0] is None
    assert "reference_weights" not in report and gpt2_reference.student_weights.shape == (1, 12, 6, 6)


def test_reference_student_reproduces_minilm_padded_batch(minilm):
    model, tokenizer = minilm
    result = compare_attention_implementations(model, tokenizer, scaled_dot_product_attention, prompt=PROMPTS)
    assert result.student_ran and result.last_hidden_max_abs_diff < TOL
    assert result.logits_max_abs_diff is None and result.next_token is None
    assert result.graded_rows == int(result.padding_mask.sum())  # every real row, no padded row


def test_ignored_padding_mask_is_caught_on_a_padded_batch(minilm):
    model, tokenizer = minilm
    result = compare_attention_implementations(model, tokenizer, ignores_mask, prompt=PROMPTS)
    assert result.student_ran and result.last_hidden_max_abs_diff > 0.1


@pytest.mark.parametrize("student", [no_scaling, transposed_weights], ids=["no-1/sqrt(d)", "transposed-weights"])
def test_wrong_students_are_far_beyond_tolerance(gpt2, student):
    model, tokenizer = gpt2
    result = compare_attention_implementations(model, tokenizer, student, continuation_tokens=0)
    assert result.student_ran
    assert result.attention["max_abs_diff"] > 0.1
    if student is no_scaling:
        assert result.logits_max_abs_diff > 0.1
    else:  # the output is right: only the weights give it away
        assert result.logits_max_abs_diff < TOL and result.attention["cosine"]["min"] < 0.9


def raises(Q, K, V, mask):
    raise ValueError("shapes do not match")


def drops_last_key(Q, K, V, mask):
    attended, weights = scaled_dot_product_attention(Q, K, V, mask)
    return attended, weights[..., :-1]


def returns_nan(Q, K, V, mask):
    attended, weights = scaled_dot_product_attention(Q, K, V, mask)
    return attended * math.nan, weights


@pytest.mark.parametrize(
    "student, expected",
    [
        (raises, "your attention raised ValueError: shapes do not match"),
        (drops_last_key, "your attention returned weights of shape [1, 12, 6, 5] inside distilgpt2-seeded's "
                         "block 0 (12 heads x 64 dims); expected [1, 12, 6, 6]"),
        (lambda Q, K, V, mask: Q, "your attention returned a Tensor"),
        (lambda Q, K, V, mask: (Q.tolist(), Q), "returned attended values as a list"),
        (returns_nan, "attended values with 4608 NaN/inf entries"),
    ],
    ids=["raises", "wrong-shape", "bare-tensor", "list", "nan"],
)
def test_broken_students_give_a_readable_integration_error(gpt2, student, expected):
    model, tokenizer = gpt2
    with pytest.raises(ModelIntegrationError) as caught:
        compare_attention_implementations(model, tokenizer, student, continuation_tokens=0)
    assert expected in str(caught.value)


def test_grader_errors_from_the_worker_seam_are_passed_on_as_they_are(gpt2):
    """The bridge raises SubmissionError/CheckFailed whose message already speaks of the student's code."""
    model, tokenizer = gpt2

    def missing(Q, K, V, mask):
        raise SubmissionError("missing", "scaled_dot_product_attention is not defined in your file")

    def refused(x, W_q, W_k, W_v):
        raise CheckFailed("linear_projections returned a list of 3 item(s) (int); expected a tuple of 3 tensors")

    with pytest.raises(ModelIntegrationError) as caught:
        compare_attention_implementations(model, tokenizer, missing, continuation_tokens=0)
    assert str(caught.value).startswith("scaled_dot_product_attention is not defined in your file\n  inside ")
    assert isinstance(caught.value.__cause__, SubmissionError)
    with pytest.raises(ModelIntegrationError) as caught:
        compare_attention_implementations(model, tokenizer, scaled_dot_product_attention,
                                          route_projections=refused, continuation_tokens=0)
    assert str(caught.value).startswith("linear_projections returned a list of 3 item(s)")
    assert "head 0, with x of shape [1, 6, 768]" in str(caught.value)


def test_original_model_is_never_modified(gpt2):
    model, tokenizer = gpt2
    before = logits_of(model, tokenizer)
    student_model = replace_attention_mechanism(model, no_scaling)
    assert not torch.allclose(logits_of(student_model, tokenizer), before, atol=1e-3)
    with injected_attention(model, no_scaling) as injection:
        assert not torch.allclose(logits_of(model, tokenizer), before, atol=1e-3) and injection.calls == 1
    assert torch.equal(logits_of(model, tokenizer), before)
    assert model.config._attn_implementation == "eager"
    assert all(block.attn.config is model.config for block in model.transformer.h)
    # only block 0 of the student model changed its kernel
    assert student_model.transformer.h[0].attn.config._attn_implementation == "autograder_student"
    assert all(block.attn.config is student_model.config for block in student_model.transformer.h[1:])
    assert student_model.transformer.h[0].attn.c_attn.weight is model.transformer.h[0].attn.c_attn.weight


def test_student_model_is_freed_by_del_alone(gpt2):
    """No reference cycles: compare_attention_implementations frees its student model without gc.collect()."""
    model, tokenizer = gpt2
    student_model = replace_attention_mechanism(model, scaled_dot_product_attention)
    logits_of(student_model, tokenizer)
    alive = weakref.ref(student_model)
    gc.disable()
    try:
        del student_model
        assert alive() is None
    finally:
        gc.enable()


def test_gradients_reach_the_blocks_projection(gpt2):
    model, tokenizer = gpt2
    weight = model.transformer.h[0].attn.c_attn.weight
    with torch.no_grad():  # start from embeddings: a gradient for the 50,257 x 768 table would only cost time
        embeds = model.transformer.wte(tokenizer(PROMPT_EXAMPLE, return_tensors="pt")["input_ids"])
    try:
        for route in (None, linear_projections):
            weight.grad = None
            student_model = replace_attention_mechanism(model, scaled_dot_product_attention, route_projections=route)
            student_model.transformer(inputs_embeds=embeds).last_hidden_state.sum().backward()
            assert student_model.transformer.h[0].attn.c_attn.weight.grad is not None
            assert weight.grad.abs().sum() > 0
    finally:
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("sandbox", [False, True], ids=["in-process", "worker"])
def test_gradients_through_the_bridge_match_production(gpt2, sandbox):
    """The student's backward runs through the Submission seam; --no-sandbox answers inside autograd's
    backward, where grad mode is off, and must still give their gradients."""
    from autograder.assignments.attention.checks.test_model import block_gradients
    from autograder.assignments.attention.contract import ASSIGNMENT
    from autograder.assignments.attention.inputs import CHECK
    from autograder.model import bridge
    from autograder.runtime.submission import Submission
    from tests.grading_helpers import SUBMISSIONS

    model, tokenizer = gpt2
    inputs = tokenizer(PROMPT_EXAMPLE, return_tensors="pt")
    params = list(extract_attention_layer(model, 0).parameters())
    with Submission(SUBMISSIONS / "correct.py", sandbox=sandbox, contract=ASSIGNMENT.wire()) as submission:
        attend = bridge.student_attention(submission, CHECK)
        got = block_gradients(replace_attention_mechanism(model, attend), inputs, params)
    expected = block_gradients(model, inputs, params)
    assert all(g is not None for g in got)
    assert relative_gap(got, expected) < 1e-5


def relative_gap(got, expected):
    flat_got, flat_expected = torch.cat([g.flatten() for g in got]), torch.cat([e.flatten() for e in expected])
    return float((flat_got - flat_expected).norm() / flat_expected.norm())


def test_the_gradient_check_is_well_conditioned(gpt2, minilm):
    """Float32 rounding alone (here: float32 against float64) stays far inside grads_rtol = 1e-4, so a
    correct attention computed elsewhere (its worker on the CPU, the model on a GPU) passes."""
    import copy

    from autograder.assignments.attention.checks.test_model import block_gradients

    for model, tokenizer, prompt in [(*gpt2, PROMPT_EXAMPLE), (*minilm, PROMPTS)]:
        inputs = tokenizer(prompt, return_tensors="pt", padding=not isinstance(prompt, str))
        wide = copy.deepcopy(model).double()
        got = block_gradients(model, inputs, list(extract_attention_layer(model, 0).parameters()))
        truth = block_gradients(wide, inputs, list(extract_attention_layer(wide, 0).parameters()))
        assert relative_gap(got, [t.float() for t in truth]) < 1e-5


@pytest.mark.parametrize("which", ["gpt2", "minilm"])
def test_student_projections_route_through_the_blocks_weights(which, request):
    model, tokenizer = request.getfixturevalue(which)
    prompt = PROMPT_EXAMPLE if which == "gpt2" else PROMPTS
    right = compare_attention_implementations(model, tokenizer, scaled_dot_product_attention, prompt,
                                              route_projections=linear_projections, continuation_tokens=0)
    swapped = compare_attention_implementations(model, tokenizer, scaled_dot_product_attention, prompt,
                                                route_projections=lambda x, Wq, Wk, Wv: (x @ Wk, x @ Wq, x @ Wv),
                                                continuation_tokens=0)
    assert right.student_ran and right.last_hidden_max_abs_diff < TOL and right.mode == "projections+attention"
    assert swapped.attention["max_abs_diff"] > 1e-3


def test_left_padding_rows_without_keys_are_unmasked_and_not_graded(gpt2):
    model, tokenizer = gpt2
    ids = tokenizer(PROMPTS)["input_ids"]
    width = max(map(len, ids))
    encoded = {
        "input_ids": torch.tensor([[tokenizer.eos_token_id] * (width - len(r)) + r for r in ids]),
        "attention_mask": torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids]),
    }
    student_model = replace_attention_mechanism(model, naive_neg_inf)
    run = run_inference_comparison(model, student_model, encoded)
    real = encoded["attention_mask"].bool()
    assert run["student_ran"] and torch.equal(run["compared_rows"], real)
    assert (run["reference_logits"] - run["student_logits"])[real].abs().max() < TOL
    assert not run["graded_rows"][~real].any()


def test_causal_mask_is_rebuilt_when_the_model_passes_none(gpt2, gpt2_dir):
    """Under sdpa, GPT-2 hands a purely causal mask over as None: the student must still get one."""
    from transformers import AutoModelForCausalLM

    model, tokenizer = gpt2
    sdpa_model = AutoModelForCausalLM.from_pretrained(gpt2_dir, attn_implementation="sdpa").eval()
    masks = []

    def recording(Q, K, V, mask):
        masks.append(mask)
        return scaled_dot_product_attention(Q, K, V, mask)

    student_model = replace_attention_mechanism(sdpa_model, recording)
    assert torch.allclose(logits_of(student_model, tokenizer), logits_of(model, tokenizer), atol=TOL)
    assert torch.equal(masks[0].reshape(6, 6), torch.ones(6, 6, dtype=torch.bool).tril())


def test_a_second_comparison_reuses_the_production_forward(gpt2, gpt2_reference, monkeypatch):
    """Projections mode after attention mode: production's forward on the same prompt is not run again."""
    from autograder.model import compare

    model, tokenizer = gpt2
    forwards = []
    real_forward = compare._forward
    monkeypatch.setattr(compare, "_forward", lambda m, *a: forwards.append(m) or real_forward(m, *a))
    again = compare_attention_implementations(model, tokenizer, scaled_dot_product_attention,
                                              route_projections=linear_projections, continuation_tokens=0,
                                              reference=gpt2_reference)
    assert len(forwards) == 1 and forwards[0] is not model  # only the student model ran
    assert torch.equal(again.reference_weights, gpt2_reference.reference_weights)
    assert again.logits_max_abs_diff < TOL and again.timing_s["reference"] == gpt2_reference.timing_s["reference"]
    # another prompt: the reference does not apply, production runs again, once for the process
    monkeypatch.setattr(compare, "_PRODUCTION", weakref.WeakKeyDictionary())
    for production_runs in ([True, False], [False]):
        forwards.clear()
        compare_attention_implementations(model, tokenizer, scaled_dot_product_attention, "Hi there",
                                          continuation_tokens=0, reference=gpt2_reference)
        assert [m is model for m in forwards] == production_runs


def test_continuation_reuses_the_first_token_and_matches_plain_greedy(gpt2, gpt2_reference, monkeypatch):
    """Production's forward and continuation run once per process (later grades of the prompt reuse them)."""
    from autograder.model import compare

    model, tokenizer = gpt2
    ids = tokenizer(PROMPT_EXAMPLE, return_tensors="pt")["input_ids"]
    assert gpt2_reference.continuation["reference_ids"] == compare._greedy(model, ids, 5)
    monkeypatch.setattr(compare, "_PRODUCTION", weakref.WeakKeyDictionary())
    production_forwards = []
    hook = model.register_forward_pre_hook(lambda module, args: production_forwards.append(module is model))
    try:
        first = compare_attention_implementations(model, tokenizer, scaled_dot_product_attention,
                                                  continuation_tokens=3)
        assert production_forwards.count(True) == 1 + 2  # the comparison's forward gave the first of 3 tokens
        production_forwards.clear()
        again = compare_attention_implementations(model, tokenizer, scaled_dot_product_attention,
                                                  continuation_tokens=3)
    finally:
        hook.remove()
    assert production_forwards.count(True) == 0
    assert again.continuation == first.continuation and torch.equal(again.reference_weights, first.reference_weights)


def test_one_cpu_thread_and_exact_float32_restore_the_settings():
    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    torch.set_num_threads(2)
    torch.set_float32_matmul_precision("high")  # TF32 allowed, as some training code sets it
    try:
        with one_cpu_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with exact_float32():
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_num_threads(threads)
        torch.set_float32_matmul_precision(precision)


def test_extract_attention_weights_matches_the_recorded_map(gpt2, gpt2_reference):
    model, tokenizer = gpt2
    weights = extract_attention_weights(model, torch.tensor(tokenizer(PROMPT_EXAMPLE)["input_ids"]))
    assert weights.shape == (1, 12, 6, 6) and torch.equal(weights, gpt2_reference.reference_weights)


# -- heatmaps and metrics ------------------------------------------------------------------------------

def test_heatmaps_are_written(gpt2_reference, tmp_path):
    paths = visualize_model_comparison(gpt2_reference, tmp_path, prefix="ref_", heads=[0, 11])
    assert [p.name for p in paths] == ["ref_layer0_head00.png", "ref_layer0_head11.png"]
    weights = gpt2_reference.reference_weights[:, 0]  # [1, 6, 6], the shape of the PROMPT_EXAMPLE maps
    pair = attention_heatmap_pair(weights, weights.flip(-1), gpt2_reference.tokens[0], tmp_path / "pair.png")
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in [*paths, pair])


def test_one_reused_figure_draws_each_map_afresh(tmp_path):
    """Maps pasted over a shared background: each PNG shows its own maps, never a previous head's, and each
    cell has the colour of its weight (viridis: 1 yellow, 0 purple; NaN magenta)."""
    import numpy as np
    from PIL import Image

    from autograder.model.heatmaps import NAN_RGB

    tokens = ["The", " cat", " sat"]
    uniform, diagonal = torch.full((3, 3), 1 / 3), torch.eye(3)
    figure = HeatmapFigure(tokens, 3, titles=("production", "student"))
    # swapped maps: the same title and difference scale, so only the maps themselves tell the PNGs apart
    first = figure.render(uniform, diagonal, tmp_path / "a.png", suptitle="head 1")
    second = figure.render(diagonal, uniform, tmp_path / "b.png", suptitle="head 1")
    fresh = HeatmapFigure(tokens, 3, titles=("production", "student")).render(
        diagonal, uniform, tmp_path / "fresh.png", suptitle="head 1")
    a, b, d = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (first, second, fresh))
    assert a.shape == b.shape == d.shape and np.abs(a - b).sum() > 0
    assert np.array_equal(b, d)  # the second map drawn on the reused figure = the same map on a new one

    def cell(picture: np.ndarray, panel: int, row: int, column: int) -> tuple:
        x0, y0 = figure.origins[panel]
        return tuple(picture[y0 + row * figure.cell + figure.cell // 2, x0 + column * figure.cell + figure.cell // 2])

    assert cell(b, 0, 0, 0) == (253, 231, 37) and cell(b, 0, 0, 1) == (68, 1, 84)  # production: the diagonal
    assert cell(a, 0, 1, 1) == cell(a, 0, 2, 0) != cell(b, 0, 1, 1)                 # uniform: one colour
    broken = np.asarray(Image.open(figure.render(diagonal, torch.full((3, 3), float("nan")), tmp_path / "n.png"))
                        .convert("RGB")).astype(int)
    assert cell(broken, 1, 2, 1) == NAN_RGB
    with pytest.raises(ValueError, match="expected two"):
        figure.render(torch.eye(4), torch.eye(4), tmp_path / "d.png")


def test_metrics_agree_with_scipy():
    generator = torch.Generator().manual_seed(0)
    p = torch.rand(3, 4, 7, generator=generator).softmax(-1)
    q = torch.rand(3, 4, 7, generator=generator).softmax(-1)
    positions = range(7)
    emd = metrics.emd_per_row(p, q).reshape(-1)
    js = metrics.js_divergence(p, q).reshape(-1)
    for i, (a, b) in enumerate(zip(p.reshape(-1, 7).tolist(), q.reshape(-1, 7).tolist())):
        assert emd[i].item() == pytest.approx(wasserstein_distance(positions, positions, a, b), abs=1e-12)
        assert js[i].item() == pytest.approx(jensenshannon(a, b, base=2) ** 2, abs=1e-12)
    assert metrics.cosine_per_row(p, p).sub(1).abs().max() < 1e-12
    assert metrics.kl_from_logits(p.log(), p.log()).abs().max() < 1e-12
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    assert metrics.topk_agreement(logits, logits.flip(-1), 1).item() == 0.0
    assert metrics.topk_agreement(logits, logits.flip(-1), 3).item() == 0.0
    assert metrics.topk_agreement(logits, logits, 5).item() == 1.0
