"""Exceptions that are not Exceptions: KeyboardInterrupt (ends a naive pytest session), SystemExit,
a BaseException subclass, and an exception whose message itself explodes."""
import torch


class Escape(BaseException):
    pass


class Unprintable(Exception):
    def __str__(self):
        raise SystemExit("str() of this exception exits")


class Huge(Exception):
    def __str__(self):
        return "::error::forged\n" * 100_000


def linear_projections(x, W_q, W_k, W_v):
    raise KeyboardInterrupt


def attention_scores(Q, K):
    raise SystemExit(0)


def attention_weights(scores, mask=None):
    raise Escape("not an Exception")


def aggregate_values(weights, V):
    raise Unprintable()


def scaled_dot_product_attention(Q, K, V, mask=None):
    raise Huge()
