"""tradeconsole: the Textual console for ZeroMQ trading data fabrics."""

__version__ = "0.1.0"
