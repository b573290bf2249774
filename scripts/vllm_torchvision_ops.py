"""
Declare torchvision's nms/qnms operator schemas before torchvision registers fake kernels.

PyPI's torchvision wheel beside vLLM's CPU torch is a CUDA build: its ``_C`` extension does
not load on a CPU-only machine, and ``import torchvision`` then fails ("operator
torchvision::nms does not exist"). vLLM imports it through transformers' image processors.
scripts/setup_vllm.sh installs this module with a .pth file in vLLM's own venv only.
"""

import torch

for _name in ('nms', 'qnms'):
    try:
        torch.library.define(f'torchvision::{_name}',
                             '(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    except RuntimeError:
        pass  # a torchvision whose extension loaded has defined it already
