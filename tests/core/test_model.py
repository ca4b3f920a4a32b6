"""Quote formulas against hand-computed values and their limits."""

import math

import pytest

from avmm.core.model import (
    MODEL_AS,
    MODEL_GLFT,
    as_depths,
    as_reservation_price,
    as_spread,
    glft_coefficients,
    glft_depths,
    model_depths,
)


def test_as_reservation_price_hand_value():
    # r = s - q*gamma*sigma^2*(T-t) = 100 - 2*0.1*4*0.5 = 99.6
    assert as_reservation_price(100.0, 2.0, 0.1, 2.0, 0.5) == pytest.approx(99.6, abs=1e-12)


def test_as_spread_hand_value():
    # gamma*sigma^2*tau + (2/gamma) ln(1 + gamma/k) = 0.1*4*1 + 20*ln(1 + 0.1/1.5)
    expected = 0.4 + 20.0 * math.log(1.0 + 0.1 / 1.5)
    assert expected == pytest.approx(1.690770422751, abs=1e-9)
    assert as_spread(0.1, 2.0, 1.5, 1.0) == pytest.approx(expected, rel=1e-14)


def test_as_depths_are_spread_centred_on_reservation():
    mid, q, g, s, k, tau = 100.0, 3.0, 0.05, 1.3, 2.0, 0.7
    bd, ad = as_depths(q, g, s, k, tau)
    r = as_reservation_price(mid, q, g, s, tau)
    assert (mid - bd + mid + ad) / 2 == pytest.approx(r, abs=1e-12)
    assert bd + ad == pytest.approx(as_spread(g, s, k, tau), abs=1e-12)


def test_as_gamma_to_zero_limit():
    # (2/gamma) ln(1+gamma/k) -> 2/k; the inventory term vanishes
    bd, ad = as_depths(5.0, 1e-15, 2.0, 1.5, 1.0)
    assert bd == pytest.approx(1.0 / 1.5, rel=1e-9)
    assert ad == pytest.approx(1.0 / 1.5, rel=1e-9)
    # gamma = 1e-6: 2/k plus O(gamma) terms (gamma*sigma^2*tau = 4e-6, -gamma/k^2 = -4.4e-7)
    assert as_spread(1e-6, 2.0, 1.5, 1.0) == pytest.approx(2.0 / 1.5 + 4e-6 - 1e-6 / 1.5**2, rel=1e-9)


def test_as_tau_to_zero_limit():
    # at T: no inventory skew, spread = (2/gamma) ln(1+gamma/k)
    bd, ad = as_depths(7.0, 0.1, 2.0, 1.5, 0.0)
    assert bd == ad == pytest.approx(10.0 * math.log(1.0 + 0.1 / 1.5), rel=1e-14)


def test_glft_hand_value_paper_parameters():
    # Gueant-Lehalle-Fernandez-Tapia illustration: sigma=0.3, A=0.9, k=0.3, gamma=0.01, delta=1, xi=gamma
    g, s, A, k = 0.01, 0.3, 0.9, 0.3
    c_half = (1 / g) * math.log(1 + g / k)
    c_skew = math.sqrt(g * s * s / (2 * A * k) * (1 + g / k) ** (k / g + 1))
    assert glft_coefficients(g, s, A, k, 1.0, g) == pytest.approx((c_half, c_skew), rel=1e-13)
    for q in (-3.0, 0.0, 2.0):
        bd, ad = glft_depths(q, g, s, A, k, 1.0, g)
        assert bd == pytest.approx(c_half + (2 * q + 1) / 2 * c_skew, rel=1e-13)
        assert ad == pytest.approx(c_half - (2 * q - 1) / 2 * c_skew, rel=1e-13)
    # worked number: c_half = 100 ln(1.0333..) = 3.2789823...
    assert c_half == pytest.approx(3.278982282, abs=1e-8)


def test_glft_xi_to_zero_limit():
    g, s, A, k = 0.01, 0.3, 0.9, 0.3
    c_half, c_skew = glft_coefficients(g, s, A, k, 1.0, 0.0)
    assert c_half == pytest.approx(1.0 / k, rel=1e-12)
    assert c_skew == pytest.approx(math.sqrt(g * s * s / (2 * A * k) * math.e), rel=1e-12)
    # continuity: tiny xi is close to the limit
    c_half2, c_skew2 = glft_coefficients(g, s, A, k, 1.0, 1e-7)
    assert c_half2 == pytest.approx(c_half, rel=1e-6)
    assert c_skew2 == pytest.approx(c_skew, rel=1e-6)


def test_glft_order_size_delta():
    g, s, A, k, d = 0.02, 0.5, 1.2, 0.4, 3.0
    xd = g * d
    c_half = math.log(1 + xd / k) / xd
    c_skew = math.sqrt(g * s * s / (2 * A * d * k) * (1 + xd / k) ** (k / xd + 1))
    bd, ad = glft_depths(1.0, g, s, A, k, d, g)
    assert bd == pytest.approx(c_half + (2 + d) / 2 * c_skew, rel=1e-13)
    assert ad == pytest.approx(c_half - (2 - d) / 2 * c_skew, rel=1e-13)


def test_model_dispatch():
    assert model_depths(MODEL_AS, 1.0, 0.1, 2.0, 140.0, 1.5, 0.5, 1.0, 0.1) == as_depths(1.0, 0.1, 2.0, 1.5, 0.5)
    assert model_depths(MODEL_GLFT, 1.0, 0.1, 2.0, 140.0, 1.5, 0.5, 1.0, 0.1) == glft_depths(
        1.0, 0.1, 2.0, 140.0, 1.5, 1.0, 0.1
    )
