"""The API ban in the dispatcher: no torch-function trick reaches a banned aten kernel inside the block,
a swallowed refusal is on record, and everything works again after the block."""
from __future__ import annotations

import pytest
import torch

from autograder.runtime.guards import BannedAPIError, banned_operators, guarded

BANNED = ("torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention")
Q = torch.randn(1, 2, 4, 8)


@pytest.mark.parametrize("call", [
    lambda: torch.ops.aten._scaled_dot_product_attention_math(Q, Q, Q)[0],
    lambda: torch.ops.aten._scaled_dot_product_attention_math.default.decompose(Q, Q, Q)[0],
    lambda: torch.ops.aten.scaled_dot_product_attention.default(Q, Q, Q),
    lambda: torch._C._nn.scaled_dot_product_attention(Q, Q, Q),
    lambda: torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(Q, Q, Q)[0],
], ids=["math", "decompose", "aten", "torch_C", "fused_cpu"])
@pytest.mark.parametrize("context", [torch._C.DisableTorchFunction, torch.inference_mode, torch.no_grad])
def test_no_way_around_the_dispatcher(call, context) -> None:
    with guarded(BANNED) as refusals, pytest.raises(BannedAPIError, match="not allowed in this assignment"), \
            torch._C.DisableTorchFunction(), context():
        call()
    assert refusals and "torch.nn.functional.scaled_dot_product_attention" in refusals[0]
    assert call().shape == Q.shape  # the kernels are back after the block


def test_swallowed_refusals_are_recorded_and_honest_code_runs() -> None:
    with guarded(BANNED) as refusals:
        out = torch.softmax(Q @ Q.transpose(-2, -1), -1) @ Q  # attention written by hand: fine
        try:
            torch.ops.aten._scaled_dot_product_attention_math(Q, Q, Q)
        except BannedAPIError:
            pass
    assert out.shape == Q.shape and len(refusals) == 1


def test_every_kernel_of_the_family_is_covered() -> None:
    ops = {op for _, op, _ in banned_operators(BANNED)}
    assert {"_scaled_dot_product_attention_math", "scaled_dot_product_attention",
            "_scaled_dot_product_flash_attention_for_cpu", "_native_multi_head_attention"} <= ops


def test_the_worker_keeps_the_ban_for_its_life() -> None:
    """A process that runs only student code registers the refusals once; guarded blocks still record them."""
    import subprocess
    import sys

    code = ("import torch\nfrom autograder.runtime.guards import BannedAPIError, ban_for_this_process, guarded\n"
            f"ban_for_this_process({BANNED!r})\nQ = torch.randn(1, 2, 4, 8)\n"
            f"with guarded({BANNED!r}) as refusals:\n"
            "    try:\n        torch.ops.aten._scaled_dot_product_attention_math(Q, Q, Q)\n"
            "    except BannedAPIError:\n        pass\n"
            "assert len(refusals) == 1, refusals\n"
            "try:\n    torch.ops.aten.scaled_dot_product_attention(Q, Q, Q)\nexcept BannedAPIError:\n    print('refused')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "refused", run.stderr


def test_guards_that_end_out_of_order_leave_the_real_api_behind() -> None:
    """A call abandoned at its time limit ends its guarded block after the next call's began (threads): the
    banned name must still be the real class afterwards (it once stayed a stand-in for the process)."""
    import torch

    from autograder.runtime.guards import guarded

    real = torch.nn.MultiheadAttention
    first = guarded(["torch.nn.MultiheadAttention"])
    second = guarded(["torch.nn.MultiheadAttention"])
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert torch.nn.MultiheadAttention is real
