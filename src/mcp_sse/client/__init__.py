"""The client transport: ``connect(url)`` yields the streams ``mcp.ClientSession`` takes."""

from mcp_sse.client.connect import connect
from mcp_sse.client.inflight import ClientStats
from mcp_sse.client.policy import ReconnectPolicy

__all__ = ["ClientStats", "ReconnectPolicy", "connect"]
