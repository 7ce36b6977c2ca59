"""The `embeddings` mistake catalogue: each classic mistake recomputed on the student's exact inputs.

Trusted side only, in the form of the attention catalogue (a mistake next to the rule that yields what a
student making it returns). Functions and their sections: token_embedding (token), sinusoidal_positions
(positions), embed (embed). embed is given its positions table, so the sinusoid mistakes live in positions.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from autograder.assignments.embeddings.contract import ASSIGNMENT
from autograder.diagnosis import Catalogue
from reference import embeddings as ref

CATALOGUE = Catalogue(ASSIGNMENT)
_mistake = CATALOGUE.mistake
WRONG_BASES = (100.0, 1000.0, 1e5, 1e6)


def angles(seq_len: int, d_model: int, *, base: float = 10000.0, first: int = 0, exponent: str = "2i") -> Tensor:
    """p / base^(k/d_model) `[seq_len, d_model / 2]` in float64, p = first, first + 1, ...; k = 2i ("2i",
    the contract) or i ("i")."""
    position = torch.arange(first, first + seq_len, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(d_model // 2, dtype=torch.float64)
    k = 2 * i if exponent == "2i" else i
    return position * base ** (-k / d_model)


def interleaved(a: Tensor) -> Tensor:
    """sin in the even columns, cos in the odd ones, in torch's default dtype (the contract's layout)."""
    return torch.stack((torch.sin(a), torch.cos(a)), dim=-1).flatten(-2).to(torch.get_default_dtype())


# ---------------------------------------------------------------- token_embedding: (ids, table)


@_mistake(
    "ids_from_one",
    "token",
    "your lookup reads row id - 1 (as if ids counted from 1); ids count from 0: token id i is row i of the "
    "table, table[ids]",
)
def _ids_from_one(ids: Tensor, table: Tensor) -> Iterator[Tensor]:
    yield table[ids - 1]


# ---------------------------------------------------------------- sinusoidal_positions: (seq_len, d_model)


@_mistake(
    "sin_cos_concatenated",
    "positions",
    "your table puts all the sines first and all the cosines after them (torch.cat([sin, cos], -1)); the "
    "contract interleaves them: column 2i holds sin, column 2i+1 the cos of the same frequency "
    "(pe[:, 0::2] = sin, pe[:, 1::2] = cos)",
)
def _sin_cos_concatenated(seq_len: int, d_model: int) -> Iterator[Tensor]:
    a = angles(seq_len, d_model)
    yield torch.cat((torch.sin(a), torch.cos(a)), dim=-1).to(torch.get_default_dtype())
    yield torch.cat((torch.cos(a), torch.sin(a)), dim=-1).to(torch.get_default_dtype())


@_mistake(
    "exponent_i_over_d",
    "positions",
    "your frequencies use 10000^(i/d_model) with i the pair index 0, 1, 2, ...; the contract's exponent is "
    "2i/d_model (the even column index over d_model), so frequencies fall from 1 to about 1/10000 across "
    "the table: torch.arange(0, d_model, 2) / d_model",
)
def _exponent_i_over_d(seq_len: int, d_model: int) -> Iterator[Tensor]:
    yield interleaved(angles(seq_len, d_model, exponent="i"))


@_mistake(
    "positions_from_one",
    "positions",
    "your first row is position 1; positions count from 0, so row 0 is sin(0) = 0, cos(0) = 1 in every "
    "pair: torch.arange(seq_len)",
)
def _positions_from_one(seq_len: int, d_model: int) -> Iterator[Tensor]:
    yield interleaved(angles(seq_len, d_model, first=1))


@_mistake(
    "wrong_base",
    "positions",
    "your frequencies use another base than 10000: the contract's angle is p / 10000^(2i/d_model)",
)
def _wrong_base(seq_len: int, d_model: int) -> Iterator[Tensor]:
    for base in WRONG_BASES:
        yield interleaved(angles(seq_len, d_model, base=base))


# ---------------------------------------------------------------- embed: (ids, table, positions)


@_mistake(
    "replaced_not_added",
    "embed",
    "your embed returns only one of the two parts; the contract adds them: token_embedding(ids, table) + "
    "positions[:seq], so each vector says both which token it is and where it stands",
)
def _replaced_not_added(ids: Tensor, table: Tensor, positions: Tensor) -> Iterator[Tensor]:
    tokens = ref.token_embedding(ids, table)
    yield tokens
    yield positions[: ids.shape[-1]].expand_as(tokens).clone()
