"""Evergraph served to applications: an HTTP API (FastAPI) and an MCP server, per namespace.

`app.create_app` builds the HTTP app (with MCP over streamable HTTP at /mcp); `mcp.build_mcp`
the MCP server alone (stdio). Both call the same operations (`ops`), so the two surfaces cannot
drift apart.
"""
