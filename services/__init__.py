"""tradeconsole services: publisher, gateway, proxy and the shared wire protocol."""
