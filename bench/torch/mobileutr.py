"""PyTorch reference of MobileUtr (Mobile U-ViT), MobileUtr-L and the U-Net baseline.

Benchmark-only code: the product never imports it. Module names, parameter names and
shapes are the official code's PyTorch state_dict keys (see ../../../shared/DESIGN.md §3
and ../../../shared/fixtures/mobileutr_seed0.weights.json); `check_fixtures.py` proves the
forward and backward match the fixtures.

Needs Debian's PyTorch (`apt-get install python3-torch`, run with /usr/bin/python3).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class DropPath(nn.Module):
    """Stochastic depth per sample (timm semantics: kept samples are scaled by 1/keep)."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)


class Residual(nn.Module):
    """x + fn(x); the attribute name `fn` is part of the state_dict keys."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class ConvUtr(nn.Module):
    """depth x {x += BN(GELU(dwconv kxk x)); x += BN(GELU(1x1 4c->c BN(GELU(1x1 c->4c x))))}
    then Conv3x3(cin->cout) + BN + ReLU (`up`)."""

    def __init__(self, ch_in, ch_out, depth=1, kernel=3):
        super().__init__()
        c, k = ch_in, kernel
        self.block = nn.Sequential(*[
            nn.Sequential(
                Residual(nn.Sequential(
                    nn.Conv2d(c, c, k, padding=k // 2, groups=c), nn.GELU(), nn.BatchNorm2d(c))),
                Residual(nn.Sequential(
                    nn.Conv2d(c, 4 * c, 1), nn.GELU(), nn.BatchNorm2d(4 * c),
                    nn.Conv2d(4 * c, c, 1), nn.GELU(), nn.BatchNorm2d(c))),
            ) for _ in range(depth)])
        self.up = nn.Sequential(
            nn.Conv2d(ch_in, ch_out, 3, padding=1), nn.BatchNorm2d(ch_out), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.up(self.block(x))


class Embeddings(nn.Module):
    """stem, layer1, MaxPool, layer2, MaxPool, layer3; returns (x2, (x0, x1, x2))."""

    def __init__(self, in_channels, dims, depths, kernels):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, dims[0], 3, padding=1), nn.BatchNorm2d(dims[0]), nn.ReLU(inplace=True))
        self.layer1 = ConvUtr(dims[0], dims[0], depths[0], kernels[0])
        self.layer2 = ConvUtr(dims[0], dims[1], depths[1], kernels[1])
        self.layer3 = ConvUtr(dims[1], dims[2], depths[2], kernels[2])
        self.down = nn.MaxPool2d(2, 2)

    def forward(self, x):
        x0 = self.layer1(self.stem(x))
        x1 = self.layer2(self.down(x0))
        x2 = self.layer3(self.down(x1))
        return x2, (x0, x1, x2)


class Mlp(nn.Module):
    """Token MLP: Linear c->h, GELU, Linear h->c."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class CMlp(nn.Module):
    """Conv MLP: grouped Conv3x3 c->h (groups c), GELU, grouped Conv3x3 h->c (groups c)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 3, padding=1, groups=dim)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 3, padding=1, groups=dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class GlobalSparseAttn(nn.Module):
    """MHSA on tokens [B,N,C]; with ratio r>1 the tokens are decimated first (AvgPool k=1
    stride r = top-left pixel of each rxr cell) and the result is spread back by a depthwise
    ConvTranspose (k=r, stride r, bias) followed by LayerNorm (eps 1e-5); then proj."""

    def __init__(self, dim, heads, ratio=1):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ratio = ratio
        if ratio > 1:
            self.sampler = nn.AvgPool2d(1, ratio)
            self.LocalProp = nn.ConvTranspose2d(dim, dim, ratio, stride=ratio, groups=dim)
            self.norm = nn.LayerNorm(dim)  # eps 1e-5 (PyTorch default), unlike norm1/norm2

    def forward(self, x, H, W):
        B, N, C = x.shape
        r = self.ratio
        if r > 1:
            x = self.sampler(x.transpose(1, 2).reshape(B, C, H, W)).flatten(2).transpose(1, 2)
        hd = C // self.heads
        qkv = self.qkv(x).reshape(B, -1, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, n, hd]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, -1, C)
        if r > 1:
            x = x.transpose(1, 2).reshape(B, C, H // r, W // r)
            x = self.LocalProp(x).reshape(B, C, -1).transpose(1, 2)
            x = self.norm(x)
        return self.proj(x)


class LocalAgg(nn.Module):
    """Sigmoid-gated local aggregation (x = x + x*(sigmoid(branch) - 0.5), three times).
    DropPath acts on the pre-sigmoid branch of the 2nd and 3rd gates, not on the 1st."""

    def __init__(self, dim, mlp_ratio=4, drop_path=0.0):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 9, padding=4, groups=dim)
        self.norm1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, 9, padding=4, groups=dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = CMlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + x * (torch.sigmoid(self.pos_embed(x)) - 0.5)
        a = self.conv2(self.attn(self.conv1(self.norm1(x))))
        x = x + x * (torch.sigmoid(self.drop_path(a)) - 0.5)
        m = self.mlp(self.norm2(x))
        x = x + x * (torch.sigmoid(self.drop_path(m)) - 0.5)
        return x


class SelfAttn(nn.Module):
    """x += dw3x3(x); tokens; x += DropPath(Attn(LN(x))); x += DropPath(MLP(LN(x))) (LN eps 1e-6)."""

    def __init__(self, dim, heads, ratio=1, mlp_ratio=4, drop_path=0.0):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = GlobalSparseAttn(dim, heads, ratio)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.pos_embed(x)
        B, C, H, W = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = t + self.drop_path(self.attn(self.norm1(t), H, W))
        t = t + self.drop_path(self.mlp(self.norm2(t)))
        return t.transpose(1, 2).reshape(B, C, H, W)


class LGLBlock(nn.Module):
    """LocalAgg (only when ratio > 1, else identity) then SelfAttn."""

    def __init__(self, dim, heads, ratio, drop_path):
        super().__init__()
        self.LocalAgg = LocalAgg(dim, 4, drop_path) if ratio > 1 else nn.Identity()
        self.SelfAttn = SelfAttn(dim, heads, ratio, 4, drop_path)

    def forward(self, x):
        return self.SelfAttn(self.LocalAgg(x))


class up_conv(nn.Module):
    """upsample x2 then Conv3x3 + BN + ReLU (`up.0` is the parameter-free upsampler)."""

    def __init__(self, ch_in, ch_out, mode="bilinear"):
        super().__init__()
        ups = nn.UpsamplingBilinear2d(scale_factor=2) if mode == "bilinear" else nn.Upsample(scale_factor=2)
        self.up = nn.Sequential(
            ups, nn.Conv2d(ch_in, ch_out, 3, padding=1), nn.BatchNorm2d(ch_out), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.up(x)


class conv_block(nn.Module):
    """(Conv3x3 + BN + ReLU) twice."""

    def __init__(self, ch_in, ch_out):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(ch_in, ch_out, 3, padding=1), nn.BatchNorm2d(ch_out), nn.ReLU(inplace=True),
            nn.Conv2d(ch_out, ch_out, 3, padding=1), nn.BatchNorm2d(ch_out), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.conv(x)


class MobileUtr(nn.Module):
    """MobileUtr / Mobile U-ViT. `drop_path` applies to the LGL (ratio 2) bottleneck blocks
    only; the transformer bottleneck (ratio 1) never drops paths."""

    def __init__(self, in_channels=3, num_classes=1, dims=(16, 32, 64, 128), depths=(1, 1, 3, 3, 3),
                 kernels=(3, 3, 7), heads=4, drop_path=0.1):
        super().__init__()
        self.in_channels = in_channels
        self.patch_embeddings = Embeddings(in_channels, dims, depths, kernels)
        self.lklgl_bottleneck = nn.ModuleList(
            [LGLBlock(dims[2], heads, 2, drop_path) for _ in range(depths[3])])
        self.transformer_bottleneck = nn.ModuleList(
            [LGLBlock(dims[3], heads, 1, 0.0) for _ in range(depths[4])])
        self.down = nn.MaxPool2d(2, 2)
        self.expend_dims = conv_block(dims[2], dims[3])
        self.reduce_dims = conv_block(dims[3], dims[2])
        self.Up_conv4 = conv_block(2 * dims[2], dims[2])
        self.Up3 = up_conv(dims[2], dims[1])
        self.Up_conv3 = conv_block(2 * dims[1], dims[1])
        self.Up2 = up_conv(dims[1], dims[0])
        self.Up_conv2 = conv_block(2 * dims[0], dims[0])
        self.Up1 = up_conv(dims[0], dims[0])
        self.head = nn.Conv2d(dims[0], num_classes, 1)

    def set_drop_path(self, p):
        """Set the DropPath rate of the LGL bottleneck (e.g. 0 for deterministic gradients)."""
        for m in self.lklgl_bottleneck.modules():
            if isinstance(m, DropPath):
                m.p = float(p)
        return self

    def forward(self, x):
        if x.shape[1] == 1 and self.in_channels != 1:
            x = x.repeat(1, self.in_channels, 1, 1)  # official: grayscale -> 3 channels
        x, (s0, s1, s2) = self.patch_embeddings(x)
        x = self.down(x)
        for blk in self.lklgl_bottleneck:
            x = blk(x)
        x = self.expend_dims(x)
        for blk in self.transformer_bottleneck:
            x = blk(x)
        x = self.reduce_dims(x)
        x = self.Up_conv4(torch.cat((x, self.down(s2)), dim=1))
        x = self.Up_conv3(torch.cat((self.Up3(x), self.down(s1)), dim=1))
        x = self.Up_conv2(torch.cat((self.Up2(x), self.down(s0)), dim=1))
        return self.head(self.Up1(x))


def mobileutr(in_channels=3, num_classes=1, drop_path=0.1):
    return MobileUtr(in_channels, num_classes, drop_path=drop_path)


def mobileutr_l(in_channels=3, num_classes=1, drop_path=0.1):
    return MobileUtr(in_channels, num_classes, dims=(32, 64, 128, 256), depths=(1, 1, 3, 3, 4),
                     kernels=(3, 3, 7), heads=8, drop_path=drop_path)


class UNet(nn.Module):
    """U-Net baseline: 64-128-256-512-1024 double-conv encoder, nearest-x2 up-convs,
    concat (skip, decoder), 1x1 head."""

    def __init__(self, in_channels=3, num_classes=1):
        super().__init__()
        f = (64, 128, 256, 512, 1024)
        self.Maxpool = nn.MaxPool2d(2, 2)
        self.Conv1 = conv_block(in_channels, f[0])
        self.Conv2 = conv_block(f[0], f[1])
        self.Conv3 = conv_block(f[1], f[2])
        self.Conv4 = conv_block(f[2], f[3])
        self.Conv5 = conv_block(f[3], f[4])
        self.Up5 = up_conv(f[4], f[3], "nearest")
        self.Up_conv5 = conv_block(f[4], f[3])
        self.Up4 = up_conv(f[3], f[2], "nearest")
        self.Up_conv4 = conv_block(f[3], f[2])
        self.Up3 = up_conv(f[2], f[1], "nearest")
        self.Up_conv3 = conv_block(f[2], f[1])
        self.Up2 = up_conv(f[1], f[0], "nearest")
        self.Up_conv2 = conv_block(f[1], f[0])
        self.Conv_1x1 = nn.Conv2d(f[0], num_classes, 1)

    def forward(self, x):
        x1 = self.Conv1(x)
        x2 = self.Conv2(self.Maxpool(x1))
        x3 = self.Conv3(self.Maxpool(x2))
        x4 = self.Conv4(self.Maxpool(x3))
        x5 = self.Conv5(self.Maxpool(x4))
        d = self.Up_conv5(torch.cat((x4, self.Up5(x5)), dim=1))
        d = self.Up_conv4(torch.cat((x3, self.Up4(d)), dim=1))
        d = self.Up_conv3(torch.cat((x2, self.Up3(d)), dim=1))
        d = self.Up_conv2(torch.cat((x1, self.Up2(d)), dim=1))
        return self.Conv_1x1(d)


MODELS = {"mobileutr": mobileutr, "mobileutr-l": mobileutr_l, "unet": lambda **kw: UNet(**kw)}


def build(name, **kw):
    """build('mobileutr' | 'mobileutr-l' | 'unet', in_channels=3, num_classes=1[, drop_path])"""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name](**kw)


def segmentation_loss(logits, target):
    """0.5*BCEWithLogits(mean) + 1 - mean_b[(2*sum(p*t)+1e-5)/(sum p + sum t + 1e-5)],
    p = sigmoid(logits), sums per sample over channels and pixels (official BceDiceLoss)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    b = logits.shape[0]
    p = torch.sigmoid(logits).reshape(b, -1)
    t = target.reshape(b, -1)
    dice = (2 * (p * t).sum(1) + 1e-5) / (p.sum(1) + t.sum(1) + 1e-5)
    return 0.5 * bce + (1 - dice.mean())


def count_params(model):
    return sum(p.numel() for p in model.parameters())
