"""A simulated market: deterministic random-walk ticks in vnpy `TickData` shape.

Used by the publisher, by tests and by anything that needs believable ticks
without a network. For a given seed (and clock) the sequence of ticks is
always the same. The generator is built to be cheap: every price is kept as
an integer number of ticks and turned into a float by one exact division,
and each tick mutates a per-symbol dict template that is then copied once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from fractions import Fraction
from typing import Any

GATEWAY_NAME = "SIM"
DEPTH_LEVELS = 5

_LEVEL_KEYS: tuple[tuple[int, str, str, str, str], ...] = tuple(
    (level, f"bid_price_{level}", f"ask_price_{level}", f"bid_volume_{level}",
     f"ask_volume_{level}")
    for level in range(1, DEPTH_LEVELS + 1)
)
_UTC = UTC
_CHINA = timezone(timedelta(hours=8), "CST")


def _new_york() -> tzinfo:
    """US exchanges keep New York time (with DST); a fixed offset if tzdata is missing."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("America/New_York")
    except Exception:  # no tz database on this machine
        return timezone(timedelta(hours=-5), "EST")


_NEW_YORK = _new_york()
EXCHANGE_TZ: dict[str, tzinfo] = {
    "KRAKEN": _UTC, "CFFEX": _CHINA, "SHFE": _CHINA,
    "NASDAQ": _NEW_YORK, "NYSE": _NEW_YORK, "CME": _NEW_YORK,
}


@dataclass(frozen=True, slots=True)
class Instrument:
    """Static facts about one instrument; prices are given in the quote currency."""

    symbol: str
    exchange: str
    name: str
    price: float            # reference price the walk starts near
    tick: str               # tick size as a decimal string, e.g. "0.25" (kept exact)
    lot: str                # smallest volume step, e.g. "1" or "0.001"
    multiplier: float       # contract size, for turnover
    spread_ticks: int       # widest typical spread, in ticks
    futures: bool = False   # futures carry open interest

    @property
    def vt_symbol(self) -> str:
        return f"{self.symbol}.{self.exchange}"


# Interleaved so that the first few symbols already span several exchanges.
INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("BTCUSD", "KRAKEN", "Bitcoin / US Dollar", 65000.0, "0.1", "0.0001", 1.0, 8),
    Instrument("IF2506", "CFFEX", "CSI 300 Index Futures 2506", 3900.0, "0.2", "1", 300.0, 2,
               True),
    Instrument("rb2510", "SHFE", "Rebar 2510", 3200.0, "1", "1", 10.0, 1, True),
    Instrument("AAPL", "NASDAQ", "Apple Inc.", 210.0, "0.01", "1", 1.0, 2),
    Instrument("ESZ6", "CME", "E-mini S&P 500 Dec 2026", 5600.0, "0.25", "1", 50.0, 1, True),
    Instrument("IBM", "NYSE", "International Business Machines", 245.0, "0.01", "1", 1.0, 3),
    Instrument("ETHUSD", "KRAKEN", "Ether / US Dollar", 3400.0, "0.01", "0.001", 1.0, 20),
    Instrument("IC2506", "CFFEX", "CSI 500 Index Futures 2506", 5600.0, "0.2", "1", 200.0, 3,
               True),
    Instrument("cu2508", "SHFE", "Copper 2508", 78000.0, "10", "1", 5.0, 2, True),
    Instrument("MSFT", "NASDAQ", "Microsoft Corp.", 430.0, "0.01", "1", 1.0, 2),
    Instrument("NQZ6", "CME", "E-mini Nasdaq-100 Dec 2026", 19800.0, "0.25", "1", 20.0, 2,
               True),
    Instrument("JPM", "NYSE", "JPMorgan Chase & Co.", 240.0, "0.01", "1", 1.0, 2),
    Instrument("SOLUSD", "KRAKEN", "Solana / US Dollar", 150.0, "0.01", "0.01", 1.0, 5),
    Instrument("IH2506", "CFFEX", "SSE 50 Index Futures 2506", 2700.0, "0.2", "1", 300.0, 2,
               True),
    Instrument("au2508", "SHFE", "Gold 2508", 780.0, "0.02", "1", 1000.0, 2, True),
    Instrument("NVDA", "NASDAQ", "NVIDIA Corp.", 125.0, "0.01", "1", 1.0, 1),
    Instrument("CLZ6", "CME", "Crude Oil Dec 2026", 72.0, "0.01", "1", 1000.0, 1, True),
    Instrument("KO", "NYSE", "The Coca-Cola Co.", 62.0, "0.01", "1", 1.0, 1),
    Instrument("XRPUSD", "KRAKEN", "Ripple / US Dollar", 0.6, "0.00001", "1", 1.0, 3),
    Instrument("ag2508", "SHFE", "Silver 2508", 7800.0, "1", "1", 15.0, 1, True),
    Instrument("TSLA", "NASDAQ", "Tesla Inc.", 180.0, "0.01", "1", 1.0, 3),
    Instrument("GCZ6", "CME", "Gold Dec 2026", 2400.0, "0.1", "1", 100.0, 2, True),
    Instrument("XOM", "NYSE", "Exxon Mobil Corp.", 112.0, "0.01", "1", 1.0, 2),
    Instrument("AMZN", "NASDAQ", "Amazon.com Inc.", 185.0, "0.01", "1", 1.0, 2),
)
GENERATED_EXCHANGES: tuple[str, ...] = ("NASDAQ", "NYSE", "CME", "SHFE", "CFFEX", "KRAKEN")


def instruments_for(count: int, rng: random.Random) -> list[Instrument]:
    """The first `count` instruments: the fixed list, then SYM0042.NASDAQ-style names."""
    chosen = list(INSTRUMENTS[:count])
    for index in range(len(chosen), count):
        exchange = GENERATED_EXCHANGES[index % len(GENERATED_EXCHANGES)]
        price = round(5.0 + rng.random() * 495.0, 2)
        chosen.append(Instrument(f"SYM{index:04d}", exchange, f"Simulated {index}", price,
                                 "0.01", "1", 1.0, 1 + index % 3))
    return chosen


def _as_ratio(decimal: str) -> tuple[int, int]:
    ratio = Fraction(decimal)
    return ratio.numerator, ratio.denominator


class _SymbolState:
    """Mutable walk state of one symbol plus the dict template that is copied per tick."""

    __slots__ = (
        "den",
        "high",
        "instrument",
        "last",
        "lot_den",
        "lot_num",
        "low",
        "lower",
        "max_step",
        "multiplier",
        "num",
        "open_interest",
        "template",
        "turnover",
        "tz",
        "upper",
        "volume_lots",
    )

    def __init__(self, instrument: Instrument, rng: random.Random) -> None:
        self.instrument = instrument
        self.num, self.den = _as_ratio(instrument.tick)
        self.lot_num, self.lot_den = _as_ratio(instrument.lot)
        self.multiplier = instrument.multiplier
        self.tz = EXCHANGE_TZ.get(instrument.exchange, _UTC)
        tick_size = self.num / self.den
        close = max(100, round(instrument.price * (0.98 + rng.random() * 0.04) / tick_size))
        # Daily price limits of +-10% (futures style), in ticks; the walk stays inside.
        self.upper = close + close // 10
        self.lower = close - close // 10
        # About 2 basis points per step, never less than one tick.
        self.max_step = max(1, round(close * 0.0002))
        opening = close + round((rng.random() - 0.5) * 2 * self.max_step * 10)
        self.last = opening
        self.high = opening
        self.low = opening
        self.volume_lots = 0
        self.turnover = 0.0
        self.open_interest = float(int(20000 + rng.random() * 200000)) \
            if instrument.futures else 0.0
        self.template: dict[str, Any] = {
            "symbol": instrument.symbol,
            "exchange": instrument.exchange,
            "vt_symbol": instrument.vt_symbol,
            "gateway_name": GATEWAY_NAME,
            "name": instrument.name,
            "datetime": "",
            "localtime": "",
            "volume": 0.0,
            "turnover": 0.0,
            "open_interest": self.open_interest,
            "last_price": self.price(opening),
            "last_volume": 0.0,
            "limit_up": self.price(self.upper),
            "limit_down": self.price(self.lower),
            "open_price": self.price(opening),
            "high_price": self.price(opening),
            "low_price": self.price(opening),
            "pre_close": self.price(close),
        }
        for level, _, _, bid_v, ask_v in _LEVEL_KEYS:
            self.template[bid_v] = self.size(1 + int(rng.random() * 40 * level))
            self.template[ask_v] = self.size(1 + int(rng.random() * 40 * level))

    def price(self, ticks: int) -> float:
        """Exact decimal price: one correctly rounded division, no float drift."""
        return ticks * self.num / self.den

    def size(self, lots: int) -> float:
        return lots * self.lot_num / self.lot_den


class Market:
    """N symbols over several exchanges, each a bounded random walk.

    `next_tick()` returns `(topic, tick)` where topic == tick["vt_symbol"] and
    the tick is a fresh dict the caller may keep or mutate. Pass `clock` (epoch
    seconds) and `local_tz` to make `datetime`/`localtime` deterministic too.
    """

    def __init__(self, symbols: int, seed: int, *, clock: Callable[[], float] | None = None,
                 local_tz: tzinfo | None = None) -> None:
        if symbols < 1:
            raise ValueError("a market needs at least one symbol")
        self._rng = random.Random(seed)
        self._clock = clock or time.time
        self._local_tz = local_tz or datetime.now().astimezone().tzinfo or _UTC
        self._states = [_SymbolState(i, self._rng) for i in instruments_for(symbols, self._rng)]

    @property
    def vt_symbols(self) -> list[str]:
        return [s.instrument.vt_symbol for s in self._states]

    @property
    def instruments(self) -> list[Instrument]:
        return [s.instrument for s in self._states]

    def next_tick(self) -> tuple[str, dict[str, Any]]:
        """Advance one randomly chosen symbol by one step and return its tick."""
        rnd = self._rng.random
        state = self._states[int(rnd() * len(self._states))]
        step = round((rnd() - 0.5) * 2.0 * state.max_step)
        last = state.last + step
        if last > state.upper or last < state.lower:
            last = state.last - step  # bounce off the price limit
        state.last = last
        if last > state.high:
            state.high = last
        if last < state.low:
            state.low = last

        spread = 1 + int(rnd() * state.instrument.spread_ticks)
        bid = last - int(rnd() * (spread + 1))
        bid = max(bid, DEPTH_LEVELS)
        ask = bid + spread
        lots = 1 + int(rnd() * rnd() * 50)
        state.volume_lots += lots
        price = state.price
        size = state.size
        last_price = price(last)
        last_volume = size(lots)
        state.turnover += last_volume * last_price * state.multiplier

        tick = state.template
        now = self._clock()
        tick["datetime"] = datetime.fromtimestamp(now, state.tz).isoformat()
        tick["localtime"] = datetime.fromtimestamp(now, self._local_tz).isoformat()
        tick["last_price"] = last_price
        tick["last_volume"] = last_volume
        tick["volume"] = size(state.volume_lots)
        tick["turnover"] = state.turnover
        tick["high_price"] = price(state.high)
        tick["low_price"] = price(state.low)
        if state.open_interest:
            state.open_interest = max(0.0, state.open_interest + int((rnd() - 0.5) * 2 * lots))
            tick["open_interest"] = state.open_interest
        # Level 1 sizes change every tick, one deeper level at a time (as books do).
        deeper = 2 + int(rnd() * (DEPTH_LEVELS - 1))
        for level, bid_p, ask_p, bid_v, ask_v in _LEVEL_KEYS:
            tick[bid_p] = price(bid - level + 1)
            tick[ask_p] = price(ask + level - 1)
            if level == 1 or level == deeper:
                tick[bid_v] = size(1 + int(rnd() * 40 * level))
                tick[ask_v] = size(1 + int(rnd() * 40 * level))
        return state.instrument.vt_symbol, tick.copy()
