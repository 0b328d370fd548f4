"""The filter language of the `/` bar (pure functions, no terminal)."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.ui.filtering import (
    KIND_ALL,
    KIND_GLOB,
    KIND_REGEX,
    KIND_SUBSTRING,
    FilterError,
    parse_filter,
)

SYMBOLS = ["BTCUSD.KRAKEN", "ETHUSD.KRAKEN", "IF2506.CFFEX", "rb2510.SHFE", "AAPL.NASDAQ"]


def kept(text: str) -> list[str]:
    symbol_filter = parse_filter(text)
    return [s for s in SYMBOLS if symbol_filter.matches(s)]


def test_plain_text_is_a_case_insensitive_substring() -> None:
    assert parse_filter("usd").kind == KIND_SUBSTRING
    assert kept("usd") == ["BTCUSD.KRAKEN", "ETHUSD.KRAKEN"]
    assert kept("RB25") == ["rb2510.SHFE"]


def test_star_or_question_mark_makes_a_glob_over_the_whole_symbol() -> None:
    assert parse_filter("*.kraken").kind == KIND_GLOB
    assert kept("*.kraken") == ["BTCUSD.KRAKEN", "ETHUSD.KRAKEN"]
    assert kept("?TCUSD*") == ["BTCUSD.KRAKEN"]
    assert kept("KRAKEN*") == []  # anchored: a glob matches the whole vt_symbol


def test_re_prefix_searches_a_regex() -> None:
    assert parse_filter("re:^(btc|eth)").kind == KIND_REGEX
    assert kept("re:^(btc|eth)") == ["BTCUSD.KRAKEN", "ETHUSD.KRAKEN"]
    assert kept(r"re:\d{4}\.") == ["IF2506.CFFEX", "rb2510.SHFE"]


def test_bang_inverts_any_kind() -> None:
    assert kept("!kraken") == ["IF2506.CFFEX", "rb2510.SHFE", "AAPL.NASDAQ"]
    assert kept("!*.KRAKEN") == ["IF2506.CFFEX", "rb2510.SHFE", "AAPL.NASDAQ"]
    assert kept("!re:^[A-Z]{4}\\.") == ["BTCUSD.KRAKEN", "ETHUSD.KRAKEN", "IF2506.CFFEX",
                                         "rb2510.SHFE"]


@pytest.mark.parametrize("text", ["", "   ", "!", "re:", "!re:"])
def test_empty_patterns_match_everything(text: str) -> None:
    symbol_filter = parse_filter(text)
    assert symbol_filter.kind == KIND_ALL
    assert kept(text) == SYMBOLS


@pytest.mark.parametrize("text", ["re:(", "re:[a-", "!re:*x"])
def test_invalid_regex_raises_a_readable_error(text: str) -> None:
    with pytest.raises(FilterError, match="invalid regex"):
        parse_filter(text)


def test_describe_names_kind_and_inversion() -> None:
    assert parse_filter("!*.X").describe() == "not glob *.X"
    assert parse_filter("").describe() == "all symbols"


@given(st.text(alphabet="ABCXYZ.19", min_size=1, max_size=8),
       st.lists(st.text(alphabet="ABCXYZ.19abc", min_size=1, max_size=12), max_size=20))
def test_inversion_is_the_exact_complement(needle: str, symbols: list[str]) -> None:
    plain, inverted = parse_filter(needle), parse_filter("!" + needle)
    for symbol in symbols:
        assert plain.matches(symbol) != inverted.matches(symbol)
        assert plain.matches(symbol) == (needle.lower() in symbol.lower())


@given(st.text(alphabet="AB*?.", min_size=1, max_size=6),
       st.text(alphabet="ABab.", max_size=8))
def test_glob_agrees_with_fnmatch_ignoring_case(pattern: str, symbol: str) -> None:
    symbol_filter = parse_filter(pattern)
    if symbol_filter.kind == KIND_GLOB:
        assert symbol_filter.matches(symbol) == fnmatch.fnmatchcase(symbol.upper(),
                                                                   pattern.upper())
