"""Auxiliary losses: the answer coordinates' L1 and the attention supervision."""

import torch


def coordinate_l1(logits: torch.Tensor, coords: dict, digit_ids: list[int]) -> torch.Tensor:
    """
    Mean |expected - true| over the answer coordinates.

    Each digit is its expectation under the model's distribution restricted to the ten digit
    tokens; a coordinate ``0.d1d2d3`` is then ``sum_k E[d_k] 10^-k``.
    """
    digit_logits = logits[coords['coord_batch'], coords['coord_position']][:, digit_ids]
    values = torch.arange(10, dtype=torch.float32, device=logits.device)
    expected_digits = digit_logits.float().softmax(-1) @ values
    scaled = expected_digits * 10.0 ** -coords['coord_place'].float()
    target = coords['coord_target'].float()
    expected = torch.zeros_like(target).index_add(0, coords['coord_number'], scaled)
    return (expected - target).abs().mean()


def attention_loss(attentions: tuple, batch: torch.Tensor, position: torch.Tensor,
                   target: torch.Tensor, heads: int = 1) -> torch.Tensor:
    """
    Mean -log(attention mass on the target tokens) of the supervised positions.

    Row ``r`` supervises the query ``position[r]`` of sample ``batch[r]`` towards the key
    tokens ``target[r]`` (a bool mask over the sequence, e.g. the image patches around a
    point). Taken in the first ``heads`` heads of every decoder layer but the first (which
    mixes the prompt); ``attentions`` are the model's (batch, heads, query, key) weights.
    """
    target = target.float()
    terms = [-torch.log((layer[batch, :heads, position] * target[:, None]).sum(-1) + 1e-4)
             .mean() for layer in attentions[1:]]
    return torch.stack(terms).mean()
