# Reference values for test/nn/transunet-loss.test.ts: TransUNet's loss (trainer.py: 0.5*CE + 0.5*DiceLoss(softmax=True),
# utils.DiceLoss with squared sums) on deterministic inputs. Run with Debian's torch: /usr/bin/python3 test/nn/transunet-loss-facts.py
import math, torch
import torch.nn as nn

class DiceLoss(nn.Module):  # utils.DiceLoss of Beckschen/TransUNet, restated
    def __init__(self, n_classes):
        super().__init__(); self.n_classes = n_classes
    def _dice_loss(self, score, target):
        smooth = 1e-5
        intersect = torch.sum(score * target)
        y_sum = torch.sum(target * target)
        z_sum = torch.sum(score * score)
        return 1 - (2 * intersect + smooth) / (z_sum + y_sum + smooth)
    def forward(self, inputs, target):
        inputs = torch.softmax(inputs, dim=1)
        target = torch.stack([target == i for i in range(self.n_classes)], dim=1).double()
        return sum(self._dice_loss(inputs[:, i], target[:, i]) for i in range(self.n_classes)) / self.n_classes

N, K, H, W = 2, 3, 4, 5
logits = torch.tensor([2 * math.sin(0.37 * i) for i in range(N * K * H * W)], dtype=torch.float64).reshape(N, K, H, W)
labels = torch.tensor([(i * 7 + i // 3) % K for i in range(N * H * W)]).reshape(N, H, W)
ce = nn.CrossEntropyLoss()(logits, labels)
dice = DiceLoss(K)(logits, labels)
print(repr((0.5 * ce + 0.5 * dice).item()), repr(ce.item()), repr(dice.item()))
