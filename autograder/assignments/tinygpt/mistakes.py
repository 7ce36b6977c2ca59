"""The `tinygpt` mistake catalogue: each classic mistake recomputed on the student's exact inputs.

Trusted side only. The function is gpt_forward (section forward); the rules rebuild the forward pass from
the reference's pieces with one piece changed. The milestone has no rules of its own: a forward with one
of these mistakes trains to a model that the reference forward finds bad.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Optional

from torch import Tensor

from autograder.assignments.tinygpt.contract import ASSIGNMENT
from autograder.diagnosis import Catalogue
from reference.block import layer_norm, transformer_block
from reference.embeddings import embed
from reference.multihead import causal_mask
from reference.tinygpt import block_indices, block_params

CATALOGUE = Catalogue(ASSIGNMENT)
_mistake = CATALOGUE.mistake
Params = Dict[str, Tensor]


def forward(ids: Tensor, params: Params, n_heads: int, *, masked: bool = True,
            order: Callable[[Params], List[int]] = block_indices, final_norm: bool = True,
            length_check: bool = True) -> Tensor:
    """The reference forward with one piece swapped (the defaults give the reference)."""
    if length_check and ids.shape[-1] > params["wpe"].shape[0]:
        raise ValueError("sequence longer than wpe")
    x = embed(ids, params["wte"], params["wpe"])
    mask: Optional[Tensor] = causal_mask(ids.shape[-1]) if masked else None
    for index in order(params):
        x = transformer_block(x, block_params(params, index), n_heads, mask)
    if final_norm:
        x = layer_norm(x, params["ln_f.gamma"], params["ln_f.beta"])
    return x @ params["wte"].T


def _string_order(params: Params) -> List[int]:
    return [int(i) for i in sorted({str(i) for i in block_indices(params)})]


def _dict_order(params: Params) -> List[int]:
    return list(dict.fromkeys(int(key.split(".")[1]) for key in params if key.startswith("h.")))


@_mistake(
    "no_causal_mask",
    "forward",
    "your model lets each position attend to later ones: a language model predicts token t+1 from tokens "
    "0..t only, so every block needs the causal mask (True where key <= query): causal_mask(seq)",
)
def _no_causal_mask(ids: Tensor, params: Params, n_heads: int) -> Iterator[Tensor]:
    yield forward(ids, params, n_heads, masked=False)


@_mistake(
    "blocks_in_string_order",
    "forward",
    "your blocks run in another order than their numbers: sorting the keys as strings puts h.10 before "
    "h.2, and a dict's order is not the model's; take the block numbers as ints, sorted: 0, 1, ..., L-1",
)
def _blocks_in_string_order(ids: Tensor, params: Params, n_heads: int) -> Iterator[Tensor]:
    yield forward(ids, params, n_heads, order=_string_order)
    yield forward(ids, params, n_heads, order=_dict_order)


@_mistake(
    "no_final_layer_norm",
    "forward",
    "your logits come straight from the last block; GPT-2 normalises first: layer_norm(x, ln_f.gamma, "
    "ln_f.beta) @ wte^T",
)
def _no_final_layer_norm(ids: Tensor, params: Params, n_heads: int) -> Iterator[Tensor]:
    yield forward(ids, params, n_heads, final_norm=False)


@_mistake(
    "no_length_check",
    "forward",
    "your forward does not check the sequence length: wpe has one row per position, so a longer sequence has "
    "no position embedding; raise ValueError when ids.shape[-1] > params['wpe'].shape[0]",
)
def _no_length_check(ids: Tensor, params: Params, n_heads: int) -> Iterator[Tensor]:
    yield forward(ids, params, n_heads, length_check=False)
