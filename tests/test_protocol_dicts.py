"""Dict arguments across the seam (the `block` assignment's params) and gradients for their entries."""
from __future__ import annotations

import pytest
import torch

from autograder.runtime import protocol
from autograder.runtime.submission import Submission
from tests.catalogue_helpers import SUBMISSIONS

BLOCK = SUBMISSIONS / "block" / "correct.py"


def test_a_dict_round_trips_and_odd_dicts_are_only_described():
    params = {"a": torch.arange(3.0), "b": torch.ones(2, 2), "n": 3}
    spec, blob = protocol.encode_values([params, {1: torch.zeros(1)}])
    plain, odd = protocol.decode_values(spec, protocol.unpack_blob(blob))
    assert plain.keys() == params.keys() and torch.equal(plain["b"], params["b"]) and plain["n"] == 3
    assert isinstance(odd, protocol.Foreign)  # a non-str key is never sent as a dict


def test_the_blob_is_what_safetensors_save_writes_and_round_trips():
    """The encoder writes with safetensors' low-level serialize: the bytes of safetensors.torch.save, for every
    dtype and layout a value may have (empty, 0-d, a transposed view, bool, bfloat16, int, shared storage,
    a pending negation or conjugation)."""
    from safetensors.torch import save

    shared = torch.arange(12.0)
    values = (torch.randn(2, 3, dtype=torch.float64), torch.ones(3, dtype=torch.bool), torch.empty(0, 4),
              torch.arange(5), torch.randn(4, 4).t(), torch.randn(3, dtype=torch.bfloat16), torch.tensor(2.5),
              shared[2:5], shared, shared,  # views of one storage, and one tensor twice
              torch._neg_view(torch.tensor([1.0, 2.0])), torch.tensor([1 + 2j]).conj().imag)  # flags, not memory
    encoder = protocol.Encoder()
    spec = encoder.add(values)
    blob = encoder.blob()
    assert blob == save({k: t.clone() for k, t in encoder.tensors.items()})
    back = protocol.decode(spec, protocol.unpack_blob(blob))
    assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(values, back))
    back[9][0] = 99.0  # decoded values are independent copies (values[8] and values[9] are one tensor)
    assert back[8][0] == 0.0 and shared[0] == 0.0


@pytest.mark.parametrize("spec", [
    {"kind": "dict", "items": "x"},
    {"kind": "dict", "items": [[1, {"kind": "none"}]]},
    {"kind": "dict", "items": [["k"]]},
    {"kind": "dict", "items": [["k", {"kind": "tensor", "key": "missing"}]]},
    {"kind": "dict", "items": [[str(i), {"kind": "none"}] for i in range(protocol.MAX_KEYS + 1)]},
])
def test_malformed_dict_specs_are_protocol_errors(spec):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(spec, {})


@pytest.mark.parametrize("sandbox", [False, True], ids=["in-process", "sandboxed"])
def test_vjp_reaches_a_dict_entry(sandbox):
    from autograder.assignments.block import ASSIGNMENT
    from reference import block as ref
    from tests.catalogue_helpers import random_params

    g = torch.Generator().manual_seed(0)
    params = random_params(8, 32, g)
    x = torch.randn(2, 3, 8, generator=g, dtype=torch.float64)
    cotangent = torch.randn(2, 3, 8, generator=g, dtype=torch.float64)
    with Submission(BLOCK, sandbox=sandbox, contract=ASSIGNMENT.wire()) as submission:
        out, (g_x, g_w1) = submission.vjp("transformer_block", [x, params, 2, None], [0, (1, "mlp.W_1")],
                                          [cotangent])
    leaf_x, leaf_w1 = x.clone().requires_grad_(), params["mlp.W_1"].clone().requires_grad_()
    expected = ref.transformer_block(leaf_x, {**params, "mlp.W_1": leaf_w1}, 2)
    want_x, want_w1 = torch.autograd.grad(expected, [leaf_x, leaf_w1], cotangent)
    torch.testing.assert_close(out, expected.detach())
    torch.testing.assert_close(g_x, want_x)
    torch.testing.assert_close(g_w1, want_w1)
