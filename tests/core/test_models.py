"""Models: the ALFA-Mix split (embed + linear head), training on the CPU, weights, wrappers."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from alfaviz.data import from_arrays, load_digits
from alfaviz.errors import AlfavizInputError
from alfaviz.learner import models
from alfaviz.learner.models import (
    MLP,
    MODELS,
    EmbeddingModel,
    HookedSplitModel,
    ResNet18,
    SmallCNN,
    SplitModel,
    build_model,
    split_model,
)


def check_split_and_train(
    model: nn.Module, x: torch.Tensor, n_classes: int, *, train: bool = True
) -> None:
    """forward == head(embed) in eval; embed has embed_dim columns; one Adam step learns."""
    assert isinstance(model, EmbeddingModel)
    assert isinstance(model.head, nn.Linear)
    model.eval()
    with torch.no_grad():
        z = model.embed(x)
        logits = model(x)
    assert z.shape == (len(x), model.embed_dim)
    assert logits.shape == (len(x), n_classes)
    torch.testing.assert_close(logits, model.head(z))
    if not train:
        return
    model.train()
    y = torch.arange(len(x)) % n_classes
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert all(changed), "every parameter should get a gradient step"


@pytest.mark.parametrize(("channels", "size"), [(1, 8), (1, 28), (3, 32), (3, (12, 20)), (1, 4)])
def test_small_cnn_sizes(channels: int, size: int | tuple[int, int]) -> None:
    torch.manual_seed(0)
    hw = (size, size) if isinstance(size, int) else size
    model = SmallCNN(channels, 7, image_size=size, width=8, embed_dim=16)
    assert model.embed_dim == 16
    assert model.n_classes == 7
    check_split_and_train(model, torch.randn(4, channels, *hw), 7)


def test_mlp_and_linear_mlp() -> None:
    torch.manual_seed(0)
    model = MLP(5, 3, hidden=(16, 8))
    assert model.embed_dim == 8
    check_split_and_train(model, torch.randn(6, 5), 3)
    linear = MLP(5, 3, hidden=())
    assert linear.embed_dim == 5
    torch.testing.assert_close(linear.embed(torch.ones(2, 5)), torch.ones(2, 5))


@pytest.mark.parametrize(("channels", "size"), [(3, 8), (1, 8), (3, None)])
def test_resnet18_forward_and_step(channels: int, size: int | None) -> None:
    torch.manual_seed(0)
    model = ResNet18(4, in_channels=channels, image_size=size)
    assert model.embed_dim == 512
    side = size or 32  # small inputs keep the CPU test fast; the maths is the same
    # one optimisation step on one variant is enough (ResNet steps are slow on 2 CPU cores)
    train = channels == 3 and size is not None
    check_split_and_train(model, torch.randn(2, channels, side, side), 4, train=train)
    if size is not None:  # CIFAR stem: 3x3 stride-1 conv1 and no max-pool
        assert model.encoder.conv1.kernel_size == (3, 3)
        assert isinstance(model.encoder.maxpool, nn.Identity)
    else:
        assert model.encoder.conv1.kernel_size == (7, 7)


def test_dropout_only_on_the_head_path_in_training() -> None:
    torch.manual_seed(0)
    model = SmallCNN(1, 3, image_size=8, dropout=0.5)
    x = torch.randn(16, 1, 8, 8)
    model.train()
    z1, z2 = model.embed(x), model.embed(x)
    torch.testing.assert_close(z1, z2)  # embed never drops
    assert not torch.equal(model(x), model(x))  # forward drops in training
    model.eval()
    torch.testing.assert_close(model(x), model.head(model.embed(x)))
    assert MLP(3, 2).dropout.p == 0.0
    assert ResNet18(2).dropout.p == 0.2
    with pytest.raises(AlfavizInputError, match="dropout"):
        MLP(3, 2, dropout=1.0)


def test_resnet18_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = ResNet18(10, in_channels=3, image_size=8)
    # make the BatchNorm running statistics non-trivial, so they are checked too
    source.train()
    source(torch.randn(4, 3, 8, 8))
    path = tmp_path / "resnet.pt"
    torch.save(source.state_dict(), path)
    loaded = ResNet18(5, in_channels=3, image_size=8, weights_path=path)  # fc size differs
    assert loaded.config["weights_path"] == str(path)
    source.eval()
    loaded.eval()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed(x), source.embed(x))
    assert loaded.head.out_features == 5


def test_resnet18_loads_torchvision_state_dicts(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)  # 1000-class ImageNet layout
    torch.save({"state_dict": tv.state_dict()}, tmp_path / "ckpt.pth")
    model = ResNet18(3, weights_path=tmp_path / "ckpt.pth")
    tv.eval()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tv.fc = nn.Identity()
        torch.testing.assert_close(model.embed(x), tv(x))
    grey = ResNet18(3, in_channels=1, weights_path=tmp_path / "ckpt.pth")
    torch.testing.assert_close(grey.encoder.conv1.weight, tv.conv1.weight.sum(dim=1, keepdim=True))
    small = ResNet18(3, image_size=32, weights_path=tmp_path / "ckpt.pth")  # 7x7 -> 3x3 stem
    torch.testing.assert_close(small.encoder.layer1[0].conv1.weight, tv.layer1[0].conv1.weight)


def test_resnet18_bad_weights_files(tmp_path: Path) -> None:
    with pytest.raises(AlfavizInputError, match="does not exist"):
        ResNet18(2, weights_path=tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(AlfavizInputError, match="could not read"):
        ResNet18(2, weights_path=tmp_path / "junk.pt")
    torch.save(MLP(4, 2).state_dict(), tmp_path / "mlp.pt")
    with pytest.raises(AlfavizInputError, match="does not look like a ResNet-18"):
        ResNet18(2, weights_path=tmp_path / "mlp.pt")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(AlfavizInputError, match="not a state_dict"):
        ResNet18(2, weights_path=tmp_path / "list.pt")


class _Branchy(nn.Module):
    """A user network with the head buried in a submodule and work after the features."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh())
        self.side = nn.Linear(12, 6)
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(6, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.stem(x) * 2 + self.side(x.flatten(1)))


def test_split_model_embed_is_the_heads_input() -> None:
    torch.manual_seed(0)
    net = _Branchy().eval()
    wrapped = split_model(net, head_name="classifier.1")
    assert isinstance(wrapped, HookedSplitModel)
    assert wrapped.embed_dim == 6
    assert wrapped.n_classes == 4
    x = torch.randn(5, 3, 4)
    seen: list[torch.Tensor] = []
    handle = net.classifier[1].register_forward_hook(lambda m, a, o: seen.append(a[0]))
    out = net(x)
    handle.remove()
    torch.testing.assert_close(wrapped.embed(x), seen[0])
    torch.testing.assert_close(wrapped(x), out)
    torch.testing.assert_close(wrapped.head(wrapped.embed(x)), out)
    assert not net.classifier[1]._forward_pre_hooks  # the capture hook is removed
    # parameters are shared, not copied
    assert wrapped.head is net.classifier[1]
    check_split_and_train(wrapped, x, 4)
    # head_name=None picks the last nn.Linear registered
    assert split_model(net, head_name=None).head is net.classifier[1]


def test_split_model_on_torchvision_and_split_models() -> None:
    net = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    wrapped = split_model(net)  # head_name="fc"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(wrapped.head(wrapped.embed(x)), net(x))
    mlp = MLP(4, 2)
    assert split_model(mlp) is mlp


class _Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.spare = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_split_model_errors() -> None:
    net = _Branchy()
    with pytest.raises(AlfavizInputError, match=r"'stem\.1', 'side', 'classifier\.1'"):
        split_model(net)  # there is no "fc"
    with pytest.raises(AlfavizInputError, match=r"found a Sequential.*'classifier\.1'"):
        split_model(net, head_name="classifier")
    with pytest.raises(AlfavizInputError, match=r"no nn\.Linear"):
        split_model(nn.Sequential(nn.Conv2d(1, 2, 3)), head_name=None)
    with pytest.raises(AlfavizInputError, match="never called"):
        split_model(_Unused(), head_name="spare").embed(torch.randn(3, 4))
    with pytest.raises(AlfavizInputError, match=r"one nn\.Linear"):
        SplitModel(nn.Flatten(), nn.Sequential(nn.Linear(4, 2)))  # type: ignore[arg-type]
    bad = SplitModel(nn.Flatten(), nn.Linear(5, 2))
    with pytest.raises(AlfavizInputError, match=r"shape \(2, 4\).*\(n, 5\)"):
        bad.embed(torch.randn(2, 4))


def test_split_model_flattens_encoder_maps() -> None:
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1))  # (n, 4, 1, 1)
    model = SplitModel(encoder, nn.Linear(4, 3), dropout=0.3)
    check_split_and_train(model, torch.randn(5, 1, 6, 6), 3)


def test_build_model_choices() -> None:
    digits = load_digits()
    rng = np.random.default_rng(0)
    tab = from_arrays(rng.normal(size=(20, 6)), np.arange(20) % 2)
    big = from_arrays(rng.integers(0, 255, (8, 3, 48, 48), dtype=np.uint8), np.arange(8) % 2)
    assert type(build_model("auto", digits)) is SmallCNN
    assert type(build_model("auto", tab)) is MLP
    assert type(build_model("auto", big)) is ResNet18
    assert type(build_model("mlp", digits)) is MLP  # images are flattened
    assert type(build_model("ResNet18", digits)) is ResNet18
    model = build_model("cnn", digits, embed_dim=32, seed=0)
    assert model.embed_dim == 32
    assert model.config["image_size"] == [8, 8]
    check_split_and_train(model, digits.x_train[:8], digits.n_classes)
    mlp = build_model("mlp", tab, hidden=(7,))
    check_split_and_train(mlp, tab.x_train[:4], 2)
    assert set(MODELS) == {"auto", "cnn", "resnet18", "mlp", "linear"}


def test_build_model_seed_is_reproducible_and_private() -> None:
    digits = load_digits()
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = build_model("cnn", digits, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    b = build_model("cnn", digits, seed=7)
    c = build_model("cnn", digits, seed=8)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_build_model_errors() -> None:
    digits = load_digits()
    tab = from_arrays(np.random.default_rng(0).normal(size=(20, 6)), np.arange(20) % 2)
    with pytest.raises(AlfavizInputError, match=r"unknown model 'vit'.*'auto', 'cnn'"):
        build_model("vit", digits)
    with pytest.raises(AlfavizInputError, match="needs image data"):
        build_model("cnn", tab)
    with pytest.raises(AlfavizInputError, match=r"unknown option\(s\) \['depth'\].*embed_dim"):
        build_model("cnn", digits, depth=3)


def test_models_hold_no_device() -> None:
    source = inspect.getsource(models)
    assert ".cuda(" not in source
    assert "device=" not in source
