"""Number, age and latency formatting: exact counts, markers that survive 16 colours."""

from __future__ import annotations

import pytest

from console.ui import format as fmt


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (999, "999"), (1_234_567, "1,234,567"), (9_876_543_210, "9,876,543,210"),
])
def test_counts_keep_every_digit(value: int, text: str) -> None:
    assert fmt.count(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (65_274.5, "65,274.50"), (213.05, "213.05"), (1.0799, "1.0799"), (0.60187, "0.60187"),
    (0.02, "0.02"), (0.0, "0.00"), (None, fmt.MISSING), (float("nan"), fmt.MISSING),
])
def test_prices_use_the_decimals_they_need(value: float | None, text: str) -> None:
    assert fmt.price(value) == text


def test_change_carries_a_direction_marker() -> None:
    assert fmt.change(1.5) == "▲1.50"
    assert fmt.change(-88.0) == "▼88.00"
    assert fmt.change(0.0).strip() == "0.00"
    assert fmt.change(None) == fmt.MISSING


def test_quantities_are_exact_with_separators() -> None:
    assert fmt.quantity(1_000_000.0) == "1,000,000"
    assert fmt.quantity(0.0294) == "0.0294"


def test_latency_unknown_is_a_question_mark() -> None:
    assert fmt.latency_us(None) == "?"
    assert fmt.latency_us(850.0) == "850µs"
    assert fmt.latency_us(12_345.0) == "12.3ms"
    assert fmt.latency_us(2_500_000.0) == "2.50s"


@pytest.mark.parametrize(("ns", "fine", "coarse"), [
    (400_000_000, "0.4s", "<1s"), (4_200_000_000, "4.2s", "4s"), (15 * 10**9, "15s", "15s"),
    (300 * 10**9, "5m", "5m"), (3 * 3600 * 10**9, "3h", "3h"), (3 * 86400 * 10**9, "3d", "3d"),
])
def test_age_fine_and_coarse(ns: int, fine: str, coarse: str) -> None:
    assert fmt.age(ns) == fine
    assert fmt.age(ns, coarse=True) == coarse


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 10**9, 1_500_000_000, 59 * 10**9,
                                119_999_999_999, 120 * 10**9, 150 * 10**9, 7199 * 10**9,
                                7200 * 10**9, 10_000 * 10**9, 172_799 * 10**9,
                                172_800 * 10**9, 400_000 * 10**9])
def test_the_coarse_age_keeps_its_text_until_the_time_it_is_said_to_change(ns: int) -> None:
    later = ns + fmt.age_changes_in(ns)
    assert fmt.age(later - 1, coarse=True) == fmt.age(ns, coarse=True)
    assert fmt.age(later, coarse=True) != fmt.age(ns, coarse=True)
