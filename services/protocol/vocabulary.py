"""The words of the protocol: version, actions, statuses, error codes, states.

Plain constants, so every other module (and the console) can name them
without importing any of the codec.
"""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 1

# --- telemetry ----------------------------------------------------------------

HEALTH_OK: Final = "OK"
HEALTH_DEGRADED: Final = "DEGRADED"
HEALTH_DOWN: Final = "DOWN"
HEALTH_STATES: Final = (HEALTH_OK, HEALTH_DEGRADED, HEALTH_DOWN)
METRICS_FIELDS: Final = (
    "node", "ts_ns", "uptime_s", "sent_total", "msgs_per_s", "bytes_per_s",
    "ser_us_p50", "ser_us_p99", "queue_depth", "queue_capacity", "dropped_total",
)

# --- commands -----------------------------------------------------------------

HEARTBEAT: Final = "HEARTBEAT"
GET_STATUS: Final = "GET_STATUS"
GET_ACCOUNT_INFO: Final = "GET_ACCOUNT_INFO"
GET_POSITIONS: Final = "GET_POSITIONS"
GET_ORDERS: Final = "GET_ORDERS"
GET_SNAPSHOT: Final = "GET_SNAPSHOT"
OPEN_ORDER: Final = "OPEN_ORDER"
CANCEL_ORDER: Final = "CANCEL_ORDER"
CLOSE_POSITION: Final = "CLOSE_POSITION"
KILL_SWITCH: Final = "KILL_SWITCH"
RESUME_TRADING: Final = "RESUME_TRADING"

READ_ACTIONS: Final = frozenset(
    {HEARTBEAT, GET_STATUS, GET_ACCOUNT_INFO, GET_POSITIONS, GET_ORDERS, GET_SNAPSHOT}
)
STATE_CHANGING_ACTIONS: Final = frozenset(
    {OPEN_ORDER, CANCEL_ORDER, CLOSE_POSITION, KILL_SWITCH, RESUME_TRADING}
)
ACTIONS: Final = READ_ACTIONS | STATE_CHANGING_ACTIONS
# Served ahead of everything queued, on both ends of the link: the kill switch
# and its release must never wait behind a flood of orders or polls.
PRIORITY_ACTIONS: Final = frozenset({KILL_SWITCH, RESUME_TRADING})

SUCCESS: Final = "SUCCESS"
REJECTED: Final = "REJECTED"
ERROR: Final = "ERROR"

BAD_REQUEST: Final = "BAD_REQUEST"
UNKNOWN_ACTION: Final = "UNKNOWN_ACTION"
FORBIDDEN: Final = "FORBIDDEN"
TRADING_HALTED: Final = "TRADING_HALTED"
NOT_FOUND: Final = "NOT_FOUND"
INTERNAL: Final = "INTERNAL"
ERROR_CODES: Final = frozenset(
    {BAD_REQUEST, UNKNOWN_ACTION, FORBIDDEN, TRADING_HALTED, NOT_FOUND, INTERNAL}
)

# --- trading state, kill modes, orders -----------------------------------------

ACTIVE: Final = "ACTIVE"
HALTED: Final = "HALTED"
FLATTEN: Final = "FLATTEN"
HALT: Final = "HALT"
KILL_MODES: Final = (FLATTEN, HALT)
BUY: Final = "BUY"
SELL: Final = "SELL"
MARKET: Final = "MARKET"
LIMIT: Final = "LIMIT"
