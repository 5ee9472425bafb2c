"""Whatever answers the messages, behind one interface: ``lifespan()`` and ``serve_session(session)``.

The server transport never knows which kind of upstream it talks to.
"""

from mcp_sse.upstream.base import Upstream
from mcp_sse.upstream.sdk import SDKUpstream

__all__ = ["SDKUpstream", "Upstream"]
