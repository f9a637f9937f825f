"""The CNN child of SPEC §3: the network a :class:`pynas.arch.ConvNet` describes.

Layer i is conv(fh×fw, filters, stride) → batch norm → ReLU (→ optional 2×2 pooling) applied to
the depth concatenation of its inputs, or to the image if it has none. The conv pads by
(fh//2, fw//2), so a stride-1 layer keeps the spatial size and a stride-s layer gives
ceil(size/s).

Inputs of different spatial sizes are zero-padded to the largest height and width before the
channels are concatenated, by the compiled op :func:`pynas.ops.skip_concat`. **The padding goes
at the bottom and on the right**: a smaller map keeps its pixels at the top-left corner
[0:h, 0:w] of the larger canvas, so pixel (0, 0) of every input lines up. A layer with one input
uses it as is (nothing to pad or concatenate).

Every layer that no layer uses as input is concatenated (the same way) into the final layer,
which is global-average-pooled and fed to a linear classifier. Because padded zeros take part in
the average, a smaller map contributes its mean scaled by (h·w)/(H·W); the classifier's weights
absorb that constant factor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from pynas.arch.conv_net import ConvLayer, ConvNet
from pynas.ops import skip_concat, skip_concat_reference

ConcatFn = Callable[[Sequence[torch.Tensor]], torch.Tensor]
CONCAT_IMPLS: dict[str, ConcatFn] = {"op": skip_concat, "reference": skip_concat_reference}


class ConvBlock(nn.Sequential):
    """conv → (batch norm) → ReLU → (2×2 pooling) for one layer."""

    def __init__(self, layer: ConvLayer, in_channels: int) -> None:
        modules: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                layer.filters,
                kernel_size=(layer.fh, layer.fw),
                stride=layer.stride,
                padding=(layer.fh // 2, layer.fw // 2),
                bias=not layer.batch_norm,
            )
        ]
        if layer.batch_norm:
            modules.append(nn.BatchNorm2d(layer.filters))
        modules.append(nn.ReLU(inplace=True))
        if layer.pool == "max":
            modules.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        elif layer.pool == "avg":
            modules.append(nn.AvgPool2d(2, 2, ceil_mode=True))
        super().__init__(*modules)


class ConvChild(nn.Module):
    """Image classifier for a :class:`ConvNet`; `concat` is "op" (compiled) or "reference"."""

    def __init__(
        self,
        arch: ConvNet,
        num_classes: int = 10,
        image_channels: int = 3,
        concat: str = "op",
    ) -> None:
        super().__init__()
        if concat not in CONCAT_IMPLS:
            raise ValueError(f"concat must be one of {sorted(CONCAT_IMPLS)}, got {concat!r}")
        self.arch = arch
        self.concat_impl = concat
        self._concat_fn = CONCAT_IMPLS[concat]
        in_channels = arch.in_channels(image_channels)
        self.blocks = nn.ModuleList(
            ConvBlock(layer, c) for layer, c in zip(arch.layers, in_channels, strict=True)
        )
        self.outputs = arch.outputs
        final_channels = sum(arch.layers[i].filters for i in self.outputs)
        self.classifier = nn.Linear(final_channels, num_classes)

    def concat(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """Zero-pad `maps` bottom/right to the largest one and concatenate their channels."""
        if len(maps) == 1:
            return maps[0]
        return self._concat_fn(maps)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The final layer: the concatenation of all unused layers' outputs [N, C, H, W]."""
        outs: list[torch.Tensor] = []
        for layer, block in zip(self.arch.layers, self.blocks, strict=True):
            x = self.concat([outs[j] for j in layer.inputs]) if layer.inputs else images
            outs.append(block(x))
        return self.concat([outs[i] for i in self.outputs])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits [N, num_classes] for images [N, C, H, W]."""
        return self.classifier(self.features(images).mean(dim=(2, 3)))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
