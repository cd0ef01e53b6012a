"""MobileCLIP's Text-RepMixer block on 1-D token sequences, and the reparameterizable parts it is made of.

The block (ml-mobileclip ``mobileclip/modules/text/repmixer.py``) mixes tokens with depthwise
convolutions along the sequence instead of attention: a RepMixer token mixer, then a convolutional
FFN, each added through a layer scale, with no LayerNorm. timm's 2-D FastViT/MobileOne blocks
assume square kernels and cannot be reused.

Every part takes and returns ``(B, L, C)`` tokens, the text tower's own layout, and convolves the
``(B, C, 1, L)`` view of them with the reference's ``(1, k)`` kernels. That view is channels-last
memory, the only layout in which oneDNN's depthwise convolution is fast: on a CPU, ``Conv1d`` on
``(B, C, L)`` is ~5x slower forward and backward, and needed a transpose on each side of the block.

Train-time branches fold into single depthwise convolutions at inference. Every module that folds
exposes ``reparameterize()`` and reads its children through ``fused_kernel_bias()``, which answers
the same before and after the child has folded itself, so any walk order works: timm's
``reparameterize_model`` (parents before children), or children first. Submodule names follow the reference (``rbr_conv``, ``rbr_skip``, ``token_mixer``,
``convffn``, ``layer_scale``, ...) so its block weights map over by key with the ``(C, 1, 1, k)``
conv weights squeezed to ``(C, 1, k)``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

LAYER_SCALE_INIT = 1e-5
# The reference asks MobileOne for a 1x1 scale branch only when kernel_size[0] > 1, which is never
# true for its (1, k) text kernels, so MobileCLIP-S0's text mixer (and its checkpoint) has none.
MIXER_SCALE_BRANCH = False

FusedKernel = tuple[torch.Tensor, torch.Tensor]


def _channels_view(tokens: torch.Tensor) -> torch.Tensor:
    """``(B, L, C)`` -> ``(B, C, 1, L)``, no copy: channels-last when the tokens are contiguous."""
    return tokens.transpose(1, 2).unsqueeze(2)


def _tokens_view(x: torch.Tensor) -> torch.Tensor:
    return x.squeeze(2).transpose(1, 2)


class SeqConv(nn.Conv1d):
    """A ``Conv1d`` (same parameters, same result) applied along the sequence of ``(B, L, C)``
    tokens, computed as a ``(1, k)`` ``Conv2d`` on their channels-last ``(B, C, 1, L)`` view."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(_channels_view(tokens), self.weight.unsqueeze(2), self.bias, (1, self.stride[0]),
                       (0, self.padding[0]), (1, self.dilation[0]), self.groups)
        return _tokens_view(out)


class SeqBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over the channels of ``(B, L, C)`` tokens, run on their channels-last
    ``(B, C, 1, L)`` view (a 3-D transposed view would come back channels-first, a copy)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected the (B, C, 1, L) view of (B, L, C) tokens, got {x.dim()}-d input")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return _tokens_view(super().forward(_channels_view(tokens)))


class ConvBN1d(nn.Sequential):
    """Depthwise bias-free convolution followed by BatchNorm: one foldable branch."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = SeqConv(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False)
        self.bn = SeqBatchNorm(channels)

    def fused_kernel_bias(self) -> FusedKernel:
        return _fold_bn(self.conv.weight, self.bn)


def _fold_bn(kernel: torch.Tensor, bn: nn.BatchNorm1d) -> FusedKernel:
    """Kernel and bias of ``bn(conv(x, kernel))`` as one convolution (BatchNorm in eval mode)."""
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    return kernel * scale.reshape(-1, 1, 1), bn.bias - bn.running_mean * scale


def _identity_kernel(channels: int, kernel_size: int, like: torch.Tensor) -> torch.Tensor:
    """Depthwise kernel whose convolution returns its input unchanged."""
    kernel = torch.zeros(channels, 1, kernel_size, dtype=like.dtype, device=like.device)
    kernel[:, 0, kernel_size // 2] = 1
    return kernel


def _depthwise_conv(channels: int, kernel_size: int, kernel: torch.Tensor, bias: torch.Tensor) -> SeqConv:
    conv = SeqConv(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=True)
    conv.weight.data.copy_(kernel.detach())
    conv.bias.data.copy_(bias.detach())
    return conv


class RepDepthwiseConv1d(nn.Module):
    """MobileOne-style depthwise 1-D convolution: the sum of ``conv_branches`` k-conv+BN branches,
    an optional 1-conv+BN scale branch and an optional BatchNorm identity branch, with no activation,
    so that it folds into one depthwise convolution with bias."""

    def __init__(self, channels: int, kernel_size: int, conv_branches: int = 1, scale_branch: bool = True,
                 identity: bool = True):
        super().__init__()
        if not (conv_branches or scale_branch or identity):
            raise ValueError("RepDepthwiseConv1d needs at least one branch")
        self.channels = channels
        self.kernel_size = kernel_size
        self.rbr_conv = nn.ModuleList(ConvBN1d(channels, kernel_size) for _ in range(conv_branches))
        self.rbr_scale = ConvBN1d(channels, 1) if scale_branch else None
        self.rbr_skip = SeqBatchNorm(channels) if identity else None
        self.reparam_conv: Optional[SeqConv] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        out = sum(branch(x) for branch in self.rbr_conv)
        if self.rbr_scale is not None:
            out = out + self.rbr_scale(x)
        if self.rbr_skip is not None:
            out = out + self.rbr_skip(x)
        return out

    def fused_kernel_bias(self) -> FusedKernel:
        """The single depthwise kernel and bias this module computes in eval mode."""
        if self.reparam_conv is not None:
            return self.reparam_conv.weight, self.reparam_conv.bias
        like = next(self.parameters())
        kernel = torch.zeros(self.channels, 1, self.kernel_size, dtype=like.dtype, device=like.device)
        bias = torch.zeros(self.channels, dtype=like.dtype, device=like.device)
        for branch in self.rbr_conv:
            k, b = branch.fused_kernel_bias()
            kernel, bias = kernel + k, bias + b
        if self.rbr_scale is not None:
            k, b = self.rbr_scale.fused_kernel_bias()
            pad = self.kernel_size // 2
            kernel, bias = kernel + nn.functional.pad(k, (pad, pad)), bias + b
        if self.rbr_skip is not None:
            k, b = _fold_bn(_identity_kernel(self.channels, self.kernel_size, like), self.rbr_skip)
            kernel, bias = kernel + k, bias + b
        return kernel, bias

    def reparameterize(self) -> None:
        if self.reparam_conv is not None:
            return
        self.reparam_conv = _depthwise_conv(self.channels, self.kernel_size, *self.fused_kernel_bias())
        del self.rbr_conv, self.rbr_scale, self.rbr_skip


class TextRepMixer(nn.Module):
    """RepMixer token mixer, ``x + layer_scale * (mixer(x) - norm(x))``: a depthwise k-conv added
    residually, with the mixer's and norm's BatchNorm identity branches cancelling at init."""

    def __init__(self, channels: int, kernel_size: int, layer_scale_init: float = LAYER_SCALE_INIT):
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.norm = RepDepthwiseConv1d(channels, kernel_size, conv_branches=0, scale_branch=False)
        self.mixer = RepDepthwiseConv1d(channels, kernel_size, conv_branches=1, scale_branch=MIXER_SCALE_BRANCH)
        self.layer_scale = nn.Parameter(layer_scale_init * torch.ones(channels, 1))
        self.reparam_conv: Optional[SeqConv] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.reparam_conv(x)
        return x + self.layer_scale.squeeze(-1) * (self.mixer(x) - self.norm(x))

    def reparameterize(self) -> None:
        """Fold mixer, norm, layer scale and the residual into one depthwise convolution (FastViT's
        RepMixer fold, in 1-D)."""
        if self.reparam_conv is not None:
            return
        mixer_kernel, mixer_bias = self.mixer.fused_kernel_bias()
        norm_kernel, norm_bias = self.norm.fused_kernel_bias()
        scale = self.layer_scale
        kernel = (_identity_kernel(self.channels, self.kernel_size, scale)
                  + scale.unsqueeze(-1) * (mixer_kernel - norm_kernel))
        bias = scale.squeeze(-1) * (mixer_bias - norm_bias)
        self.reparam_conv = _depthwise_conv(self.channels, self.kernel_size, kernel, bias)
        del self.mixer, self.norm, self.layer_scale


class ConvFFN(nn.Module):
    """Depthwise k-conv + BN, then a 1x1-conv MLP (``mlp_ratio`` expansion, GELU)."""

    def __init__(self, channels: int, kernel_size: int, mlp_ratio: float):
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.channels = channels
        self.kernel_size = kernel_size
        self.conv: nn.Module = ConvBN1d(channels, kernel_size)
        self.fc1 = SeqConv(channels, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = SeqConv(hidden, channels, 1)
        for conv in (self.conv.conv, self.fc1, self.fc2):  # the reference's init
            trunc_normal_(conv.weight, std=0.02)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.conv(x))))

    def reparameterize(self) -> None:
        """Fold the BatchNorm into the depthwise conv."""
        if isinstance(self.conv, ConvBN1d):
            self.conv = _depthwise_conv(self.channels, self.kernel_size, *self.conv.fused_kernel_bias())


class TextRepMixerBlock(nn.Module):
    """MobileCLIP Text-RepMixer block on ``(B, L, C)`` tokens: ``x = token_mixer(x)``, then
    ``x = x + layer_scale * convffn(x)``."""

    def __init__(self, channels: int, kernel_size: int = 11, mlp_ratio: float = 4.0,
                 layer_scale_init: float = LAYER_SCALE_INIT):
        super().__init__()
        self.token_mixer = TextRepMixer(channels, kernel_size, layer_scale_init)
        self.convffn = ConvFFN(channels, kernel_size, mlp_ratio)
        self.layer_scale = nn.Parameter(layer_scale_init * torch.ones(channels, 1))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`attn_mask` is accepted, as open_clip's stack passes it to every block, and unused: a
        centred convolution sees both sides, so a causal tower's mask cannot apply here."""
        x = self.token_mixer(x)
        return x + self.layer_scale.squeeze(-1) * self.convffn(x)
