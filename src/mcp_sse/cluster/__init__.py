"""Several processes or nodes serving one deployment over one Redis (docs/deploy.md, "A cluster").

Each session runs on one node, its owner, recorded in Redis; a request that lands anywhere else is
forwarded to the owner; a node that dies has its sessions taken over (revived from the store) by
the next node that needs them. The server edge uses it; nothing inner imports it.
"""
