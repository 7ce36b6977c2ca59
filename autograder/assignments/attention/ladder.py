"""The input kinds an error of the attention assignment is explained by (`autograder.diagnosis.errors`).

Small problems (seq 4, or 3 queries and 5 keys; d_k = d_v = 8) of every kind: 2-D, 3-D or 4-D inputs;
no mask, a shared [seq_q, seq_k] mask or one with batch dims (the contract allows any mask that
broadcasts); seq_q == seq_k or not; float64 or float32. Imported by `mistakes`, which sets it as the
catalogue's ladder.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from autograder.assignments.attention.contract import ASSIGNMENT
from autograder.assignments.attention.inputs import Case, section_args
from autograder.diagnosis.errors import Feature, Ladder
from reference import attention as ref

_SHAPES = {"2d": "[seq, d] inputs (2-D)", "3d": "[batch, seq, d] inputs (3-D)",
           "4d": "[batch, heads, seq, d] inputs (4-D)"}
_AXES = ("index axes from the end, so that any number of leading batch dims works: transpose(-2, -1), "
         "Q.shape[-1], torch.matmul / @")
DIMS = Feature(
    "dims", ("2d", "3d", "4d"),
    works={v: f"works on {s}" for v, s in _SHAPES.items()},
    raises={v: f"raises on {s}" for v, s in _SHAPES.items()},
    advice={v: _AXES for v in _SHAPES},
)
MASK = Feature(
    "mask", ("none", "shared", "batched"),
    works={"none": "works when mask is None", "shared": "works with a [seq_q, seq_k] mask",
           "batched": "works with a mask that has batch dims"},
    raises={"none": "raises when mask is None (the default)",
            "shared": "raises for a [seq_q, seq_k] mask shared by the batch",
            "batched": "raises for a mask with batch dims ([batch, seq_q, seq_k])"},
    advice={"none": "use the mask only under `if mask is not None:`",
            "shared": "a mask only has to broadcast to the scores: use it as given (masked_fill broadcasts)",
            "batched": "a mask may have the scores' leading dims: use it as given, without .T, view or "
                       "indexing that assume a 2-D mask"},
)
SEQ = Feature(
    "seq", ("same", "cross"),
    works={"same": "works when seq_q == seq_k", "cross": "works when seq_q != seq_k"},
    raises={"same": "raises when seq_q == seq_k", "cross": "raises for seq_q != seq_k (3 queries, 5 keys)"},
    advice={"same": "", "cross": "keep the two lengths apart: scores are [..., seq_q, seq_k], with seq_k = "
                                 "K.shape[-2], and V has seq_k rows"},
)
DTYPE = Feature(
    "dtype", ("float64", "float32"),
    works={"float64": "works in float64", "float32": "works in float32"},
    raises={"float64": "raises in float64", "float32": "raises in float32"},
    advice={v: "do not hard-code a dtype (dtype=torch.float64, .double(), .float()): make new tensors with "
               "the inputs' dtype (x.new_zeros, dtype=x.dtype)" for v in ("float64", "float32")},
)
_BATCH = {"2d": (), "3d": (2,), "4d": (2, 3)}
_FEATURES = {"linear_projections": (DIMS, DTYPE), "attention_scores": (DIMS, SEQ, DTYPE),
             "attention_weights": (MASK, DIMS, SEQ, DTYPE), "aggregate_values": (DIMS, SEQ, DTYPE)}


def _section(op: str) -> str:
    return next(s for s in ASSIGNMENT.sections if s != ASSIGNMENT.capstone and ASSIGNMENT.op(s) == op)


def features(op: str) -> Tuple[Feature, ...]:
    """The features of an op's inputs, most telling first."""
    return _FEATURES.get(op, (MASK, DIMS, SEQ, DTYPE))


def probe(op: str, kind: Dict[str, str]) -> Optional[Tuple[Any, ...]]:
    """The op's inputs of this kind (None: a mask with batch dims for 2-D inputs has none to have)."""
    batch = _BATCH[kind["dims"]]
    mask_kind = kind.get("mask", "none")
    if mask_kind == "batched" and not batch:
        return None
    seq_q, seq_k = (4, 4) if kind.get("seq", "same") == "same" else (3, 5)
    dtype = torch.float32 if kind["dtype"] == "float32" else torch.float64
    case = Case(batch=batch, seq_q=seq_q, seq_k=seq_k, d_k=8, d_v=8, seed=5, dtype=dtype)
    args = section_args(_section(op), case)
    if "mask" not in kind:
        return args
    mask = None if mask_kind == "none" else ref.causal_mask(seq_q, seq_k)
    if mask_kind == "batched":
        mask = mask.expand(*batch, seq_q, seq_k).clone()
    return args[:-1] + (mask,)


LADDER = Ladder(features=features, probe=probe)
