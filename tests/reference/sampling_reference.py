#!/usr/bin/env python3
"""Reference outputs for crates/sampling: torch's CPU RNG, sigma schedules and samplers.

Writes tests/fixtures/sampling/{rng,schedules,samplers}.json. Run from the repository root:

    /path/to/venv/bin/python tests/reference/sampling_reference.py

Requirements: tests/reference/requirements-sampling.txt (torch CPU, k-diffusion, scipy).

What is the reference:
* RNG: `torch.Generator('cpu').manual_seed(s)` + `torch.randn(shape, generator=g)` (float32).
  Values are stored as float32 bit patterns; large tensors as a sha256 of their little-endian
  float32 bytes plus their first and last values.
* Schedules: k-diffusion's `DiscreteEpsDDPMDenoiser` (normal = get_sigmas(n)), `get_sigmas_karras`
  and `get_sigmas_exponential` over the model's [sigma_min, sigma_max]; ComfyUI's `sgm_uniform`
  (comfy/samplers.py `normal_scheduler(..., sgm=True)`) and `simple` (comfy/samplers.py
  `simple_scheduler`), re-implemented below from that source over the same sigma table.
* Samplers: k-diffusion's `sample_*` functions; ComfyUI's `ddim` (comfy/samplers.py
  `sampler_object`: "ddim" is `ksampler("euler", ...)`, i.e. the Euler update) and `lcm`
  (comfy/k_diffusion/sampling.py `sample_lcm`), re-implemented below. The model is a toy eps
  predictor behind k-diffusion's own `DiscreteEpsDDPMDenoiser` (c_in, sigma_to_t, c_out):
  eps(x_in, t) = tanh(A * x_in + B * t / 1000) with fixed tensors A, B, so the Rust test can run
  the identical model. All noise comes from per-image torch CPU generators: the first draw is the
  initial noise, then every noise-sampler call draws one randn of the latent shape (no Brownian
  tree), exactly as fidelity.md prescribes.
"""

import hashlib
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import torch

def import_k_diffusion():
    """k_diffusion.sampling and k_diffusion.external, without the package's __init__.

    k_diffusion/__init__ imports its training and evaluation modules (clip, torchdiffeq, ...);
    the samplers need none of them. When the package import fails, the two module files are
    loaded from the installed package directory under a bare package object, and torchdiffeq
    (imported by sampling.py only for log_likelihood, never called here) is stubbed if missing.
    """
    try:
        import k_diffusion.sampling as sampling
        import k_diffusion.external as external
        return sampling, external
    except ImportError:
        pass
    import importlib.util

    for name in list(sys.modules):
        if name == "k_diffusion" or name.startswith("k_diffusion."):
            del sys.modules[name]
    spec = importlib.util.find_spec("k_diffusion")
    package = types.ModuleType("k_diffusion")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["k_diffusion"] = package
    try:
        import torchdiffeq  # noqa: F401
    except ImportError:
        stub = types.ModuleType("torchdiffeq")

        def _odeint_unavailable(*_args, **_kwargs):
            raise RuntimeError("torchdiffeq is not installed")

        stub.odeint = _odeint_unavailable
        sys.modules["torchdiffeq"] = stub
    import k_diffusion.sampling as sampling
    import k_diffusion.external as external
    return sampling, external


kds, kde = import_k_diffusion()
torch.set_num_threads(1)
OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "sampling"


def f32_bits(t: torch.Tensor) -> list:
    return t.detach().contiguous().to(torch.float32).numpy().view(np.uint32).ravel().tolist()


def f32_sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()).hexdigest()


def floats(t: torch.Tensor) -> list:
    return [float(v) for v in t.detach().to(torch.float64).ravel()]


# ----------------------------------------------------------------------------------------- RNG

FULL_LIMIT = 1024


def record_draw(t: torch.Tensor, shape) -> dict:
    entry = {"shape": list(shape), "sha256": f32_sha256(t)}
    if t.numel() <= FULL_LIMIT:
        entry["bits"] = f32_bits(t)
    else:
        flat = t.ravel()
        entry["head_bits"] = f32_bits(flat[:64])
        entry["tail_bits"] = f32_bits(flat[-64:])
    return entry


def rng_fixture() -> dict:
    seeds = [0, 1, 42, 2**32 - 1, 2**32, 1234567890123, 2**64 - 1]
    shapes = [[1], [2], [7], [15], [16], [17], [31], [33], [1, 4, 5, 3], [1, 4, 8, 8], [1, 4, 64, 64],
              [1, 4, 128, 128]]
    single = []
    for seed in seeds:
        for shape in shapes:
            g = torch.Generator("cpu").manual_seed(seed)
            t = torch.randn(shape, generator=g, dtype=torch.float32)
            single.append({"seed": seed, **record_draw(t, shape)})
    # Successive draws from one generator: the scalar path's cached second normal survives across
    # calls and is untouched by the vectorised path.
    sequences = []
    for seed, seq in [
        (42, [[7], [1, 4, 8, 8], [7], [3], [17], [1]]),
        (0, [[1, 4, 8, 8], [1, 4, 8, 8], [1, 4, 8, 8], [1, 4, 8, 8]]),
        (2**32 - 1, [[1], [1], [1], [16], [15], [1, 4, 5, 3], [1, 4, 64, 64]]),
        (1234567890123, [[5], [1, 4, 64, 64], [5], [2]]),
    ]:
        g = torch.Generator("cpu").manual_seed(seed)
        draws = [record_draw(torch.randn(shape, generator=g, dtype=torch.float32), shape) for shape in seq]
        sequences.append({"seed": seed, "draws": draws})
    # torch.manual_seed + torch.randn on the global generator takes the same path.
    torch.manual_seed(7)
    global_draw = record_draw(torch.randn([1, 4, 8, 8]), [1, 4, 8, 8])
    g = torch.Generator("cpu").manual_seed(7)
    assert global_draw["sha256"] == record_draw(torch.randn([1, 4, 8, 8], generator=g), [1, 4, 8, 8])["sha256"]
    return {
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "single": single,
        "sequences": sequences,
    }


# ----------------------------------------------------------------------------------- schedules

def make_alphas_cumprod() -> torch.Tensor:
    # fidelity.md: betas in float64, cumprod, stored as float32.
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).to(torch.float32)


class ToyEps(torch.nn.Module):
    """eps(x_in, t) = tanh(A * x_in + B * t / 1000)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.a = a
        self.b = b

    def forward(self, x_in, t):
        return torch.tanh(self.a * x_in + self.b * (t.reshape(-1, 1, 1, 1) / 1000.0))


def comfy_timestep(model, sigma: torch.Tensor) -> torch.Tensor:
    # comfy/model_sampling.py ModelSamplingDiscrete.timestep
    log_sigma = sigma.log()
    dists = log_sigma - model.log_sigmas[:, None]
    return dists.abs().argmin(dim=0).view(sigma.shape)


def comfy_sigma(model, timestep: torch.Tensor) -> torch.Tensor:
    # comfy/model_sampling.py ModelSamplingDiscrete.sigma
    t = torch.clamp(timestep.float(), min=0, max=(len(model.sigmas) - 1))
    low_idx = t.floor().long()
    high_idx = t.ceil().long()
    w = t.frac()
    log_sigma = (1 - w) * model.log_sigmas[low_idx] + w * model.log_sigmas[high_idx]
    return log_sigma.exp()


def comfy_sgm_uniform(model, steps: int) -> torch.Tensor:
    # comfy/samplers.py normal_scheduler(model_sampling, steps, sgm=True)
    start = comfy_timestep(model, model.sigma_max)
    end = comfy_timestep(model, model.sigma_min)
    timesteps = torch.linspace(start, end, steps + 1)[:-1]
    sigs = [float(comfy_sigma(model, ts)) for ts in timesteps]
    sigs += [0.0]
    return torch.FloatTensor(sigs)


def comfy_simple(model, steps: int) -> torch.Tensor:
    # comfy/samplers.py simple_scheduler
    sigs = []
    ss = len(model.sigmas) / steps
    for x in range(steps):
        sigs += [float(model.sigmas[-(1 + int(x * ss))])]
    sigs += [0.0]
    return torch.FloatTensor(sigs)


def schedule(model, name: str, steps: int) -> torch.Tensor:
    sigma_min, sigma_max = model.sigmas[0].item(), model.sigmas[-1].item()
    if name == "normal":
        return model.get_sigmas(steps)
    if name == "karras":
        return kds.get_sigmas_karras(steps, sigma_min, sigma_max, rho=7.0)
    if name == "exponential":
        return kds.get_sigmas_exponential(steps, sigma_min, sigma_max)
    if name == "sgm_uniform":
        return comfy_sgm_uniform(model, steps)
    if name == "simple":
        return comfy_simple(model, steps)
    raise ValueError(name)


SCHEDULES = ["normal", "karras", "exponential", "sgm_uniform", "simple"]


def schedules_fixture(model) -> dict:
    cases = []
    for name in SCHEDULES:
        for steps in [1, 2, 3, 6, 7, 20, 30, 50, 150]:
            cases.append({"schedule": name, "steps": steps, "sigmas": floats(schedule(model, name, steps))})
    probe_sigmas = torch.tensor([0.0292, 0.03, 0.1, 0.5, 1.0, 2.5, 7.0, 14.0, 14.6146], dtype=torch.float32)
    probe_ts = torch.tensor([0.0, 0.25, 1.0, 10.5, 123.456, 500.0, 998.9, 999.0], dtype=torch.float32)
    return {
        "alphas_cumprod": floats(model_alphas_cumprod),
        "sigmas": floats(model.sigmas),
        "sigma_to_t": {"sigma": floats(probe_sigmas), "t": floats(model.sigma_to_t(probe_sigmas))},
        "t_to_sigma": {"t": floats(probe_ts), "sigma": floats(model.t_to_sigma(probe_ts))},
        "cases": cases,
    }


# ------------------------------------------------------------------------------------ samplers

def comfy_ddim(model, x, sigmas, noise_sampler):
    # comfy/samplers.py sampler_object: "ddim" -> ksampler("euler", ...): the Euler update.
    return kds.sample_euler(model, x, sigmas, disable=True)


@torch.no_grad()
def comfy_lcm(model, x, sigmas, noise_sampler):
    # comfy/k_diffusion/sampling.py sample_lcm, with eps noise_scaling(sigma, noise, latent) =
    # sigma * noise + latent (comfy/model_sampling.py EPS.noise_scaling).
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        x = denoised
        if sigmas[i + 1] > 0:
            x = sigmas[i + 1] * noise_sampler(sigmas[i], sigmas[i + 1]) + x
    return x


def run_sampler(name, model, x, sigmas, noise_sampler):
    if name == "euler":
        return kds.sample_euler(model, x, sigmas, disable=True)
    if name == "euler_a":
        return kds.sample_euler_ancestral(model, x, sigmas, disable=True, eta=1.0, s_noise=1.0,
                                          noise_sampler=noise_sampler)
    if name == "heun":
        return kds.sample_heun(model, x, sigmas, disable=True)
    if name == "dpm_2":
        return kds.sample_dpm_2(model, x, sigmas, disable=True)
    if name == "dpmpp_2m":
        return kds.sample_dpmpp_2m(model, x, sigmas, disable=True)
    if name == "dpmpp_2m_sde":
        return kds.sample_dpmpp_2m_sde(model, x, sigmas, disable=True, eta=1.0, s_noise=1.0,
                                       noise_sampler=noise_sampler, solver_type="midpoint")
    if name == "dpmpp_sde":
        return kds.sample_dpmpp_sde(model, x, sigmas, disable=True, eta=1.0, s_noise=1.0,
                                    noise_sampler=noise_sampler, r=1 / 2)
    if name == "lms":
        return kds.sample_lms(model, x, sigmas, disable=True, order=4)
    if name == "ddim":
        return comfy_ddim(model, x, sigmas, noise_sampler)
    if name == "lcm":
        return comfy_lcm(model, x, sigmas, noise_sampler)
    raise ValueError(name)


SAMPLERS = ["euler", "euler_a", "heun", "dpm_2", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde", "lms", "ddim", "lcm"]
LATENT = [1, 4, 8, 8]


def sampler_case(model, sampler, sched, steps, seeds, start_index=0, init_scale=None):
    sigmas_full = schedule(model, sched, steps)
    sigmas = sigmas_full[start_index:]
    gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    draws = [0]

    def draw():
        return torch.cat([torch.randn(LATENT, generator=g) for g in gens])

    def noise_sampler(_sigma, _sigma_next):
        draws[0] += 1
        return draw()

    noise = draw()
    if init_scale is None:
        x = noise * sigmas[0]  # txt2img
        init = None
    else:
        # img2img: x = init_latent + noise * sigma_start, init_latent a fixed pattern.
        init = torch.linspace(-init_scale, init_scale, noise.numel()).reshape(noise.shape)
        x = init + noise * sigmas[0]
    out = run_sampler(sampler, model, x, sigmas, noise_sampler)
    case = {
        "sampler": sampler, "schedule": sched, "steps": steps, "start_index": start_index,
        "seeds": seeds, "sigmas": floats(sigmas), "noise_draws": draws[0], "output": floats(out),
    }
    if init is not None:
        case["init_latent"] = floats(init)
    return case


def samplers_fixture(model, a, b) -> dict:
    cases = []
    for sampler in SAMPLERS:
        cases.append(sampler_case(model, sampler, "normal", 6, [1000]))
    for sched in ["karras", "exponential", "sgm_uniform", "simple"]:
        for sampler in ["euler", "dpmpp_2m"]:
            cases.append(sampler_case(model, sampler, sched, 6, [2000]))
    # More steps (LMS reaches order 4, 2M's multistep path runs longer), karras with SDE samplers.
    cases.append(sampler_case(model, "lms", "karras", 10, [3000]))
    cases.append(sampler_case(model, "dpmpp_2m_sde", "karras", 8, [3001]))
    cases.append(sampler_case(model, "dpmpp_sde", "karras", 5, [3002]))
    cases.append(sampler_case(model, "euler_a", "normal", 20, [3003]))
    # Batch of two images, each with its own generator (seed, seed + 1).
    cases.append(sampler_case(model, "euler_a", "normal", 6, [4000, 4001]))
    cases.append(sampler_case(model, "dpmpp_sde", "normal", 4, [4100, 4101]))
    # img2img: strength 0.5 of 10 steps -> k = 5 steps from index 5 of the full schedule.
    cases.append(sampler_case(model, "dpmpp_2m", "karras", 10, [5000], start_index=5, init_scale=1.5))
    cases.append(sampler_case(model, "euler_a", "normal", 10, [5001], start_index=3, init_scale=1.5))
    cases.append(sampler_case(model, "dpmpp_2m_sde", "normal", 8, [5002], start_index=4, init_scale=1.5))
    return {"latent_shape": LATENT, "a": floats(a), "b": floats(b), "cases": cases}


def write(name: str, data: dict) -> None:
    path = OUT / name
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


model_alphas_cumprod = make_alphas_cumprod()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write("rng.json", rng_fixture())
    g = torch.Generator("cpu").manual_seed(123)
    a = 0.5 * torch.randn(LATENT, generator=g)
    b = torch.randn(LATENT, generator=g)
    model = kde.DiscreteEpsDDPMDenoiser(ToyEps(a, b), model_alphas_cumprod, quantize=False)
    write("schedules.json", schedules_fixture(model))
    write("samplers.json", samplers_fixture(model, a, b))


if __name__ == "__main__":
    main()
