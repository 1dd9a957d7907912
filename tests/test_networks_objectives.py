"""Networks (parameter counts, key layout) and objectives against hand-computed values."""

import math

import pytest
import torch
from torch import nn

from engine.config import Config, preset
from engine.models.networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    build_critic,
    build_generator,
    count_parameters,
    generator_arch_from_state_dict,
    init_weights,
    receptive_field,
)
from engine.models.objectives import (
    LSGAN,
    OBJECTIVES,
    WGANGP,
    VanillaGAN,
    WGANClip,
    build_objective,
    clip_weights,
    cycle_loss,
    gradient_penalty,
    identity_loss,
)
from engine.models.pool import ImagePool


# --- networks -------------------------------------------------------------------------------
def test_paper_generator_parameter_count_and_keys():
    g = ResnetGenerator(3, 3, ngf=64, n_blocks=9)
    assert count_parameters(g) == 11_378_179
    keys = list(g.state_dict())
    assert keys[0] == "model.1.weight" and keys[-1] == "model.26.bias"
    convs = sorted({int(k.split(".")[1]) for k in keys})
    assert convs == [1, 4, 7, *range(10, 19), 19, 22, 26]
    assert "model.10.conv_block.1.weight" in keys and "model.18.conv_block.5.bias" in keys
    assert tuple(g.state_dict()["model.19.weight"].shape) == (256, 128, 3, 3)  # ConvTranspose2d (in, out, k, k)


def test_paper_patchgan_parameter_count_keys_and_receptive_field():
    d = NLayerDiscriminator(3, ndf=64, n_layers=3)
    assert count_parameters(d) == 2_764_737
    assert list(d.state_dict()) == [f"model.{i}.{w}" for i in (0, 2, 5, 8, 11) for w in ("weight", "bias")]
    assert receptive_field(3) == 70


def test_six_block_generator_ends_at_index_23():
    g = ResnetGenerator(3, 3, ngf=64, n_blocks=6)
    assert list(g.state_dict())[-1] == "model.23.bias"
    assert generator_arch_from_state_dict(g.state_dict()) == {
        "family": "resnet", "input_nc": 3, "output_nc": 3, "ngf": 64, "n_blocks": 6, "upsample": "transpose",
        "input_skip": False}


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
@pytest.mark.parametrize("hw", [(32, 32), (36, 52)])
def test_generator_keeps_size_and_range(upsample, hw):
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=2, upsample=upsample)
    x = torch.randn(2, 3, *hw)
    y = g(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0


def test_input_skip_starts_as_the_identity_and_describes_itself():
    cfg = preset("cpu-quick").with_values(netG="resnet", ngf=8, n_blocks=2, input_skip=True)
    g = build_generator(cfg)
    plain = ResnetGenerator(3, 3, ngf=8, n_blocks=2, upsample=cfg.model.upsample)
    assert count_parameters(g) == count_parameters(plain)  # a buffer, no new parameters
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    torch.testing.assert_close(g(x), 0.999 * x, rtol=1e-6, atol=1e-6)  # last conv zeroed: the identity (×0.999)
    # Output = tanh(atanh(0.999·x) + net(x)): a last bias of b maps 0 to tanh(b) and 0.999·x to
    # (0.999·x + tanh b) / (1 + 0.999·x·tanh b), the tanh addition theorem.
    with torch.no_grad():
        g.model[-2].bias.fill_(math.atanh(0.5))
    torch.testing.assert_close(g(torch.zeros(1, 3, 8, 8)), torch.full((1, 3, 8, 8), 0.5))
    xs = 0.999 * x.double()
    torch.testing.assert_close(g(x).double(), (xs + 0.5) / (1 + 0.5 * xs), rtol=1e-5, atol=1e-5)
    # Pixels at the extremes keep a gradient (a clamp would give them none): d out / d b = 1 − out².
    g.zero_grad()
    g(torch.ones(1, 3, 8, 8)).sum().backward()
    out = math.tanh(math.atanh(0.999) + math.atanh(0.5))
    torch.testing.assert_close(g.model[-2].bias.grad, torch.full((3,), 64 * (1 - out**2)), rtol=1e-4, atol=0)
    sd = g.state_dict()
    assert "skip_scale" in sd and generator_arch_from_state_dict(sd)["input_skip"] is True
    assert "skip_scale" not in plain.state_dict()
    from engine.errors import CheckpointError
    from engine.io.checkpoint_files import check_architecture

    with pytest.raises(CheckpointError, match="expected False input skip, found True"):
        check_architecture(cfg.with_values(input_skip=False), sd, "G")
    # Translation rebuilds the skip from the state_dict alone.
    from engine.models.networks import generator_from_state_dict

    again = generator_from_state_dict(sd, "G")
    assert again.input_skip and torch.equal(again(x), g.eval()(x))


def test_unnormalised_generator_keeps_its_signal_scale():
    """norm none: He init and zeroed residual branches; the paper's N(0, 0.02) would shrink the signal ~40×."""
    torch.manual_seed(0)
    cfg = preset("cpu-quick").with_values(netG="resnet", ngf=16, n_blocks=6, norm="none", input_skip=False)
    g = build_generator(cfg)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    feats = g.model[:-2](x)  # what the output conv sees
    blocks = [m for m in g.model if m.__class__.__name__ == "ResnetBlock"]
    h = g.model[:10](x)
    assert torch.equal(blocks[0](h), h)  # each residual block starts as the identity
    assert 0.2 < feats.std().item() < 5.0
    paper_init = init_weights(ResnetGenerator(3, 3, ngf=16, n_blocks=6, norm="none"))
    assert paper_init.model[:-2](x).std().item() < 0.05 * feats.std().item()


def test_resize_conv_has_no_checkerboard_on_constant_input():
    # A transposed conv with stride 2 gives uneven overlap: a constant input yields a periodic pattern.
    # Nearest upsampling + conv keeps a constant interior constant.
    torch.manual_seed(0)
    from engine.models.networks import ResizeConv

    up = ResizeConv(4, 4, True)
    y = up(torch.ones(1, 4, 8, 8))[..., 2:-2, 2:-2]
    assert torch.allclose(y, y[..., :1, :1].expand_as(y), atol=1e-6)
    tconv = nn.ConvTranspose2d(4, 4, 3, 2, 1, output_padding=1)
    z = tconv(torch.ones(1, 4, 8, 8))[..., 2:-2, 2:-2]
    assert not torch.allclose(z, z[..., :1, :1].expand_as(z), atol=1e-3)


def test_init_is_normal_002_and_seeded():
    cfg = preset("paper").with_values(netG="resnet")
    torch.manual_seed(0)
    g = build_generator(cfg)
    w = g.model[1].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002
    assert float(g.model[1].bias.detach().abs().max()) == 0.0
    torch.manual_seed(0)
    assert torch.equal(build_generator(cfg).model[1].weight, w)


def test_critic_norm_choices_and_spectral_norm():
    for norm in ("instance", "layer", "none"):
        cfg = Config().with_values(ndf=8, norm_D=norm, crop_size=32, load_size=32)
        d = build_critic(cfg)
        assert d.score(torch.randn(3, 3, 32, 32)).shape == (3,)
    d = build_critic(Config().with_values(ndf=8, spectral_norm=True, crop_size=32, load_size=32))
    assert any("parametrizations" in k for k in d.state_dict())


def test_arch_detection_errors():
    with pytest.raises(ValueError, match="U-Net"):
        generator_arch_from_state_dict({"model.model.0.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="not a CycleGAN ResNet generator"):
        generator_arch_from_state_dict({"fc.weight": torch.zeros(2, 2)})


# --- objectives -----------------------------------------------------------------------------
class ConstCritic(nn.Module):
    """Outputs a fixed patch map per input batch, to check losses by hand."""

    def __init__(self, real_out, fake_out):
        super().__init__()
        self.real_out, self.fake_out = real_out, fake_out

    def forward(self, x):
        return self.real_out if x.sum() > 0 else self.fake_out


def test_lsgan_losses_by_hand():
    real_out = torch.tensor([[[[0.5, 1.0]]]])  # (1, 1, 1, 2)
    fake_out = torch.tensor([[[[0.2, -0.4]]]])
    crit = ConstCritic(real_out, fake_out)
    real, fake = torch.ones(1, 3, 4, 4), -torch.ones(1, 3, 4, 4)
    d = LSGAN().d_loss(crit, real, fake)
    # 0.5·(mean((0.5−1)², (1−1)²) + mean(0.2², 0.4²)) = 0.5·(0.125 + 0.1)
    assert math.isclose(d.loss.item(), 0.5 * (0.125 + 0.1), rel_tol=1e-6)
    g = LSGAN().g_loss(crit, fake)  # mean((0.2−1)², (−0.4−1)²) = (0.64 + 1.96)/2
    assert math.isclose(float(g), 1.3, rel_tol=1e-6)


def test_vanilla_losses_by_hand():
    real_out = torch.tensor([[[[2.0]]]])
    fake_out = torch.tensor([[[[-1.0]]]])
    crit = ConstCritic(real_out, fake_out)
    real, fake = torch.ones(1, 3, 4, 4), -torch.ones(1, 3, 4, 4)
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    d = VanillaGAN().d_loss(crit, real, fake)
    # −½[log σ(2) + log(1 − σ(−1))]: the log loss E[log D(b)] + E[log(1 − D(G(a)))], negated
    assert math.isclose(d.loss.item(), -0.5 * (math.log(sig(2.0)) + math.log(1 - sig(-1.0))), rel_tol=1e-6)
    g = VanillaGAN().g_loss(crit, fake)  # non-saturating: −log σ(−1)
    assert math.isclose(g.item(), -math.log(sig(-1.0)), rel_tol=1e-6)


def test_vanilla_is_stable_for_extreme_logits():
    crit = ConstCritic(torch.full((1, 1, 1, 1), 200.0), torch.full((1, 1, 1, 1), -200.0))
    d = VanillaGAN().d_loss(crit, torch.ones(1, 3, 2, 2), -torch.ones(1, 3, 2, 2))
    g = VanillaGAN().g_loss(crit, -torch.ones(1, 3, 2, 2))
    assert math.isfinite(d.loss.item()) and d.loss.item() < 1e-6
    assert math.isclose(float(g), 200.0, rel_tol=1e-6)


class LinearCritic(nn.Module):
    """f(x) = w·x, one scalar per image."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def score(self, x):
        return (x.flatten(1) * self.w.flatten()).sum(1)

    def forward(self, x):
        return self.score(x).view(-1, 1, 1, 1)


def test_gradient_penalty_on_linear_critic_is_exact():
    torch.manual_seed(0)
    w = torch.randn(3, 2, 2)
    crit = LinearCritic(w)
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    gp, norm = gradient_penalty(crit.score, real, fake)
    expected = (float(w.norm()) - 1.0) ** 2
    assert math.isclose(gp.item(), expected, rel_tol=1e-5)
    assert math.isclose(float(norm), float(w.norm()), rel_tol=1e-5)
    d = WGANGP(lambda_gp=10.0).d_loss(crit, real, fake)
    f_real, f_fake = crit.score(real).mean().item(), crit.score(fake).mean().item()
    assert math.isclose(d.loss.item(), f_fake - f_real + 10.0 * expected, rel_tol=1e-5)
    assert math.isclose(d.critic_gap, f_real - f_fake, rel_tol=1e-5)


def test_penalty_and_loss_use_the_same_per_image_scalar():
    """A penalty on the patch map (sum over P patches) would be P² times larger than on the mean."""
    torch.manual_seed(0)
    crit = NLayerDiscriminator(3, ndf=4, n_layers=1, norm="none")
    real, fake = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    gen = torch.Generator().manual_seed(1)
    d = WGANGP(lambda_gp=1.0).d_loss(crit, real, fake, gen)
    # Recompute with the same ε and the per-image mean score by hand.
    eps = torch.rand(2, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(crit(x_hat).mean(dim=(1, 2, 3)).sum(), x_hat)
    norm = grad.flatten(1).norm(dim=1)
    f_real, f_fake = crit(real).mean(), crit(fake).mean()
    expected = (f_fake - f_real + ((norm - 1) ** 2).mean()).item()
    assert math.isclose(d.loss.item(), expected, rel_tol=1e-5)
    # The patch-map version differs: the test above would fail if the penalty used it.
    (grad_sum,) = torch.autograd.grad(crit(x_hat).sum(), x_hat)
    patch_version = (f_fake - f_real + ((grad_sum.flatten(1).norm(dim=1) - 1) ** 2).mean()).item()
    assert not math.isclose(patch_version, expected, rel_tol=1e-2)


def test_wgan_clip_loss_and_clipping_bounds():
    torch.manual_seed(0)
    crit = NLayerDiscriminator(3, ndf=4, n_layers=1, norm="none")
    for p in crit.parameters():
        nn.init.normal_(p, 0, 1.0)
    obj = WGANClip(0.01)
    real, fake = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    d = obj.d_loss(crit, real, fake)
    assert math.isclose(d.loss.item(), (crit.score(fake).mean() - crit.score(real).mean()).item(), rel_tol=1e-5)
    assert math.isclose(obj.g_loss(crit, fake).item(), -crit.score(fake).mean().item(), rel_tol=1e-5)
    obj.after_d_step(crit)
    assert all(p.abs().max().item() <= 0.01 for p in crit.parameters())
    assert any(math.isclose(p.abs().max().item(), 0.01, rel_tol=1e-6) for p in crit.parameters())


def test_cycle_and_identity_losses_are_l1_means():
    a = torch.zeros(1, 3, 2, 2)
    b = torch.full((1, 3, 2, 2), 0.5)
    b[0, 0, 0, 0] = -1.0
    expected = (11 * 0.5 + 1.0) / 12
    assert math.isclose(float(cycle_loss(b, a)), expected, rel_tol=1e-6)
    assert math.isclose(float(identity_loss(b, a)), expected, rel_tol=1e-6)


def test_objective_factory():
    assert set(OBJECTIVES) == {"vanilla", "lsgan", "wgan-clip", "wgan-gp"}
    assert isinstance(build_objective(Config().with_values(gan_mode="wgan-gp")), WGANGP)
    assert build_objective(Config().with_values(gan_mode="wgan-clip", clip_value=0.05)).clip_value == 0.05


def test_clip_weights_clamps_in_place():
    m = nn.Linear(3, 3)
    with torch.no_grad():
        m.weight.fill_(5.0)
    clip_weights(m, 0.1)
    assert m.weight.max().item() == pytest.approx(0.1)


# --- pool -----------------------------------------------------------------------------------
def test_pool_fills_then_mixes_history_and_round_trips():
    pool = ImagePool(3)
    gen = torch.Generator().manual_seed(0)
    imgs = [torch.full((1, 1, 1, 1), float(i)) for i in range(20)]
    outs = [float(pool.query(x, gen)) for x in imgs[:3]]
    assert outs == [0.0, 1.0, 2.0]  # while filling, the images themselves
    assert sorted(float(t) for t in pool.images) == [0.0, 1.0, 2.0]
    seen_old = seen_new = 0
    for i, x in enumerate(imgs[3:], start=3):
        y = float(pool.query(x, gen))
        if y == i:
            seen_new += 1
        else:
            assert y < i  # an older image, which the new one replaced
            seen_old += 1
        assert len(pool.images) == 3
    assert seen_old > 0 and seen_new > 0
    state = pool.state_dict()
    p2 = ImagePool(3)
    p2.load_state_dict(state)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x = torch.full((4, 1, 1, 1), 99.0)
    assert torch.equal(pool.query(x, g1), p2.query(x, g2))


def test_pool_size_zero_passes_through():
    x = torch.randn(2, 3, 4, 4)
    assert ImagePool(0).query(x, torch.Generator()) is x


def test_diff_augment_shifts_and_cuts_out_and_passes_gradients():
    from engine.models.augment import diff_augment

    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16).requires_grad_(True)
    y = diff_augment(x, torch.Generator().manual_seed(3))
    again = diff_augment(x, torch.Generator().manual_seed(3))
    assert y.shape == x.shape and torch.equal(y, again)  # the step's stream decides every draw
    for i in range(2):
        kept = y[i, 0] != 0
        # every kept pixel is the input's pixel at one common offset of at most 2 (= 16 / 8) each way
        offsets = {(int(r - (v // 16) % 16), int(c - v % 16)) for (r, c), v in
                   zip(kept.nonzero().tolist(), y[i, 0][kept].long().tolist())}
        assert len(offsets) == 1 and all(abs(o) <= 2 for o in next(iter(offsets)))
        assert (~kept).sum() >= 16  # the cutout (and the shifted-in border) are zeros
    y.sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0} and x.grad.sum() > 0


def test_training_with_diffaugment_resumes_exactly(tmp_path):
    from engine.data import open_domains
    from engine.training.trainer import Trainer
    from tests.helpers import make_domains, tiny_config

    cfg = tiny_config(diffaugment=True, max_steps=4, save_every=2)
    a, b = make_domains(tmp_path)
    one = Trainer(cfg, *open_domains(a, b, cfg), device="cpu", run_dir=tmp_path / "one")
    list(one.run())
    two = Trainer(cfg, *open_domains(a, b, cfg), device="cpu", run_dir=tmp_path / "two")
    list(two.run(stop_at=2))
    three = Trainer.resume_run(tmp_path / "two", device="cpu", data_paths=(str(a), str(b)))
    list(three.run())
    for k, v in one.state.D_A.state_dict().items():
        assert torch.equal(v, three.state.D_A.state_dict()[k]), k
