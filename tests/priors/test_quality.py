"""The prior quality metrics (priors.quality): radial spectrum, the radii it compares, pixel W1."""

import torch

from priors.quality import pixel_histogram_distance, radial_power_spectrum, spectrum_error, spectrum_radii


def _lowpass(x: torch.Tensor, cutoff: int) -> torch.Tensor:
    """Zero every Fourier mode with max(|kx|, |ky|) > cutoff (a 2/3-rule dealiasing)."""
    n = x.shape[-1]
    k = torch.fft.fftfreq(n, 1.0 / n).abs()
    keep = (k[:, None] <= cutoff) & (k[None, :] <= cutoff)
    return torch.fft.ifft2(torch.fft.fft2(x.double()) * keep).real


def test_spectrum_of_white_noise_is_flat_and_all_radii_are_compared():
    x = torch.randn(64, 1, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = radial_power_spectrum(x)[1:]
    assert float(p.max() / p.min()) < 1.3  # unit variance per mode, flat up to sampling noise
    assert spectrum_radii(x).tolist() == list(range(1, 17))


def test_radii_without_power_are_left_out_of_the_spectrum_error():
    g = torch.Generator().manual_seed(1)
    truths = _lowpass(torch.randn(32, 1, 32, 32, generator=g, dtype=torch.float64), 10)
    radii = spectrum_radii(truths)
    assert radii.max() <= 15 and radii.min() == 1  # radius round(sqrt(2) * 10) = 14 is the last with power
    same_law = _lowpass(torch.randn(32, 1, 32, 32, generator=g, dtype=torch.float64), 10)
    noisy_tail = same_law + 1e-3 * torch.randn(same_law.shape, generator=g, dtype=torch.float64)
    # the tail's 1e-6 power against round-off would add ~10 decades per empty radius to an unrestricted error
    assert spectrum_error(noisy_tail, truths) < 0.2
    assert spectrum_error(same_law, truths) < 0.1
    assert spectrum_error(2.0 * same_law, truths) > 0.5  # 4x the power: log10 4 = 0.6 at every radius


def test_pixel_w1_of_a_shift():
    a = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert abs(pixel_histogram_distance(a + 0.5, a) - 0.5) < 1e-12
